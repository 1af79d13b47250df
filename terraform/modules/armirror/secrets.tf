# Registry credentials for copy_image and refresh: a Secret Manager secret holding a
# Docker config.json, mounted as a file in those two functions only, with DOCKER_CONFIG
# pointing at its directory.  The module adds a first version with no credentials
# ({"auths": {}}: anonymous pulls) so the functions can start; the operator adds the real
# one (README, "Registry credentials") and new instances read the latest version.

resource "google_secret_manager_secret" "registry_credentials" {
  project   = var.project_id
  secret_id = "${var.name_prefix}-registry-credentials"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.required]
}

resource "google_secret_manager_secret_version" "anonymous" {
  secret      = google_secret_manager_secret.registry_credentials.id
  secret_data = jsonencode({ auths = {} })

  # The operator's versions follow this one; Terraform never touches them.
  lifecycle {
    ignore_changes = [secret_data]
  }
}

locals {
  # The functions that pull from third-party registries, and so read the credentials.
  registry_readers = toset(["copy_image", "refresh"])
}

resource "google_secret_manager_secret_iam_member" "registry_readers" {
  for_each = local.registry_readers

  project   = var.project_id
  secret_id = google_secret_manager_secret.registry_credentials.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.functions[each.key].member
}
