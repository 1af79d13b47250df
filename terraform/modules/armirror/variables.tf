# Inputs of the armirror module.  Everything but org_id, project_id and region has a
# default sized for a first deployment; see README.md for the table.

variable "org_id" {
  description = "Numeric ID of the organisation whose pull events are collected (the log sink is created here)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+$", var.org_id))
    error_message = "org_id is the numeric organisation ID, e.g. 123456789012."
  }
}

variable "project_id" {
  description = "Project that hosts armirror: functions, topic, queue, dataset and (by default) the repository."
  type        = string
}

variable "region" {
  description = "Region of the functions, queue, scheduler job and source bucket, e.g. europe-west1."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every resource and service account name."
  type        = string
  default     = "armirror"

  validation {
    # The longest service account ID is "<prefix>-scheduler" and must fit in 30 characters.
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: 3-20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "repository_location" {
  description = "Artifact Registry location of the destination repository (a region or a multi-region such as us or europe). Defaults to region."
  type        = string
  default     = null
}

variable "repository_id" {
  description = "Name of the destination Docker repository."
  type        = string
  default     = "armirror"
}

variable "repository_project_id" {
  description = "Project of the destination repository, when it is not project_id (only with create_repository = false)."
  type        = string
  default     = null
}

variable "create_repository" {
  description = "Create the Docker repository. Set false to mirror into an existing one (the module still grants its IAM)."
  type        = bool
  default     = true
}

variable "untagged_retention_days" {
  description = "When set, a cleanup policy deletes untagged versions older than this many days. Leave null if workloads pull mirrored images by digest only."
  type        = number
  default     = null

  validation {
    condition     = var.untagged_retention_days == null ? true : var.untagged_retention_days >= 1
    error_message = "untagged_retention_days must be at least 1, or null for no cleanup."
  }
}

variable "cleanup_policy_dry_run" {
  description = "Run the cleanup policy in dry-run mode (log what would be deleted, delete nothing)."
  type        = bool
  default     = true
}

variable "allow" {
  description = "Glob patterns of source images that may be mirrored (ARMIRROR_ALLOW). Empty means the code's default."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.allow : length(trimspace(p)) > 0 && !strcontains(p, ",")])
    error_message = "allow patterns must be non-empty and contain no commas."
  }
}

variable "deny" {
  description = "Glob patterns of source images that are never mirrored (ARMIRROR_DENY); deny wins over allow."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.deny : length(trimspace(p)) > 0 && !strcontains(p, ",")])
    error_message = "deny patterns must be non-empty and contain no commas."
  }
}

variable "mirror_threshold" {
  description = "Pulls of an image seen before it is mirrored (ARMIRROR_MIRROR_THRESHOLD)."
  type        = number
  default     = 1

  validation {
    condition     = var.mirror_threshold >= 1 && floor(var.mirror_threshold) == var.mirror_threshold
    error_message = "mirror_threshold is a whole number, at least 1."
  }
}

variable "consumers" {
  description = "IAM members granted roles/artifactregistry.reader on the repository: GKE node service accounts and Cloud Run service agents (serviceAccount:service-NUMBER@serverless-robot-prod.iam.gserviceaccount.com) of the projects that pull."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for m in var.consumers : can(regex("^(serviceAccount|group|user|domain|principal|principalSet):.+", m))
    ])
    error_message = "consumers are IAM members such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com; allUsers and allAuthenticatedUsers are not accepted."
  }
}

variable "request_copy_invokers" {
  description = "IAM members allowed to call request_copy (roles/run.invoker on that function only)."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for m in var.request_copy_invokers : can(regex("^(serviceAccount|group|user|domain|principal|principalSet):.+", m))
    ])
    error_message = "request_copy_invokers are IAM members; allUsers and allAuthenticatedUsers are not accepted."
  }
}

variable "request_copy_ingress" {
  description = "Ingress of request_copy: ALLOW_ALL (IAM still applies) so people can call it, or ALLOW_INTERNAL_ONLY / ALLOW_INTERNAL_AND_GCLB when callers are inside the VPC or behind a load balancer."
  type        = string
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.request_copy_ingress)
    error_message = "request_copy_ingress is ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "docker_hub_plan" {
  description = "Docker Hub plan of the credentials in the registry_credentials secret: anonymous (no credentials: 10 pulls an hour, or 100 per 6 hours, per IPv4 address or IPv6 /64), personal (100 an hour, or 200 per 6 hours) or paid (Pro, Team, Business: no pull rate limit, fair use); the queue keeps to the lower figure of each. The copy queue's rate and concurrency derive from it unless queue sets them."
  type        = string
  default     = "anonymous"

  validation {
    condition     = contains(["anonymous", "personal", "paid"], var.docker_hub_plan)
    error_message = "docker_hub_plan is anonymous, personal or paid."
  }
}

variable "docker_hub_mirror" {
  description = "Endpoint tried first for Docker Hub images (a pull-through cache such as Google's mirror.gcr.io, which serves cached Docker Hub images without Docker Hub's pull limits); Docker Hub itself (registry-1.docker.io) is tried next. null sends every Docker Hub request to Docker Hub."
  type        = string
  default     = "https://mirror.gcr.io"

  validation {
    condition     = var.docker_hub_mirror == null ? true : can(regex("^https://[a-z0-9.-]+(:[0-9]+)?$", var.docker_hub_mirror))
    error_message = "docker_hub_mirror is an https:// URL of a registry host (no path), or null."
  }
}

variable "queue" {
  description = "Copy queue limits. max_dispatches_per_second and max_concurrent_dispatches default (null) to values derived from docker_hub_plan (see README); retries back off exponentially for up to a day."
  type = object({
    max_dispatches_per_second = optional(number)
    max_concurrent_dispatches = optional(number)
    max_attempts              = optional(number, 20)
    max_retry_duration        = optional(string, "86400s")
    min_backoff               = optional(string, "60s")
    max_backoff               = optional(string, "3600s")
    max_doublings             = optional(number, 5)
  })
  default = {}

  validation {
    condition     = var.queue.max_dispatches_per_second == null ? true : (var.queue.max_dispatches_per_second > 0 && var.queue.max_dispatches_per_second <= 500)
    error_message = "queue.max_dispatches_per_second must be in (0, 500], or null to derive it from docker_hub_plan."
  }
}

variable "pull_event_delivery" {
  description = "How the push subscription delivers pull events to on_pull_event: attempts before a message goes to the dead-letter topic (5-100) and the exponential backoff between attempts (0-600 s). Every message is also kept 7 days for replay."
  type = object({
    max_delivery_attempts = optional(number, 20)
    minimum_backoff       = optional(string, "10s")
    maximum_backoff       = optional(string, "600s")
  })
  default = {}

  validation {
    condition     = var.pull_event_delivery.max_delivery_attempts >= 5 && var.pull_event_delivery.max_delivery_attempts <= 100
    error_message = "pull_event_delivery.max_delivery_attempts must be within Pub/Sub's 5-100."
  }
}

variable "refresh_schedule" {
  description = "Cron schedule of the refresh job (HEADs each mirrored tag upstream and re-copies the ones that moved)."
  type        = string
  default     = "17 */6 * * *"
}

variable "refresh_time_zone" {
  description = "Time zone of refresh_schedule."
  type        = string
  default     = "Etc/UTC"
}

variable "dataset_id" {
  description = "BigQuery dataset of the pull store."
  type        = string
  default     = "armirror"
}

variable "bigquery_location" {
  description = "BigQuery dataset location. Defaults to region."
  type        = string
  default     = null
}

variable "partition_expiration_days" {
  description = "Drop partitions of partitioned tables older than this many days; null keeps them."
  type        = number
  default     = null

  validation {
    condition     = var.partition_expiration_days == null ? true : var.partition_expiration_days >= 1
    error_message = "partition_expiration_days must be at least 1, or null."
  }
}

variable "deletion_protection" {
  description = "Protect the BigQuery tables from terraform destroy."
  type        = bool
  default     = true
}

variable "copy_image" {
  description = "Sizing of the copy_image function. Its timeout bounds one copy and the Cloud Tasks dispatch deadline (at most 1800 s)."
  type = object({
    memory          = optional(string, "1Gi")
    cpu             = optional(string, "1")
    timeout_seconds = optional(number, 1800)
    max_instances   = optional(number, 5)
  })
  default = {}

  validation {
    condition     = var.copy_image.timeout_seconds >= 15 && var.copy_image.timeout_seconds <= 1800
    error_message = "copy_image.timeout_seconds must be within Cloud Tasks' dispatch deadline, 15-1800."
  }
}

variable "functions_source_dir" {
  description = "Directory uploaded as the functions' source. Defaults to the repository's functions/."
  type        = string
  default     = null
}

variable "infra_dir" {
  description = "Directory holding sink-filter.txt and bigquery/. Defaults to the repository's infra/."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}

variable "repository_kms_key_name" {
  description = "Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) for the Artifact Registry repositories; its location must be the repository's (e.g. the multi-region europe). null uses Google-managed keys. The Artifact Registry service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it (granted outside this module)."
  type        = string
  default     = null

  validation {
    condition     = var.repository_kms_key_name == null ? true : can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.repository_kms_key_name))
    error_message = "repository_kms_key_name is projects/P/locations/L/keyRings/R/cryptoKeys/K, or null."
  }
}

variable "bigquery_kms_key_name" {
  description = "Cloud KMS key for the BigQuery dataset and tables; its location must be the dataset's (a BigQuery region or multi-region). null uses Google-managed keys. The BigQuery service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it."
  type        = string
  default     = null

  validation {
    condition     = var.bigquery_kms_key_name == null ? true : can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.bigquery_kms_key_name))
    error_message = "bigquery_kms_key_name is projects/P/locations/L/keyRings/R/cryptoKeys/K, or null."
  }
}

variable "pubsub_kms_key_name" {
  description = "Cloud KMS key for the pull-events and dead-letter topics. null uses Google-managed keys. The Pub/Sub service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it."
  type        = string
  default     = null

  validation {
    condition     = var.pubsub_kms_key_name == null ? true : can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.pubsub_kms_key_name))
    error_message = "pubsub_kms_key_name is projects/P/locations/L/keyRings/R/cryptoKeys/K, or null."
  }
}

variable "functions_archive" {
  description = "Path of a prebuilt source zip (cloudbuild.yaml makes one with infra/package_functions.py). null zips functions_source_dir here."
  type        = string
  default     = null
}
