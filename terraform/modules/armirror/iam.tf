# One service account per function, plus the identities Cloud Tasks and Cloud Scheduler
# present to the functions they call.  Every grant is on the narrowest resource that
# takes it; the one project-level grant is bigquery.jobUser, which has no smaller scope.

locals {
  function_accounts = {
    on_pull_event = { id = "${var.name_prefix}-ingest", title = "armirror on_pull_event (ingest)" }
    copy_image    = { id = "${var.name_prefix}-copy", title = "armirror copy_image" }
    request_copy  = { id = "${var.name_prefix}-request", title = "armirror request_copy" }
    refresh       = { id = "${var.name_prefix}-refresh", title = "armirror refresh" }
  }

  # Functions that put tasks on the copy queue (and so mint the tasks account's OIDC token).
  enqueuers = toset(["on_pull_event", "request_copy", "refresh"])
}

resource "google_service_account" "functions" {
  for_each = local.function_accounts

  project      = var.project_id
  account_id   = each.value.id
  display_name = each.value.title

  depends_on = [google_project_service.required]
}

resource "google_service_account" "tasks" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-tasks"
  display_name = "armirror Cloud Tasks caller of copy_image"

  depends_on = [google_project_service.required]
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "armirror Cloud Scheduler caller of refresh"

  depends_on = [google_project_service.required]
}

# The pull store: every function reads and writes its tables...
resource "google_bigquery_dataset_iam_member" "store_writer" {
  for_each = local.function_accounts

  project    = var.project_id
  dataset_id = google_bigquery_dataset.pulls.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.functions[each.key].member
}

# ...and runs the queries and MERGEs that make counting idempotent.
resource "google_project_iam_member" "store_jobs" {
  for_each = local.function_accounts

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.functions[each.key].member
}

# Enqueue copies on this queue only.
resource "google_cloud_tasks_queue_iam_member" "enqueuers" {
  for_each = local.enqueuers

  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.copy.name
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.functions[each.key].member
}

# Create tasks that carry the tasks account's OIDC token (iam.serviceAccounts.actAs).
resource "google_service_account_iam_member" "enqueuers_act_as_tasks" {
  for_each = local.enqueuers

  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.functions[each.key].member
}

# Who may invoke which function.  2nd gen functions are Cloud Run services of the same
# name, so invocation is roles/run.invoker on that service.
resource "google_cloud_run_v2_service_iam_member" "tasks_invokes_copy_image" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.copy_image.name
  role     = "roles/run.invoker"
  member   = google_service_account.tasks.member
}

resource "google_cloud_run_v2_service_iam_member" "scheduler_invokes_refresh" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.refresh.name
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

# Eventarc delivers to on_pull_event with the ingest account's token.
resource "google_cloud_run_v2_service_iam_member" "eventarc_invokes_on_pull_event" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.on_pull_event.name
  role     = "roles/run.invoker"
  member   = google_service_account.functions["on_pull_event"].member
}

resource "google_cloud_run_v2_service_iam_member" "request_copy_invokers" {
  for_each = toset(var.request_copy_invokers)

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.request_copy.name
  role     = "roles/run.invoker"
  member   = each.value
}
