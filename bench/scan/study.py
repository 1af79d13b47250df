"""`armirror scan` over real repositories, beside the grep pipeline: what each reports.

    .venv/bin/python bench/scan/study.py DIR...

For each directory (a checkout of a public repository), the files read, the third-party,
unresolved and built references found, the files that could not be read (each listed),
the scan's time, and how many lines the grep pipeline prints there.  There is no hand
labelled truth for thousands of references: recall and precision are measured on the
fixtures (accuracy.py); this shows what a scan of real trees reports and refuses.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import accuracy


def study(directory: Path) -> tuple[str, list[str]]:
    from armirror.scan import scan_paths

    start = time.perf_counter()
    result = scan_paths([directory], include_first_party=True)
    seconds = time.perf_counter() - start
    third = sum(1 for f in result.findings if f.third_party is True)
    unresolved = sum(
        1 for f in result.findings if f.reference is None and not getattr(f, "built", False)
    )
    built = sum(1 for f in result.findings if getattr(f, "built", False))
    first = sum(
        1 for f in result.findings if f.third_party is False and not getattr(f, "built", False)
    )
    grep = subprocess.run(
        ["bash", "-c", accuracy.GREP_PIPELINE], cwd=directory, capture_output=True, text=True
    ).stdout.count("\n")
    line = (
        f"{directory.name}: {result.files_scanned} files read in {seconds:.2f} s; "
        f"{third} third-party, {first} first-party, {unresolved} unresolved, {built} built; "
        f"{len(result.errors)} errors; grep pipeline: {grep} lines"
    )
    return line, [f"  error: {e.file}: {e.message}" for e in result.errors]


def main() -> None:
    for given in sys.argv[1:]:
        line, errors = study(Path(given))
        print(line)
        print("\n".join(errors)) if errors else None


if __name__ == "__main__":
    main()
