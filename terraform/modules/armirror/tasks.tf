# The copy queue: one task copies one image.  Rate limits protect the source registries
# (Docker Hub above all); retries back off for up to a day.

resource "google_cloud_tasks_queue" "copy" {
  project  = var.project_id
  location = var.region
  name     = "${var.name_prefix}-copy"

  rate_limits {
    max_dispatches_per_second = var.queue.max_dispatches_per_second
    max_concurrent_dispatches = var.queue.max_concurrent_dispatches
  }

  retry_config {
    max_attempts       = var.queue.max_attempts
    max_retry_duration = var.queue.max_retry_duration
    min_backoff        = var.queue.min_backoff
    max_backoff        = var.queue.max_backoff
    max_doublings      = var.queue.max_doublings
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.required]
}
