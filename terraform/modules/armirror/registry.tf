# The destination repository and who may read it.

resource "google_artifact_registry_repository" "mirror" {
  #checkov:skip=CKV_GCP_84:Customer-managed keys are opt-in (var.repository_kms_key_name); Google-managed encryption otherwise, as a key ring cannot be assumed in every adopting organisation.
  count = var.create_repository ? 1 : 0

  project       = local.repository_project
  location      = local.repository_location
  repository_id = var.repository_id
  format        = "DOCKER"
  kms_key_name  = var.repository_kms_key_name
  description   = "armirror: images mirrored from third-party registries (paths keep the source host)"
  labels        = local.labels

  cleanup_policy_dry_run = var.cleanup_policy_dry_run

  dynamic "cleanup_policies" {
    for_each = var.untagged_retention_days == null ? [] : [var.untagged_retention_days]
    content {
      id     = "delete-untagged"
      action = "DELETE"
      condition {
        tag_state  = "UNTAGGED"
        older_than = "${cleanup_policies.value * 86400}s"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.repository_kms_key_name == null ? true : split("/", var.repository_kms_key_name)[3] == local.repository_location
      error_message = "repository_kms_key_name must be a key in the repository's location (${local.repository_location}); BigQuery takes its own key, bigquery_kms_key_name."
    }
  }

  depends_on = [google_project_service.required]
}

# Where Cloud Build puts the functions' images (build_config.docker_repository), so the
# build account writes to this repository and no other.  Old images are cleaned up.
resource "google_artifact_registry_repository" "builds" {
  #checkov:skip=CKV_GCP_84:Holds only the armirror functions' own images, built from this repository's source; no data of the organisation, so Google-managed encryption.
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name_prefix}-builds"
  format        = "DOCKER"
  description   = "armirror: images of the armirror Cloud Functions (built by Cloud Build)"
  labels        = local.labels

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "${30 * 86400}s"
    }
  }

  depends_on = [google_project_service.required]
}

locals {
  # The repository's name whether this module created it or not.
  repository_name = var.create_repository ? google_artifact_registry_repository.mirror[0].name : var.repository_id
}

resource "google_artifact_registry_repository_iam_member" "copier_writer" {
  project    = local.repository_project
  location   = local.repository_location
  repository = local.repository_name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.functions["copy_image"].member
}

resource "google_artifact_registry_repository_iam_member" "consumers" {
  for_each = toset(var.consumers)

  project    = local.repository_project
  location   = local.repository_location
  repository = local.repository_name
  role       = "roles/artifactregistry.reader"
  member     = each.value
}
