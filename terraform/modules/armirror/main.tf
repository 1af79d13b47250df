# armirror for one organisation: an org log sink feeds kubelet pull events and Cloud Run
# deployments through Pub/Sub to on_pull_event, which counts pulls in BigQuery and queues
# copies on Cloud Tasks for copy_image to mirror into Artifact Registry.

locals {
  functions_dir = coalesce(var.functions_source_dir, "${path.module}/../../../functions")
  infra_dir     = coalesce(var.infra_dir, "${path.module}/../../../infra")

  repository_project  = coalesce(var.repository_project_id, var.project_id)
  repository_location = coalesce(var.repository_location, var.region)
  repository_url      = "${local.repository_location}-docker.pkg.dev/${local.repository_project}/${var.repository_id}"

  bigquery_location = coalesce(var.bigquery_location, var.region)

  labels = merge({ app = "armirror" }, var.labels)

  # Lines starting with "--" are comments in infra/sink-filter.txt; they are dropped here so
  # the filter sent to Cloud Logging is only the query.
  sink_filter = trimspace(replace(file("${local.infra_dir}/sink-filter.txt"), "/(?m)^[ \\t]*--.*$/", ""))

  # Function and service account names.  The Cloud Run service behind each 2nd gen
  # function has the function's name.
  names = {
    on_pull_event = "${var.name_prefix}-on-pull-event"
    copy_image    = "${var.name_prefix}-copy-image"
    request_copy  = "${var.name_prefix}-request-copy"
    refresh       = "${var.name_prefix}-refresh"
  }

  # The copy_image URL is deterministic for 2nd gen functions, so every function can be
  # given it without waiting for copy_image to exist (no dependency cycle).  The check
  # block in functions.tf warns if the deployed URL ever differs.
  copy_url = "https://${var.region}-${var.project_id}.cloudfunctions.net/${local.names.copy_image}"

  queue_url = "cloudtasks://${google_cloud_tasks_queue.copy.id}"

  # Environment of every function: each variable is one armirror.config reads.
  common_env = {
    ARMIRROR_DESTINATION           = local.repository_url
    ARMIRROR_STORE                 = "bigquery://${var.project_id}/${google_bigquery_dataset.pulls.dataset_id}"
    ARMIRROR_QUEUE                 = local.queue_url
    ARMIRROR_COPY_URL              = local.copy_url
    ARMIRROR_TASKS_SERVICE_ACCOUNT = google_service_account.tasks.email
    ARMIRROR_ALLOW                 = join(",", var.allow)
    ARMIRROR_DENY                  = join(",", var.deny)
    ARMIRROR_MIRROR_THRESHOLD      = tostring(var.mirror_threshold)
    ARMIRROR_UPSTREAMS             = local.upstreams
  }

  # ARMIRROR_UPSTREAMS: REGISTRY=URL[,URL...], endpoints tried in order.  Docker Hub goes
  # to the mirror first (mirror.gcr.io serves cached Docker Hub images without Docker
  # Hub's pull limits) and to Docker Hub itself when the mirror does not have the image.
  upstreams = var.docker_hub_mirror == null ? "" : "docker.io=${var.docker_hub_mirror},https://registry-1.docker.io"

  # Where copy_image and refresh find the Docker config.json of the registry_credentials
  # secret (DOCKER_CONFIG is the directory holding config.json).
  docker_config_dir = "/etc/armirror/docker"
  registry_env      = merge(local.common_env, { DOCKER_CONFIG = local.docker_config_dir })
  # copy_image stops its transfers before the platform stops it, and the next attempt
  # resumes them (README: "Large images and the 30-minute limit").
  copy_env = merge(local.registry_env, { ARMIRROR_COPY_DEADLINE = tostring(var.copy_image.timeout_seconds) })

  services = toset([
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "required" {
  for_each = local.services

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
