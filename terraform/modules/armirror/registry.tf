# The destination repository and who may read it.

resource "google_artifact_registry_repository" "mirror" {
  #checkov:skip=CKV_GCP_84:Customer-managed keys are opt-in (var.kms_key_name); Google-managed encryption otherwise, as a key ring cannot be assumed in every adopting organisation.
  count = var.create_repository ? 1 : 0

  project       = local.repository_project
  location      = local.repository_location
  repository_id = var.repository_id
  format        = "DOCKER"
  kms_key_name  = var.kms_key_name
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
