# The pull store.  Table schemas and views are the files in infra/bigquery that the code
# uses too: NAME.json is the BigQuery JSON schema of table NAME, NAME.sql the GoogleSQL of
# view NAME (a template: ${project} and ${dataset} name where the tables live).

locals {
  bigquery_dir = "${local.infra_dir}/bigquery"

  table_files = { for f in fileset(local.bigquery_dir, "*.json") : trimsuffix(f, ".json") => "${local.bigquery_dir}/${f}" }
  view_files  = { for f in fileset(local.bigquery_dir, "*.sql") : trimsuffix(f, ".sql") => "${local.bigquery_dir}/${f}" }

  # Partitioning and clustering per table; the fields must exist in the schema files (a
  # test checks).  Tables not named here are neither partitioned nor clustered.
  table_layout = {
    pull_events = { partition_field = "event_time", clustering = ["registry", "repository"] }
    copies      = { partition_field = "requested_at", clustering = ["registry", "repository"] }
  }
}

resource "google_bigquery_dataset" "pulls" {
  #checkov:skip=CKV_GCP_81:Customer-managed keys are opt-in (var.bigquery_kms_key_name); Google-managed encryption otherwise, as a key ring cannot be assumed in every adopting organisation.
  project     = var.project_id
  dataset_id  = var.dataset_id
  location    = local.bigquery_location
  description = "armirror: image pulls seen in the organisation and copies made"
  labels      = local.labels

  dynamic "default_encryption_configuration" {
    for_each = var.bigquery_kms_key_name == null ? [] : [var.bigquery_kms_key_name]
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }

  lifecycle {
    precondition {
      condition     = var.bigquery_kms_key_name == null ? true : lower(split("/", var.bigquery_kms_key_name)[3]) == lower(local.bigquery_location)
      error_message = "bigquery_kms_key_name must be a key in the dataset's location (${local.bigquery_location}); the repository takes its own key, repository_kms_key_name."
    }
  }

  depends_on = [google_project_service.required]
}

resource "google_bigquery_table" "tables" {
  #checkov:skip=CKV_GCP_80:Customer-managed keys are opt-in (var.bigquery_kms_key_name); Google-managed encryption otherwise, as a key ring cannot be assumed in every adopting organisation.
  for_each = local.table_files

  project             = var.project_id
  dataset_id          = google_bigquery_dataset.pulls.dataset_id
  table_id            = each.key
  schema              = file(each.value)
  labels              = local.labels
  deletion_protection = var.deletion_protection

  dynamic "time_partitioning" {
    for_each = contains(keys(local.table_layout), each.key) ? [local.table_layout[each.key]] : []
    content {
      type          = "DAY"
      field         = time_partitioning.value.partition_field
      expiration_ms = var.partition_expiration_days == null ? null : var.partition_expiration_days * 86400000
    }
  }

  clustering = contains(keys(local.table_layout), each.key) ? local.table_layout[each.key].clustering : null

  dynamic "encryption_configuration" {
    for_each = var.bigquery_kms_key_name == null ? [] : [var.bigquery_kms_key_name]
    content {
      kms_key_name = encryption_configuration.value
    }
  }
}

resource "google_bigquery_table" "views" {
  #checkov:skip=CKV_GCP_80:A view stores no data, so there is nothing for a customer-managed key to encrypt; the tables it reads follow var.bigquery_kms_key_name.
  for_each = local.view_files

  project             = var.project_id
  dataset_id          = google_bigquery_dataset.pulls.dataset_id
  table_id            = each.key
  labels              = local.labels
  deletion_protection = var.deletion_protection

  view {
    query          = templatefile(each.value, { project = var.project_id, dataset = google_bigquery_dataset.pulls.dataset_id })
    use_legacy_sql = false
  }

  depends_on = [google_bigquery_table.tables]
}
