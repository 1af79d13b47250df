#!/usr/bin/env bash
# `make bench` part: armirror pulls on 500,000 generated entries vs the naive grep pipeline.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python bench/pulls/run.py --runs "${RUNS:-5}"
