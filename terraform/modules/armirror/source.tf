# The functions' source: functions/ zipped (here, or beforehand by cloudbuild.yaml's
# package step) and uploaded; the object name carries the archive's hash so a code change
# redeploys every function and an unchanged one nothing.

data "archive_file" "functions" {
  count = var.functions_archive == null ? 1 : 0

  type        = "zip"
  source_dir  = local.functions_dir
  output_path = "${path.root}/.terraform/tmp/armirror-functions.zip"
  excludes = [
    "**/__pycache__/**",
    "**/*.pyc",
    "*.egg-info/**",
    "**/.pytest_cache/**",
    "**/.mypy_cache/**",
  ]
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:The bucket holds only the functions' source archives, read by Cloud Build at deploy time; Cloud Audit Logs record access, so a separate access-log bucket adds cost without insight.
  project  = var.project_id
  name     = "${var.project_id}-${var.name_prefix}-source"
  location = var.region
  labels   = local.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  versioning {
    enabled = true
  }

  # A new archive has a new name and Terraform deletes the old one, which versioning keeps
  # as a noncurrent version for a month of rollbacks.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.required]
}

locals {
  archive_path = var.functions_archive != null ? var.functions_archive : data.archive_file.functions[0].output_path
  archive_md5  = var.functions_archive != null ? filemd5(var.functions_archive) : data.archive_file.functions[0].output_md5
}

resource "google_storage_bucket_object" "functions" {
  name   = "functions-${local.archive_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = local.archive_path
}
