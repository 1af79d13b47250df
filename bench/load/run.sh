#!/usr/bin/env bash
# `make bench` part: 20,000 Pub/Sub pull events at armirror serve's on_pull_event.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python bench/load/hot_paths.py
.venv/bin/python bench/load/run.py --runs "${LOAD_RUNS:-3}"
