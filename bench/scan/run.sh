#!/usr/bin/env bash
# Scan benchmark: armirror scan vs the grep pipeline (speed on 5,000 generated files,
# precision/recall on tests/fixtures/scan/corpus).  RUNS=5 by default.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python bench/scan/run.py --runs "${RUNS:-5}"
