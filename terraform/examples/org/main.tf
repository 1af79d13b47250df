# A minimal root module: armirror for one organisation.  cloudbuild.yaml applies this
# directory with a GCS state backend; set the variables in a terraform.tfvars or with -var.

terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.50, < 8.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.5, < 3.0"
    }
  }

  # Configured at init time: terraform init -backend-config="bucket=STATE_BUCKET".
  backend "gcs" {
    prefix = "armirror"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

variable "org_id" {
  description = "Numeric organisation ID."
  type        = string
}

variable "project_id" {
  description = "Project that hosts armirror."
  type        = string
}

variable "region" {
  description = "Region of the functions and queue."
  type        = string
  default     = "europe-west1"
}

variable "consumers" {
  description = "GKE node service accounts and Cloud Run service agents that pull mirrored images."
  type        = list(string)
  default     = []
}

variable "functions_archive" {
  description = "Prebuilt source zip from cloudbuild.yaml's package step; null zips functions/ at plan time."
  type        = string
  default     = null
}

variable "request_copy_invokers" {
  description = "People or groups allowed to call request_copy."
  type        = list(string)
  default     = []
}

module "armirror" {
  source = "../../modules/armirror"

  org_id     = var.org_id
  project_id = var.project_id
  region     = var.region

  repository_location = "europe"
  consumers           = var.consumers

  request_copy_invokers = var.request_copy_invokers
  functions_archive     = var.functions_archive

  deny = ["docker.io/library/*:latest"]

  labels = { team = "platform" }
}

output "repository_url" {
  description = "Pass to armirror rewrite/copy as --to."
  value       = module.armirror.repository_url
}

output "request_copy_url" {
  description = "URL of request_copy."
  value       = module.armirror.request_copy_url
}

output "topic" {
  description = "Pub/Sub topic of pull events."
  value       = module.armirror.topic
}

output "dataset" {
  description = "BigQuery dataset of the pull store."
  value       = module.armirror.dataset
}

output "queue" {
  description = "Cloud Tasks queue of copies."
  value       = module.armirror.queue
}
