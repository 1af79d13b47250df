output "topic" {
  description = "Pub/Sub topic the organisation sink publishes pull events to."
  value       = google_pubsub_topic.pull_events.id
}

output "dead_letter_topic" {
  description = "Dead-letter topic of the pull-events subscription."
  value       = google_pubsub_topic.dead_letter.id
}

output "dataset" {
  description = "BigQuery dataset of the pull store (projects/P/datasets/D)."
  value       = google_bigquery_dataset.pulls.id
}

output "store_url" {
  description = "ARMIRROR_STORE value the functions use (bigquery://PROJECT/DATASET)."
  value       = local.common_env.ARMIRROR_STORE
}

output "queue" {
  description = "Cloud Tasks queue of copies (projects/P/locations/L/queues/Q)."
  value       = google_cloud_tasks_queue.copy.id
}

output "repository_url" {
  description = "Destination prefix: pass it to armirror as --to (LOCATION-docker.pkg.dev/PROJECT/REPOSITORY)."
  value       = local.repository_url
}

output "request_copy_url" {
  description = "URL of request_copy (call it with an ID token of a request_copy_invokers member)."
  value       = google_cloudfunctions2_function.request_copy.url
}

output "copy_image_url" {
  description = "URL of copy_image, the Cloud Tasks target."
  value       = google_cloudfunctions2_function.copy_image.url
}

output "service_accounts" {
  description = "Email of each service account the module created."
  value = merge(
    { for k, sa in google_service_account.functions : k => sa.email },
    {
      tasks     = google_service_account.tasks.email
      scheduler = google_service_account.scheduler.email
      push      = google_service_account.push.email
      build     = google_service_account.build.email
    },
  )
}

output "sink_writer_identity" {
  description = "Identity the organisation sink writes as (granted publish on the topic)."
  value       = google_logging_organization_sink.pull_events.writer_identity
}

output "subscription" {
  description = "The push subscription that delivers pull events to on_pull_event (7-day retention, retry and dead-letter policies)."
  value       = google_pubsub_subscription.pull_events.id
}

output "dead_letter_subscription" {
  description = "Subscription of the dead-letter topic: messages on_pull_event failed on max_delivery_attempts times, kept 7 days."
  value       = google_pubsub_subscription.dead_letter.id
}

output "replay_command" {
  description = "Shell command that delivers again every pull event since a time (set SINCE, e.g. 2026-10-01T08:00:00Z), after an outage of up to 7 days; replays are idempotent."
  value       = "gcloud pubsub subscriptions seek ${google_pubsub_subscription.pull_events.name} --project=${var.project_id} --time=\"$SINCE\""
}

output "registry_credentials_secret" {
  description = "Secret Manager secret whose latest version is the Docker config.json copy_image and refresh use (see README, Registry credentials)."
  value       = google_secret_manager_secret.registry_credentials.id
}

output "build_service_account" {
  description = "Email of the account Cloud Build builds the four functions as."
  value       = google_service_account.build.email
}
