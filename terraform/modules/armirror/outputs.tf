output "topic" {
  description = "Pub/Sub topic the organisation sink publishes pull events to."
  value       = google_pubsub_topic.pull_events.id
}

output "dead_letter_topic" {
  description = "Dead-letter topic for pull events (see dead_letter_command)."
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
    { tasks = google_service_account.tasks.email, scheduler = google_service_account.scheduler.email },
  )
}

output "sink_writer_identity" {
  description = "Identity the organisation sink writes as (granted publish on the topic)."
  value       = google_logging_organization_sink.pull_events.writer_identity
}

output "dead_letter_command" {
  description = "Shell commands that attach the dead-letter topic to the subscription Eventarc created for on_pull_event."
  value       = <<-EOT
    SUB=$(gcloud eventarc triggers describe ${basename(google_cloudfunctions2_function.on_pull_event.event_trigger[0].trigger)} --project=${var.project_id} --location=${var.region} --format='value(transport.pubsub.subscription)')
    gcloud pubsub subscriptions update "$SUB" --dead-letter-topic=${google_pubsub_topic.dead_letter.id} --max-delivery-attempts=20
    gcloud pubsub subscriptions add-iam-policy-binding "$SUB" --member=${local.pubsub_service_agent} --role=roles/pubsub.subscriber
  EOT
}
