# Cloud Scheduler calls refresh with an OIDC token of the scheduler account.

resource "google_cloud_scheduler_job" "refresh" {
  project          = var.project_id
  region           = var.region
  name             = "${var.name_prefix}-refresh"
  description      = "armirror: queue copies of images that crossed the mirror threshold"
  schedule         = var.refresh_schedule
  time_zone        = var.refresh_time_zone
  attempt_deadline = "600s"

  retry_config {
    retry_count          = 1
    min_backoff_duration = "60s"
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.refresh.service_config[0].uri
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.refresh.service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.scheduler_invokes_refresh]
}
