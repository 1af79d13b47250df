"""Verdicts that outlive a scratch copy: mutation testing's memory between runs.

mutmut keeps its verdicts in the scratch copy's ``mutants/*.meta`` files, which are not
part of the project: a fresh checkout, ``make clean`` or a changed test selection (mutmut
then resets every verdict) throws hours of work away.  This module records them in
``bench/mutate/history/<group>.json``, which is committed, and seeds a new scratch copy
from it, the way PIT's history files and Stryker's incremental mode do:

- a mutant that was killed (or timed out) keeps that verdict while its function's source
  is unchanged (mutmut's own per-function hash, so an edited function is judged anew);
- a mutant that survived, or that no test reached, is run again, since new tests may
  kill it, unless it is named as equivalent in ``bench/mutate/equivalents/<group>.txt``
  and its function is unchanged: it is then carried over as survived (a kill rate that
  counts it errs low).

The record keeps, per source file and function, the function's hash and its mutants'
numbers by outcome, so that it stays small and its diffs say what changed.

    .venv/bin/python bench/mutate/history.py registry   # record a running group's verdicts
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HISTORY = ROOT / "bench" / "mutate" / "history"
EQUIVALENTS = ROOT / "bench" / "mutate" / "equivalents"
WORK = ROOT / "bench" / ".work" / "mutate"

# mutmut's exit codes by the outcome they mean (mutmut.stats.status_by_exit_code); one
# code per outcome is written back when seeding.
OUTCOME_BY_EXIT_CODE = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests"}
OUTCOME_BY_EXIT_CODE.update(dict.fromkeys((36, -24, 24, 152, 255), "timeout"))
EXIT_CODE_BY_OUTCOME = {"killed": 1, "timeout": 36, "survived": 0, "no tests": 33}
CARRIED_ALWAYS = {"killed", "timeout"}  # new tests cannot bring a killed mutant back

Functions = dict[str, dict[str, Any]]  # function -> {"hash": str, outcome: [numbers]}


def history_file(group: str) -> Path:
    return HISTORY / f"{group}.json"


def load(path: Path) -> dict[str, Functions]:
    """The record: source path (as mutmut names it, src/armirror/...) -> functions."""
    if not path.exists():
        return {}
    files = json.loads(path.read_text()).get("files", {})
    if not isinstance(files, dict):
        raise ValueError(f"{path}: 'files' is not a mapping")
    return files


def save(path: Path, files: dict[str, Functions]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = {
        source: {function: files[source][function] for function in sorted(files[source])}
        for source in sorted(files)
    }
    text = json.dumps({"files": ordered}, indent=1, ensure_ascii=False, sort_keys=False)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(text + "\n")
    temporary.replace(path)


def equivalent_names(group: str, folder: Path = EQUIVALENTS) -> set[str]:
    """Mutant names the group's equivalents file names (first word of each entry)."""
    listing = folder / f"{group}.txt"
    if not listing.exists():
        return set()
    names = set()
    for line in listing.read_text().splitlines():
        first = line.split(" ", 1)[0].strip()
        if "__mutmut_" in first and not line.startswith("#"):
            names.add(first)
    return names


def _module_of(source: str) -> str:
    """src/armirror/registry/auth.py -> armirror.registry.auth (mutmut's mutant prefix)."""
    return source.removeprefix("src/").removesuffix(".py").replace("/", ".")


def _read_meta(meta: Path) -> dict[str, Any] | None:
    try:
        return json.loads(meta.read_text())
    except (OSError, ValueError):  # mutmut may be rewriting it right now: next time
        return None


def record(scratch: Path, files: dict[str, Functions]) -> int:
    """Fold the scratch copy's decided verdicts into ``files``; return how many."""
    recorded = 0
    for meta_path in sorted((scratch / "mutants").glob("src/**/*.py.meta")):
        meta = _read_meta(meta_path)
        if meta is None:
            continue
        source = str(meta_path.relative_to(scratch / "mutants")).removesuffix(".meta")
        if not (scratch / source).exists():  # a module deleted or renamed since
            files.pop(source, None)
            continue
        hashes: dict[str, str] = meta.get("hash_by_function_name", {})
        known = files.setdefault(source, {})
        decided: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for key, code in meta.get("exit_code_by_key", {}).items():
            outcome = OUTCOME_BY_EXIT_CODE.get(code) if code is not None else None
            if outcome is None:
                continue
            name, _, number = key.rpartition("__mutmut_")
            decided[name.rpartition(".")[2]][outcome].append(int(number))
        for function, digest in hashes.items():
            entry = known.get(function)
            if entry is None or entry.get("hash") != digest:
                entry = known[function] = {"hash": digest}
            outcomes = decided.get(function, {})
            if not outcomes:
                continue
            judged = {n for numbers in outcomes.values() for n in numbers}
            for outcome in EXIT_CODE_BY_OUTCOME:  # a new verdict replaces an older one
                kept = [n for n in entry.get(outcome, []) if n not in judged]
                kept += outcomes.get(outcome, [])
                if kept:
                    entry[outcome] = sorted(set(kept))
                else:
                    entry.pop(outcome, None)
            recorded += len(judged)
        for function in set(known) - set(hashes):  # a function that is gone
            del known[function]
    return recorded


def seed(scratch: Path, files: dict[str, Functions], equivalents: set[str]) -> int:
    """Write the carried-over verdicts into a fresh scratch copy's ``mutants/*.meta``.

    mutmut, generating the mutants next, keeps a seeded verdict only where the function's
    hash is still the one seeded, so a changed function is judged anew.  Returns the
    number of verdicts seeded.
    """
    seeded = 0
    for source, functions in files.items():
        meta_path = scratch / "mutants" / f"{source}.meta"
        if meta_path.exists() or not (scratch / source).exists():  # mutmut's state wins
            continue
        module = _module_of(source)
        codes: dict[str, int] = {}
        for function, entry in functions.items():
            for outcome, code in EXIT_CODE_BY_OUTCOME.items():
                for number in entry.get(outcome, []):
                    key = f"{module}.{function}__mutmut_{number}"
                    if outcome in CARRIED_ALWAYS or key in equivalents:
                        codes[key] = code
        if not codes:
            continue
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "exit_code_by_key": codes,
            "hash_by_function_name": {f: e["hash"] for f, e in functions.items()},
            "type_check_error_by_key": {},
            "durations_by_key": {},
            "estimated_durations_by_key": {},
        }
        meta_path.write_text(json.dumps(meta, indent=1, ensure_ascii=False))
        seeded += len(codes)
    return seeded


def record_group(group: str, scratch: Path | None = None) -> int:
    """Record a group's scratch verdicts into its history file; return how many."""
    path = history_file(group)
    files = load(path)
    recorded = record(scratch or WORK / group, files)
    save(path, files)
    return recorded


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: history.py GROUP  (records bench/.work/mutate/GROUP)", file=sys.stderr)
        return 2
    group = argv[0]
    if not (WORK / group / "mutants").is_dir():
        print(f"history: no scratch copy at {WORK / group}", file=sys.stderr)
        return 2
    print(f"{record_group(group)} verdicts recorded in {history_file(group)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
