# The copy queue: one task copies one image.  Its rate protects Docker Hub's pull limits.
# Docker's pages have given two sets of numbers since 2025
# (https://docs.docker.com/docker-hub/usage/ and .../usage/pulls/, read 2026):
#   unauthenticated users  10 pulls per hour, or 100 per 6 hours, per IPv4 address or IPv6 /64
#   Personal (free)       100 pulls per hour, or 200 per 6 hours
#   Pro, Team, Business   no pull rate limit, subject to fair use
# The hourly budget below is the lower of each pair (10; 200/6 = 33), so the queue keeps
# within whichever applies.  A pull is counted per manifest GET (a HEAD is free).  One
# copy GETs the tag's manifest, each platform's manifest and signature manifests, so a
# copy is budgeted as pulls_per_copy pulls.  Cloud Functions egress addresses are shared,
# so the anonymous allowance of "our" address may already be partly spent: the rate is a
# ceiling, and the code still reads ratelimit-remaining and backs off on 429 and
# Retry-After.

locals {
  pulls_per_copy = 4

  docker_hub_pulls_per_hour = {
    anonymous = 10   # min(10 an hour, 100 per 6 hours)
    personal  = 33   # min(100 an hour, 200 per 6 hours)
    paid      = null # no rate limit; fair use
  }

  # Derived defaults: an hour's dispatches cost at most the plan's hourly pulls.  With a
  # paid plan the rate is bounded by copy_image's instances instead.
  plan_pulls_per_hour = local.docker_hub_pulls_per_hour[var.docker_hub_plan]
  derived_queue = {
    max_dispatches_per_second = local.plan_pulls_per_hour == null ? 1 : local.plan_pulls_per_hour / local.pulls_per_copy / 3600
    max_concurrent_dispatches = local.plan_pulls_per_hour == null ? var.copy_image.max_instances : (var.docker_hub_plan == "anonymous" ? 1 : 2)
  }

  queue_rate        = coalesce(var.queue.max_dispatches_per_second, local.derived_queue.max_dispatches_per_second)
  queue_concurrency = coalesce(var.queue.max_concurrent_dispatches, local.derived_queue.max_concurrent_dispatches)
}

resource "google_cloud_tasks_queue" "copy" {
  project  = var.project_id
  location = var.region
  name     = "${var.name_prefix}-copy"

  rate_limits {
    max_dispatches_per_second = local.queue_rate
    max_concurrent_dispatches = local.queue_concurrency
  }

  retry_config {
    max_attempts       = var.queue.max_attempts
    max_retry_duration = var.queue.max_retry_duration
    min_backoff        = var.queue.min_backoff
    max_backoff        = var.queue.max_backoff
    max_doublings      = var.queue.max_doublings
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.required]
}
