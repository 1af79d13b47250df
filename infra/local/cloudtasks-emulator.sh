#!/usr/bin/env bash
# The Cloud Tasks stand-in: PyPI's gcloud-tasks-emulator in its own virtualenv under
# .tools/cloudtasks-venv (gitignored), serving the Cloud Tasks gRPC API on 127.0.0.1.
#
#   infra/local/cloudtasks-emulator.sh install     install once; later runs return at once
#   infra/local/cloudtasks-emulator.sh serve PORT [--queue projects/P/locations/L/queues/Q]...
#                                                  [--max-retries N] [--ready-file PATH]
#                                                  [--dedup-window SECONDS]
#                                                  install if needed, then serve on 127.0.0.1
#
# Why its own virtualenv: gcloud-tasks-emulator pins protobuf<5, the project's Google
# libraries need newer.  Why a launcher: the emulator's own `start` binds [::] whatever it
# is told; infra/local/standins/cloudtasks.py runs its server bound to 127.0.0.1 only.
#
# What the emulator does: keeps queues and tasks in memory (create the queue first, or
# pass --queue), POSTs each HTTP task to its URL with the X-CloudTasks-* headers every
# ~0.1 s until the target answers 2xx (or --max-retries).  It ignores OIDC tokens,
# retry_config and dispatch deadlines.  The launcher adds what Cloud Tasks does with task
# names: one that is queued or ran within --dedup-window seconds (3600) is refused with
# ALREADY_EXISTS.
#
# Python for the virtualenv: $ARMIRROR_TASKS_EMULATOR_PYTHON, else the interpreter behind
# the project's .venv, else python3.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TOOLS="${ARMIRROR_TOOLS_DIR:-$ROOT/.tools}"
VENV="$TOOLS/cloudtasks-venv"
REQUIREMENTS="$ROOT/infra/local/cloudtasks-emulator-requirements.txt"
LAUNCHER="$ROOT/infra/local/standins/cloudtasks.py"
STAMP="$VENV/.armirror-installed"

find_python() {
  local candidate
  for candidate in "${ARMIRROR_TASKS_EMULATOR_PYTHON:-}" "$ROOT/.venv/bin/python" python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

installed() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$1" ] && [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -W ignore -c 'import gcloud_tasks_emulator.server' 2>/dev/null
}

install() {
  local want python
  want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ] && return 0
  mkdir -p "$TOOLS"
  # One installer at a time (parallel test workers, demo and tests side by side).
  exec 9>"$TOOLS/.cloudtasks-venv.lock"
  flock -w 600 9 || { echo "cloudtasks-emulator: timed out waiting for another install" >&2; return 1; }
  if installed "$want"; then
    return 0
  fi
  if ! python="$(find_python)"; then
    echo "cloudtasks-emulator: no Python >= 3.9 with venv found (set ARMIRROR_TASKS_EMULATOR_PYTHON)" >&2
    return 1
  fi
  echo "cloudtasks-emulator: installing gcloud-tasks-emulator into $VENV with $python" >&2
  rm -rf "$VENV"
  "$python" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS" >&2
  "$VENV/bin/python" -W ignore -c 'import gcloud_tasks_emulator.server'
  echo "$want" >"$STAMP"
}

case "${1:-install}" in
  install)
    install
    ;;
  serve)
    shift
    [ $# -ge 1 ] || { echo "usage: $0 serve PORT [launcher options]" >&2; exit 2; }
    install
    port="$1"
    shift
    exec "$VENV/bin/python" "$LAUNCHER" --port "$port" "$@"
    ;;
  *)
    echo "usage: $0 install | serve PORT [--queue NAME]... [--max-retries N] [--ready-file PATH]" >&2
    exit 2
    ;;
esac
