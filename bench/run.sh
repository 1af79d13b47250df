#!/usr/bin/env bash
# `make bench`: every benchmark, each beside its peer in the same run.  Figures go to
# stdout and bench/.work/; bench/RESULTS.md records them with these commands.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
echo "== copy: armirror vs skopeo loop vs bare copier"
$PY bench/copy/run.py --runs "${RUNS:-5}"
echo "== copy over a WAN-like link: armirror vs skopeo loop, and refresh (bench/copy/wan.py)"
$PY bench/copy/wan.py --runs "${RUNS:-3}"
for extra in bench/scan/run.sh bench/pulls/run.sh bench/load/run.sh; do
  if [ -x "$extra" ]; then
    echo "== $(dirname "$extra")"
    "$extra"
  fi
done
