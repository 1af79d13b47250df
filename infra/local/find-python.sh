#!/usr/bin/env bash
# Print an interpreter for the project's virtualenv: Python 3.12 or newer.
# pyenv's shims name versions that are installed but not selected, so try each
# candidate for real rather than trusting `command -v`.
set -u
candidates=(python3.12 python3.13 python3)
for root in "${PYENV_ROOT:-$HOME/.pyenv}" /usr/local /usr; do
  for found in "$root"/versions/3.1[2-9]*/bin/python3 "$root"/bin/python3.1[2-9]; do
    [ -x "$found" ] && candidates+=("$found")
  done
done
for candidate in "${candidates[@]}"; do
  if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
    command -v "$candidate" 2>/dev/null || echo "$candidate"
    exit 0
  fi
done
echo "armirror needs Python 3.12 or newer (pyenv install 3.12, or your distribution's python3.12)" >&2
exit 1
