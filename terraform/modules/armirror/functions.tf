# The four Cloud Functions (2nd gen, python312), entry points from functions/main.py.
# All four build as the module's build account into its build repository (iam.tf), and a
# bad configuration stops them at start: functions/main.py validates the environment when
# it is imported, so the deployment fails and says why instead of answering 500s.

locals {
  build_source = {
    bucket = google_storage_bucket.source.name
    object = google_storage_bucket_object.functions.name
  }
  build_service_account = google_service_account.build.id
  build_repository      = google_artifact_registry_repository.builds.id
}

resource "google_cloudfunctions2_function" "on_pull_event" {
  project     = var.project_id
  location    = var.region
  name        = local.names.on_pull_event
  description = "armirror: count image pulls from the organisation log sink and queue copies (push subscription target)"
  labels      = local.labels

  build_config {
    runtime           = "python312"
    entry_point       = "on_pull_event"
    service_account   = local.build_service_account
    docker_repository = local.build_repository
    source {
      storage_source {
        bucket = local.build_source.bucket
        object = local.build_source.object
      }
    }
  }

  service_config {
    available_memory                 = "512Mi"
    timeout_seconds                  = 60
    max_instance_count               = 20
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.functions["on_pull_event"].email
    environment_variables            = local.common_env
    max_instance_request_concurrency = 1
  }

  depends_on = [
    google_project_iam_member.build_logs,
    google_artifact_registry_repository_iam_member.build_images,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_function_sources,
  ]
}

resource "google_cloudfunctions2_function" "copy_image" {
  project     = var.project_id
  location    = var.region
  name        = local.names.copy_image
  description = "armirror: copy one image (all platforms, signatures) into Artifact Registry; Cloud Tasks target"
  labels      = local.labels

  build_config {
    runtime           = "python312"
    entry_point       = "copy_image"
    service_account   = local.build_service_account
    docker_repository = local.build_repository
    source {
      storage_source {
        bucket = local.build_source.bucket
        object = local.build_source.object
      }
    }
  }

  service_config {
    available_memory                 = var.copy_image.memory
    available_cpu                    = var.copy_image.cpu
    timeout_seconds                  = var.copy_image.timeout_seconds
    max_instance_count               = var.copy_image.max_instances
    max_instance_request_concurrency = 1
    # Cloud Tasks in the same project counts as internal traffic.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.functions["copy_image"].email
    environment_variables          = local.copy_env

    secret_volumes {
      mount_path = local.docker_config_dir
      project_id = var.project_id
      secret     = google_secret_manager_secret.registry_credentials.secret_id
      versions {
        version = "latest"
        path    = "config.json"
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_version.anonymous,
    google_secret_manager_secret_iam_member.registry_readers,
    google_project_iam_member.build_logs,
    google_artifact_registry_repository_iam_member.build_images,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_function_sources,
  ]
}

resource "google_cloudfunctions2_function" "request_copy" {
  #checkov:skip=CKV_GCP_124:request_copy is the manual entry point that people call from outside the VPC; IAM admits only var.request_copy_invokers (no public invoker), and var.request_copy_ingress narrows ingress where callers are internal.
  project     = var.project_id
  location    = var.region
  name        = local.names.request_copy
  description = "armirror: queue a copy of a named image (manual, authenticated HTTP)"
  labels      = local.labels

  build_config {
    runtime           = "python312"
    entry_point       = "request_copy"
    service_account   = local.build_service_account
    docker_repository = local.build_repository
    source {
      storage_source {
        bucket = local.build_source.bucket
        object = local.build_source.object
      }
    }
  }

  service_config {
    available_memory               = "256Mi"
    timeout_seconds                = 60
    max_instance_count             = 3
    ingress_settings               = var.request_copy_ingress
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.functions["request_copy"].email
    environment_variables          = local.common_env
  }

  depends_on = [
    google_project_iam_member.build_logs,
    google_artifact_registry_repository_iam_member.build_images,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_function_sources,
  ]
}

resource "google_cloudfunctions2_function" "refresh" {
  project     = var.project_id
  location    = var.region
  name        = local.names.refresh
  description = "armirror: re-copy mirrors whose upstream tag moved (Cloud Scheduler)"
  labels      = local.labels

  build_config {
    runtime           = "python312"
    entry_point       = "refresh"
    service_account   = local.build_service_account
    docker_repository = local.build_repository
    source {
      storage_source {
        bucket = local.build_source.bucket
        object = local.build_source.object
      }
    }
  }

  service_config {
    available_memory = "512Mi"
    timeout_seconds  = 540
    # One refresh at a time: overlapping runs would only queue duplicate (deduplicated) tasks.
    max_instance_count = 1
    # Cloud Scheduler in the same project counts as internal traffic.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.functions["refresh"].email
    environment_variables          = local.registry_env

    secret_volumes {
      mount_path = local.docker_config_dir
      project_id = var.project_id
      secret     = google_secret_manager_secret.registry_credentials.secret_id
      versions {
        version = "latest"
        path    = "config.json"
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_version.anonymous,
    google_secret_manager_secret_iam_member.registry_readers,
    google_project_iam_member.build_logs,
    google_artifact_registry_repository_iam_member.build_images,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_function_sources,
  ]
}

check "copy_url_is_deployed_url" {
  assert {
    condition     = google_cloudfunctions2_function.copy_image.url == local.copy_url
    error_message = "copy_image is served at ${google_cloudfunctions2_function.copy_image.url}, not ${local.copy_url} as ARMIRROR_COPY_URL says."
  }
}
