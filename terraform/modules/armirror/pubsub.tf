# The organisation log sink, the topic it publishes to, and the push subscription this
# module owns that delivers each message to on_pull_event.
#
# Delivery guarantees (README, "Delivery"):
# - Every message stays on the subscription for 7 days, acknowledged or not
#   (retain_acked_messages), so after an outage of up to 7 days the replay_command output
#   (a seek to a time before the outage) delivers everything again; recording is
#   idempotent by insertId and copy task names are deterministic, so a replay changes
#   nothing that was already done.
# - A message on_pull_event keeps failing is retried with exponential backoff
#   (pull_event_delivery.minimum_backoff .. maximum_backoff) and after
#   max_delivery_attempts goes to the dead-letter topic, whose subscription keeps it 7 days.
# - Garbage never gets there: on_pull_event logs and acknowledges it.

resource "google_pubsub_topic" "pull_events" {
  #checkov:skip=CKV_GCP_83:Customer-managed keys are opt-in (var.pubsub_kms_key_name); Google-managed encryption otherwise, as a key ring cannot be assumed in every adopting organisation.
  project      = var.project_id
  kms_key_name = var.pubsub_kms_key_name
  name         = "${var.name_prefix}-pull-events"
  labels       = local.labels

  # The topic keeps messages a week too, so a new or recreated subscription can seek back.
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

locals {
  on_pull_event_url    = google_cloudfunctions2_function.on_pull_event.service_config[0].uri
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_subscription" "pull_events" {
  project = var.project_id
  name    = "${var.name_prefix}-pull-events"
  topic   = google_pubsub_topic.pull_events.id
  labels  = local.labels

  # 7 days, Pub/Sub's maximum: events wait out an outage of the function up to a week.
  message_retention_duration = "604800s"
  retain_acked_messages      = true
  # How long Pub/Sub waits for on_pull_event's answer: its timeout.
  ack_deadline_seconds = 60

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = var.pull_event_delivery.minimum_backoff
    maximum_backoff = var.pull_event_delivery.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.pull_event_delivery.max_delivery_attempts
  }

  # functions-framework turns the wrapped push body into the messagePublished CloudEvent
  # that on_pull_event takes.  The OIDC token is the push account's, audience the URL.
  push_config {
    push_endpoint = local.on_pull_event_url

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.on_pull_event_url
    }
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.push_invokes_on_pull_event,
    google_service_account_iam_member.pubsub_agent_mints_push_tokens,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

# Dead letters: what on_pull_event kept failing on after max_delivery_attempts.
resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Customer-managed keys are opt-in (var.pubsub_kms_key_name); Google-managed encryption otherwise, as a key ring cannot be assumed in every adopting organisation.
  project                    = var.project_id
  kms_key_name               = var.pubsub_kms_key_name
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

# Pub/Sub forwards dead letters as its service agent: it publishes to the dead-letter
# topic and acknowledges on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_forwarder" {
  project      = var.project_id
  subscription = google_pubsub_subscription.pull_events.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
