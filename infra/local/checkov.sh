#!/usr/bin/env bash
# Scan terraform/ with checkov, offline (--skip-download: no policy bundle, no platform).
#
# checkov lives in its own virtualenv, .tools/checkov-venv, because its pins clash with the
# Google client libraries in .venv.  The first run creates it (needs PyPI); later runs only
# check that the pinned version is there.  Extra arguments are passed on to checkov.
# Exit status is non-zero when any check fails (checkov's own --hard-fail default).
set -euo pipefail
cd "$(dirname "$0")/../.."

CHECKOV_VERSION="3.3.30"
VENV=".tools/checkov-venv"
# The first interpreter that actually runs (a pyenv shim may exist for an inactive version).
PYTHON="${CHECKOV_PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.12 python3.11 python3; do
    if "$candidate" -c 'import sys, venv' >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
  done
fi
STAMP="$VENV/.checkov-$CHECKOV_VERSION"

if [ ! -f "$STAMP" ]; then
  echo "installing checkov $CHECKOV_VERSION into $VENV" >&2
  rm -rf "$VENV"
  # Install output goes to stderr: stdout is checkov's report (tests read it as JSON).
  "$PYTHON" -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2
  touch "$STAMP"
fi

# BC_SKIP_MAPPING and the offline flags keep checkov from calling home.
export BC_SKIP_MAPPING=TRUE CKV_NO_UPDATE_CHECK=1 CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
exec "$VENV/bin/checkov" -d terraform --framework terraform --skip-download --quiet --compact \
  --download-external-modules false "$@"
