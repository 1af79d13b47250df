"""Zip functions/ into the Cloud Functions source archive, reproducibly.

The same tree always gives the same bytes (sorted entries, fixed timestamps and modes), so
Terraform's object name, which carries the archive's MD5, changes only when the code does
and an unchanged build redeploys nothing.  Used by cloudbuild.yaml; Terraform takes the
result through the module's ``functions_archive`` input.

    python infra/package_functions.py [SOURCE_DIR] [OUTPUT_ZIP]
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def included(path: Path, source: Path) -> bool:
    """Whether ``path`` (a file under ``source``) belongs in the deploy unit."""
    parts = path.relative_to(source).parts
    if any(part in EXCLUDED_DIRS or part.endswith(".egg-info") for part in parts[:-1]):
        return False
    return path.suffix not in EXCLUDED_SUFFIXES


def package(source: Path, output: Path) -> list[str]:
    """Write the archive and return the names it holds."""
    files = sorted(p for p in source.rglob("*") if p.is_file() and included(p, source))
    names = []
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            name = path.relative_to(source).as_posix()
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
            names.append(name)
    return names


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else ROOT / "functions"
    output = Path(argv[2]) if len(argv) > 2 else ROOT / "build" / "functions.zip"
    names = package(source, output)
    for required in ("main.py", "requirements.txt"):
        if required not in names:
            print(f"{source}: no {required}; not a Cloud Functions source", file=sys.stderr)
            return 1
    print(f"{output}: {len(names)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
