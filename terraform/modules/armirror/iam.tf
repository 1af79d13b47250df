# One service account per function, one that builds them, and the identities Pub/Sub,
# Cloud Tasks and Cloud Scheduler present to the functions they call.  Every grant is on
# the narrowest resource that takes it; the project-level ones are those with no smaller
# scope (BigQuery jobs, writing logs) and one conditioned to Cloud Functions' source
# buckets.

locals {
  function_accounts = {
    on_pull_event = { id = "${var.name_prefix}-ingest", title = "armirror on_pull_event (ingest)" }
    copy_image    = { id = "${var.name_prefix}-copy", title = "armirror copy_image" }
    request_copy  = { id = "${var.name_prefix}-request", title = "armirror request_copy" }
    refresh       = { id = "${var.name_prefix}-refresh", title = "armirror refresh" }
  }

  # Functions that put tasks on the copy queue (and so mint the tasks account's OIDC token).
  enqueuers = toset(["on_pull_event", "request_copy", "refresh"])

  # The pull store, table by table: who writes (streaming inserts need dataEditor) and who
  # reads.  request_copy is absent: it faces callers from outside and never touches the
  # records.  A view is read with the table under it.
  store_access = {
    on_pull_event_writes_pull_events = { function = "on_pull_event", table = "pull_events", role = "roles/bigquery.dataEditor" }
    copy_image_writes_copies         = { function = "copy_image", table = "copies", role = "roles/bigquery.dataEditor" }
    refresh_reads_copies             = { function = "refresh", table = "copies", role = "roles/bigquery.dataViewer" }
    refresh_reads_mirrors            = { function = "refresh", table = "mirrors", role = "roles/bigquery.dataViewer" }
  }
  # Functions that query (pull counts, mirrored tags): BigQuery jobs run in the project.
  store_queriers = toset(["on_pull_event", "refresh"])

  store_tables = merge(google_bigquery_table.tables, google_bigquery_table.views)
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

resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-push"
  display_name = "armirror Pub/Sub push caller of on_pull_event"

  depends_on = [google_project_service.required]
}

# -- building the functions --------------------------------------------------------------
# Since 2024 Cloud Build's default account is the Compute Engine default service account,
# which secure-by-default organisations leave without roles, so every build fails.  The
# four functions build as this account instead, with the roles the Cloud Functions
# documentation lists for a custom build service account
# (https://cloud.google.com/functions/docs/securing/build-custom-sa, and for source
# builds https://cloud.google.com/run/docs/configuring/services/build-service-account):
# logs writer, Artifact Registry writer on the repository that receives the images, and
# Storage object access to fetch the source.

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "armirror Cloud Build builder of the functions"

  depends_on = [google_project_service.required]
}

# Build logs (roles/logging.logWriter has no scope narrower than the project).
resource "google_project_iam_member" "build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}

# Images go to the module's own build repository (build_config.docker_repository), not
# the shared gcf-artifacts one.
resource "google_artifact_registry_repository_iam_member" "build_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.builds.location
  repository = google_artifact_registry_repository.builds.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

# The archive this module uploads...
resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}

# ...which Cloud Functions copies into its own source bucket of the region
# (gcf-v2-sources-NUMBER-REGION, https://cloud.google.com/functions/docs/building), created
# by the service on first deploy: a project grant, conditioned to that bucket.
resource "google_project_iam_member" "build_function_sources" {
  project = var.project_id
  role    = "roles/storage.objectAdmin"
  member  = google_service_account.build.member

  condition {
    title       = "gcf-v2-sources-only"
    description = "Cloud Functions' source bucket of this region only"
    expression  = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-${data.google_project.this.number}-${var.region}\")"
  }
}

# -- the pull store ------------------------------------------------------------------------

resource "google_bigquery_table_iam_member" "store" {
  for_each = local.store_access

  project    = var.project_id
  dataset_id = google_bigquery_dataset.pulls.dataset_id
  table_id   = local.store_tables[each.value.table].table_id
  role       = each.value.role
  member     = google_service_account.functions[each.value.function].member
}

resource "google_project_iam_member" "store_jobs" {
  for_each = local.store_queriers

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.functions[each.key].member
}

# -- the copy queue ------------------------------------------------------------------------

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

# -- the mirror ----------------------------------------------------------------------------

# on_pull_event HEADs the destination to skip images already mirrored; without read
# access that HEAD is refused (a configuration error the code reports as one).
resource "google_artifact_registry_repository_iam_member" "ingest_reader" {
  project    = local.repository_project
  location   = local.repository_location
  repository = local.repository_name
  role       = "roles/artifactregistry.reader"
  member     = google_service_account.functions["on_pull_event"].member
}

# -- who may invoke which function ---------------------------------------------------------
# 2nd gen functions are Cloud Run services of the same name, so invocation is
# roles/run.invoker on that service.

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

# The push subscription delivers to on_pull_event with the push account's OIDC token...
resource "google_cloud_run_v2_service_iam_member" "push_invokes_on_pull_event" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.on_pull_event.name
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

# ...which the Pub/Sub service agent mints.  Projects created on or before 2021-04-08 do
# not give the agent this role, so authenticated push fails there without this grant
# (https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions); on the push
# account only, not the project.
resource "google_service_account_iam_member" "pubsub_agent_mints_push_tokens" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

resource "google_cloud_run_v2_service_iam_member" "request_copy_invokers" {
  for_each = toset(var.request_copy_invokers)

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.request_copy.name
  role     = "roles/run.invoker"
  member   = each.value
}
