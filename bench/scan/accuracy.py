"""Precision and recall of `armirror scan` and of the grep pipeline on the test corpora.

The grep pipeline is the one people run today (issue 3), verbatim:

    grep -inr --include Dockerfile\\* FROM . | grep -v 'docker.pkg.dev|gcr.io'
    grep -inr --include \\*.yaml --include \\*.yml image: . | grep -v 'docker.pkg.dev|gcr.io'

(In a basic regular expression ``|`` is a literal character, so the second grep filters
nothing; that is part of what the pipeline gets wrong.)  A hit is a ``(file, line)``.
The ground truth is the ``(file, line)`` of every third-party reference in
tests/fixtures/scan/expected.json (the awkward-files corpus) and patterns-expected.json
(shapes found in real repositories, issue 16), each written by hand; a grep hit on a
line where a reference is used through a variable (``FROM ${BASE}``) counts as found,
which favours grep.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "scan"
CORPUS, EXPECTED = FIXTURES / "corpus", FIXTURES / "expected.json"
PATTERNS, PATTERNS_EXPECTED = FIXTURES / "patterns", FIXTURES / "patterns-expected.json"
CORPORA = {"corpus": (CORPUS, EXPECTED), "patterns": (PATTERNS, PATTERNS_EXPECTED)}

GREP_PIPELINE = (
    "grep -inr --include Dockerfile\\* FROM . | grep -v 'docker.pkg.dev|gcr.io'; "
    "grep -inr --include \\*.yaml --include \\*.yml image: . | grep -v 'docker.pkg.dev|gcr.io'"
)

Hit = tuple[str, int]


def grep_output(root: Path) -> str:
    result = subprocess.run(
        ["bash", "-c", GREP_PIPELINE], cwd=root, capture_output=True, text=True, timeout=300
    )
    return result.stdout


def grep_hits(root: Path = CORPUS) -> dict[Hit, str]:
    hits: dict[Hit, str] = {}
    for line in grep_output(root).splitlines():
        path, number, content = line.split(":", 2)
        hits[(path.removeprefix("./"), int(number))] = content.strip()
    return hits


def truth(expected: Path = EXPECTED) -> set[Hit]:
    rows = json.loads(expected.read_text())
    return {(r["file"], r["line"]) for r in rows if r["third_party"] is True}


def armirror_hits(root: Path = CORPUS) -> set[Hit]:
    from armirror.scan import scan_paths

    return {(f.file, f.line) for f in scan_paths([root]).findings if f.third_party is True}


def files_in(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())


def score(found: set[Hit], expected: set[Hit]) -> tuple[float, float]:
    true_positives = len(found & expected)
    precision = true_positives / len(found) if found else 1.0
    recall = true_positives / len(expected) if expected else 1.0
    return precision, recall


def grep_mistakes() -> tuple[dict[Hit, str], list[Hit]]:
    """What grep reports that is not a third-party reference, and what it misses."""
    hits, expected = grep_hits(), truth()
    false = {hit: text for hit, text in sorted(hits.items()) if hit not in expected}
    missed = sorted(expected - set(hits))
    return false, missed


def summary() -> list[str]:
    """One line per corpus and tool: references, files, found, false positives, misses."""
    lines = []
    for name, (root, expected_file) in CORPORA.items():
        expected = truth(expected_file)
        for tool, found in (("armirror scan", armirror_hits(root)), ("grep", set(grep_hits(root)))):
            precision, recall = score(found, expected)
            lines.append(
                f"{name} ({len(expected)} third-party references, {files_in(root)} files) "
                f"{tool}: {len(found & expected)} found, {len(found - expected)} false positives, "
                f"{len(expected - found)} missed; precision {precision:.2f}, recall {recall:.2f}"
            )
    return lines


def main() -> None:
    print("\n".join(summary()))
    false, missed = grep_mistakes()
    print(f"grep false positives ({len(false)}):")
    for (file, line), text in false.items():
        print(f"  {file}:{line}: {text}")
    print(f"grep misses ({len(missed)}):")
    for file, line in missed:
        print(f"  {file}:{line}")


if __name__ == "__main__":
    main()
