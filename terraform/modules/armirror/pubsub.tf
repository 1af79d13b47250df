# The organisation log sink and the topic it publishes to.

resource "google_pubsub_topic" "pull_events" {
  #checkov:skip=CKV_GCP_83:Customer-managed keys are opt-in (var.kms_key_name); Google-managed encryption otherwise, as a key ring cannot be assumed in every adopting organisation.
  project      = var.project_id
  kms_key_name = var.kms_key_name
  name         = "${var.name_prefix}-pull-events"
  labels       = local.labels

  # Events wait here while the function is down or failing; a week covers a long outage.
  message_retention_duration = "604800s"

  depends_on = [google_project_service.required]
}

resource "google_logging_organization_sink" "pull_events" {
  name             = "${var.name_prefix}-pull-events"
  org_id           = var.org_id
  description      = "armirror: kubelet image pull events and Cloud Run deployments (filter: infra/sink-filter.txt)"
  destination      = "pubsub.googleapis.com/${google_pubsub_topic.pull_events.id}"
  filter           = local.sink_filter
  include_children = true
}

resource "google_pubsub_topic_iam_member" "sink_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.pull_events.name
  role    = "roles/pubsub.publisher"
  member  = google_logging_organization_sink.pull_events.writer_identity
}

# Dead letters.  Eventarc owns the subscription that feeds on_pull_event, so Terraform
# cannot set its dead-letter policy; the topic, a week-long subscription to inspect what
# lands there and the Pub/Sub service agent's grants are created here, and the command in
# the dead_letter_command output attaches the topic to the Eventarc subscription.  Poison
# messages never get here: on_pull_event logs and acknowledges them.
resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Customer-managed keys are opt-in (var.kms_key_name); Google-managed encryption otherwise, as a key ring cannot be assumed in every adopting organisation.
  project                    = var.project_id
  kms_key_name               = var.kms_key_name
  name                       = "${var.name_prefix}-pull-events-dead-letter"
  labels                     = local.labels
  message_retention_duration = "604800s"

  depends_on = [google_project_service.required]
}

resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.name_prefix}-pull-events-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  labels                     = local.labels
  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = ""
  }
}

locals {
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}
