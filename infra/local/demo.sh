#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded defaults, with local stand-ins
# for Docker Hub and Artifact Registry.  No cloud account, no internet.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python infra/local/demo.py "$@"
