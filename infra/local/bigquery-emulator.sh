#!/usr/bin/env bash
# The BigQuery stand-in: PyPI's local-bigquery (a BigQuery REST API over DuckDB) in its own
# virtualenv under .tools/bigquery-emulator (gitignored).
#
#   infra/local/bigquery-emulator.sh install         install once; later runs return at once
#   infra/local/bigquery-emulator.sh serve PORT GRPC_PORT DATA_DIR
#                                                     install if needed, then serve on 127.0.0.1
#
# Why its own virtualenv: local-bigquery needs Python >= 3.13 and duckdb 1.5.x, the project
# runs on 3.12 with duckdb 2.  Offline it cannot download DuckDB extensions at run time, so
# the icu, ducklake and spatial extensions come from their PyPI wheels and are copied where
# DuckDB looks for them: $HOME/.duckdb/extensions/v1.5.5/linux_amd64.  The emulator runs
# with HOME set to .tools/bigquery-emulator/home, so nothing is written to the user's home.
#
# Python >= 3.13 is taken from $ARMIRROR_PYTHON313, PATH (python3.13) or pyenv.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TOOLS="${ARMIRROR_TOOLS_DIR:-$ROOT/.tools}/bigquery-emulator"
VENV="$TOOLS/venv"
EMU_HOME="$TOOLS/home"
REQUIREMENTS="$ROOT/infra/local/bigquery-emulator-requirements.txt"
DUCKDB_VERSION=1.5.5
STAMP="$TOOLS/.installed"

find_python() {
  local candidate
  for candidate in "${ARMIRROR_PYTHON313:-}" python3.13 \
      "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13 \
      /usr/local/bin/python3.13 /usr/bin/python3.13; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(not (3, 13) <= sys.version_info[:2] < (3, 14))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

platform_dir() {
  case "$(uname -m)" in
    x86_64) echo linux_amd64 ;;
    aarch64 | arm64) echo linux_arm64 ;;
    *) echo "unsupported machine $(uname -m)" >&2; return 1 ;;
  esac
}

install() {
  local want
  want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/local-bigquery" ]; then
    return 0
  fi
  local python
  if ! python="$(find_python)"; then
    echo "bigquery-emulator: local-bigquery needs Python 3.13; none found (set ARMIRROR_PYTHON313," \
      "or install it, e.g. with pyenv)" >&2
    return 1
  fi
  echo "bigquery-emulator: installing local-bigquery into $VENV with $python" >&2
  mkdir -p "$TOOLS"
  [ -x "$VENV/bin/python" ] || "$python" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS" >&2
  local site ext_dir name
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  ext_dir="$EMU_HOME/.duckdb/extensions/v$DUCKDB_VERSION/$(platform_dir)"
  mkdir -p "$ext_dir"
  for name in icu ducklake spatial; do
    cp -f "$site/duckdb_extension_$name/extensions/v$DUCKDB_VERSION/$name.duckdb_extension" "$ext_dir/"
  done
  echo "$want" >"$STAMP"
}

case "${1:-install}" in
  install)
    install
    ;;
  serve)
    [ $# -eq 4 ] || { echo "usage: $0 serve PORT GRPC_PORT DATA_DIR" >&2; exit 2; }
    install
    mkdir -p "$4"
    HOME="$EMU_HOME" exec "$VENV/bin/local-bigquery" serve --host 127.0.0.1 \
      --port "$2" --grpc-port "$3" --data-dir "$4"
    ;;
  *)
    echo "usage: $0 install | serve PORT GRPC_PORT DATA_DIR" >&2
    exit 2
    ;;
esac
