# google >= 6.50: the release tests/infra checks every argument against (its CDKTF
# bindings).  archive >= 2.5: the glob patterns in source.tf's excludes need it; 2.4 zips
# caches and egg-info too, and every apply would redeploy.
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
}
