"""`make mutate`: mutation testing of armirror's core with mutmut, one module group at a time.

For each group, a scratch copy of the project is laid out the way mutmut expects
(``src/armirror``), mutmut mutates only that group's files, learns which tests reach each
mutated function (its stats run over the group's test files), and runs each mutant
against just those tests.  Child processes (``armirror serve``, functions-framework)
import the mutated code too: ``PYTHONPATH`` points at it and mutmut passes the mutant's
name in ``MUTANT_UNDER_TEST``.  Mutants that only a child process reaches are counted
as "no tests", since mutmut's stats see the test process alone.

The kill rate is killed / (every mutant that ran or had no test), with timeouts counted
as killed (the mutant broke the code).  Survivors are listed per module in
``bench/.work/mutate/<group>/survivors.txt`` for review: each is killed by a new test or
named as equivalent in bench/RESULTS.md.

    .venv/bin/python bench/mutate/run.py                      # every group
    .venv/bin/python bench/mutate/run.py --groups reference guard
    .venv/bin/python bench/mutate/run.py --groups registry --minutes 120   # stop after 2 h
    .venv/bin/python bench/mutate/run.py --groups registry --resume        # go on from there

A run stopped by ``--minutes`` (or Ctrl-C) keeps its scratch copy; ``--resume`` goes on
where it stopped, keeping every verdict mutmut already has for unchanged functions.
Verdicts also outlive the scratch copy: every run records them, every five minutes and at
the end, in ``bench/mutate/history/<group>.json`` (committed), and a run that starts a
scratch copy afresh carries over from it the kills of unchanged functions and the
survivors named as equivalent (see history.py); ``--fresh`` judges every mutant again.
``--mutants FILE`` runs only the mutants FILE names (one per line, as survivors.txt lists
them): the survivors of an earlier run, judged again after new tests.
mutmut runs the mutants it expects to be quickest first, so a partial run's rate leans
towards the easy mutants: the table marks it "partial".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import history  # noqa: E402  (bench/mutate/history.py, beside this script)

WORK = ROOT / "bench" / ".work" / "mutate"
MUTMUT = Path(sys.executable).with_name("mutmut")
RECORD_EVERY = 300.0  # seconds between recordings of a running group's verdicts


@dataclass(frozen=True)
class Group:
    """Files to mutate (globs under functions/armirror) and the tests that judge them."""

    files: tuple[str, ...]
    tests: tuple[str, ...]
    target: float  # the kill rate issue 18 asks for
    exclude: tuple[str, ...] = ()  # files another group already judges


GROUPS: dict[str, Group] = {
    "reference": Group(
        ("reference.py",),
        ("tests/unit/test_reference.py", "tests/unit/test_upstream_for.py",
         "tests/unit/test_guard.py"),
        0.90,
    ),
    "guard": Group(
        ("guard.py", "registry/hostguard.py"),
        ("tests/unit/test_guard.py", "tests/unit/test_registry_*.py",
         "tests/integration/test_hostguard.py", "tests/e2e/test_hostile.py"),
        0.90,
    ),
    "pipeline": Group(
        ("pipeline.py", "refresh.py"),
        ("tests/unit/test_ingest_path.py", "tests/unit/test_request_bodies.py",
         "tests/unit/test_cloudlog.py", "tests/integration/test_pipeline_decisions.py",
         "tests/integration/test_refresh.py", "tests/integration/test_mirror_check_refused.py",
         "tests/integration/test_upstreams.py", "tests/integration/test_resume.py",
         "tests/integration/test_pipeline_handlers.py", "tests/unit/test_pipeline_policy.py",
         "tests/integration/test_pipeline_pull_events.py",
         "tests/integration/test_refresh_moved.py", "tests/e2e/test_pipeline.py"),
        0.90,
    ),
    "registry": Group(
        ("registry/*.py",),
        ("tests/unit/test_registry_*.py", "tests/unit/test_credential_sources.py",
         "tests/unit/test_credential_lookup.py",
         "tests/integration/test_copy.py", "tests/integration/test_copy_faults.py",
         "tests/integration/test_copy_edges.py",
         "tests/integration/test_registry_*.py", "tests/integration/test_verify.py",
         "tests/integration/test_resume.py", "tests/integration/test_credentials.py",
         "tests/integration/test_upstreams.py", "tests/integration/test_proxy.py",
         "tests/integration/test_hostguard.py", "tests/integration/test_refresh.py",
         "tests/integration/test_pipeline_decisions.py",
         "tests/integration/test_mirror_check_refused.py"),
        0.80,
        ("registry/hostguard.py",),  # the guard group's
    ),
    "rewrite": Group(
        ("rewrite.py",),
        ("tests/unit/test_rewrite*.py", "tests/integration/test_rewrite_*.py"),
        0.80,
    ),
    "events": Group(
        ("events/*.py",),
        ("tests/unit/test_event*.py", "tests/unit/test_ingest_ranges.py",
         "tests/integration/test_pulls_*.py"),
        0.80,
    ),
    "store": Group(
        ("store/*.py",),
        ("tests/unit/test_store_schema.py", "tests/unit/test_store_values.py",
         "tests/integration/test_store_records.py", "tests/unit/test_ingest_path.py",
         "tests/unit/test_ingest_ranges.py", "tests/unit/test_event_values.py",
         "tests/unit/test_local_queue.py",
         "tests/integration/test_bigquery_*.py", "tests/integration/test_duckdb_open.py",
         "tests/integration/test_pulls_*.py", "tests/integration/test_report_cli.py",
         "tests/integration/test_redeploy_*.py", "tests/integration/test_pipeline_decisions.py",
         "tests/integration/test_refresh.py", "tests/integration/test_resume.py",
         "tests/integration/test_copy.py"),
        0.80,
    ),
}  # fmt: skip

# A pytest plugin (loaded with -p from mutants/src, which mutmut puts on sys.path): child
# processes the tests start (armirror serve, functions-framework) import the mutated
# package too.  Set from inside the test run: a PYTHONPATH given to mutmut itself stops
# its stats run from seeing any test reach a mutant.
#
# It also empties every lru_cache, and the secrets redact has been told of, as a
# mutant's tests start (see pytest_sessionstart), and caps Hypothesis at
# MAX_EXAMPLES examples a test (the suite asks for up to 500): a mutant that only the
# 200th example finds survives, so the kill rate errs low, and a group's run takes
# minutes instead of hours.
MAX_EXAMPLES = 25
_CHILDREN_PLUGIN = f"""\
import os
import sys
from pathlib import Path

import hypothesis

_settings_init = hypothesis.settings.__init__


def _capped(self, parent=None, **options):
    if options.get("max_examples", 0) > {MAX_EXAMPLES}:
        options["max_examples"] = {MAX_EXAMPLES}
    _settings_init(self, parent, **options)


def pytest_configure(config):
    src = str(Path.cwd() / "src")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    hypothesis.settings.__init__ = _capped
    hypothesis.settings.register_profile("mutate", max_examples={MAX_EXAMPLES})
    hypothesis.settings.load_profile("mutate")


def pytest_sessionstart(session):
    # mutmut forks each mutant's run from a process that already ran the tests: an
    # lru_cache filled there would hand the mutant the unmutated function's answers.
    import functools
    import gc

    for obj in gc.get_objects():
        if isinstance(obj, functools._lru_cache_wrapper):
            obj.cache_clear()
    # Likewise the secrets redact learnt there: a mutant that no longer remembers one
    # would otherwise find it remembered already, and its tests see nothing shown.
    redact = sys.modules.get("armirror.registry.redact")
    if redact is not None:
        with redact._known_lock:
            redact._known.clear()
"""

COPIED = ("tests", "infra", "functions", "bench", "terraform")
_FUNCTION = re.compile(r"\.(?:x_|xǁ)")


def _existing(patterns: tuple[str, ...], base: Path) -> list[str]:
    found: list[str] = []
    for pattern in patterns:
        found += sorted(str(p.relative_to(base)) for p in base.glob(pattern) if p.is_file())
    return found


def _scratch(
    name: str, group: Group, *, resume: bool, fresh: bool = False
) -> tuple[Path, list[str], list[str]]:
    """A copy of the project with the package at src/armirror and a [tool.mutmut] table.

    With ``resume`` an earlier scratch copy keeps its ``mutants/`` (mutmut's verdicts)
    and only has its copies of the project refreshed, unless the group's test files
    changed since (mutmut would reset every verdict): then, as without ``resume``, the
    copy starts afresh from the group's history.  ``fresh`` forgets the history too.
    """
    scratch = WORK / name
    tests = _existing(group.tests, ROOT)
    if (scratch / "mutants").is_dir():  # an earlier run's verdicts, before they go
        print(f"   {history.record_group(name, scratch)} verdicts recorded from {scratch}")
    if resume and (fresh or _tests_changed(scratch / "pyproject.toml", tests)):
        resume = False
    if not resume:
        shutil.rmtree(scratch, ignore_errors=True)
    else:
        for folder in (*COPIED, "src"):  # a file deleted since must not linger
            shutil.rmtree(scratch / folder, ignore_errors=True)
    scratch.mkdir(parents=True, exist_ok=True)
    # tests run bench's generators and read terraform/ (the store's schema is held to it)
    for folder in COPIED:
        shutil.copytree(
            ROOT / folder,
            scratch / folder,
            ignore=shutil.ignore_patterns("__pycache__", ".work", ".terraform"),
            dirs_exist_ok=True,
        )
    shutil.copytree(
        ROOT / "functions" / "armirror",
        scratch / "src" / "armirror",
        ignore=shutil.ignore_patterns("__pycache__"),
        dirs_exist_ok=True,
    )
    package = ROOT / "functions" / "armirror"
    missing = [f for f in group.files if not any(package.glob(f))]
    if missing:  # a module renamed under the group would otherwise drop out silently
        raise SystemExit(f"mutate: group {name!r} names files that do not exist: {missing}")
    excluded = set(group.exclude)
    files = [f"src/armirror/{f}" for f in _existing(group.files, package) if f not in excluded]
    if not files or not tests:
        raise SystemExit(f"mutate: group {name!r} has no files or no tests")
    config = [
        "[tool.mutmut]",
        'source_paths = ["src/armirror", "src/_mutate_children.py"]',
        f"only_mutate = {json.dumps(files)}",
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-p", "_mutate_children"]',
        f"also_copy = {json.dumps(list(COPIED[1:]))}",
        "",
        "[tool.pytest.ini_options]",
        'testpaths = ["tests"]',
        "timeout = 300",
        'markers = ["slow: large-blob tests (hundreds of MB)"]',
        "",
    ]
    (scratch / "pyproject.toml").write_text("\n".join(config))
    (scratch / "src" / "_mutate_children.py").write_text(_CHILDREN_PLUGIN)
    if fresh:
        history.save(history.history_file(name), {})
    elif not resume:
        carried = history.seed(
            scratch, history.load(history.history_file(name)), history.equivalent_names(name)
        )
        print(f"   {carried} verdicts carried over from {history.history_file(name)}")
    return scratch, files, tests


def _tests_changed(previous_config: Path, tests: list[str]) -> bool:
    """mutmut starts a run over (every verdict reset) when its test selection changes,
    and the selection is the group's test files as they are now.  Say so: the run then
    starts afresh from the history, which keeps the kills."""
    if not previous_config.exists():
        return False
    before = tomllib.loads(previous_config.read_text()).get("tool", {}).get("mutmut", {})
    earlier = set(before.get("pytest_add_cli_args_test_selection", []))
    added, removed = sorted(set(tests) - earlier), sorted(earlier - set(tests))
    if added or removed:
        print(
            f"mutate: the group's test files changed since this run began ({len(added)} added, "
            f"{len(removed)} removed: {', '.join(added + removed)}); mutmut would reset every "
            "verdict, so the run starts afresh from the history (kills kept, survivors rerun).",
            file=sys.stderr,
        )
    return bool(added or removed)


def _results(scratch: Path) -> dict[str, Counter[str]]:
    """Outcome counts per module, from `mutmut results --all true`."""
    done = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"],
        cwd=scratch,
        capture_output=True,
        text=True,
        check=True,
    )
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[str] = []
    for line in done.stdout.splitlines():
        name, sep, outcome = line.strip().rpartition(": ")
        if not sep or "__mutmut_" not in name:
            continue
        module = _FUNCTION.split(name, maxsplit=1)[0]
        per_module[module][outcome] += 1
        if outcome in {"survived", "no tests"}:
            survivors.append(line.strip())
    (scratch / "survivors.txt").write_text("\n".join(survivors) + "\n")
    return per_module


def _mutant_names(listing: Path) -> list[str]:
    """Mutant names from a survivors.txt-style file (``name: status`` or bare names)."""
    names = [line.split(": ")[0].strip() for line in listing.read_text().splitlines()]
    return [name for name in names if "__mutmut_" in name]


def kill_rate(counts: Counter[str]) -> tuple[int, int, float]:
    killed = counts["killed"] + counts["timeout"]
    judged = killed + counts["survived"] + counts["no tests"] + counts["suspicious"]
    return killed, judged, (killed / judged if judged else 1.0)


def _stop(mutmut: subprocess.Popen[bytes]) -> int:
    """Stop a mutmut run and its workers; every verdict so far is already saved."""
    os.killpg(mutmut.pid, signal.SIGINT)  # mutmut stops its workers on SIGINT
    try:
        return mutmut.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(mutmut.pid, signal.SIGKILL)
        return mutmut.wait()


def _wait_recording(
    name: str, scratch: Path, mutmut: subprocess.Popen[bytes], seconds: float | None
) -> int:
    """Wait for mutmut (up to ``seconds``), recording its verdicts every five minutes so
    that a session that ends mid-run keeps them."""
    deadline = time.monotonic() + seconds if seconds else None
    while True:
        step = RECORD_EVERY if deadline is None else min(RECORD_EVERY, deadline - time.monotonic())
        try:
            return mutmut.wait(timeout=max(step, 0.1))
        except subprocess.TimeoutExpired:
            history.record_group(name, scratch)
            if deadline is not None and time.monotonic() >= deadline:
                raise


def run_group(
    name: str,
    jobs: int,
    *,
    resume: bool,
    minutes: float | None,
    mutants: list[str],
    fresh: bool = False,
) -> dict[str, Counter[str]]:
    group = GROUPS[name]
    scratch, files, tests = _scratch(name, group, resume=resume, fresh=fresh)
    print(f"== {name}: {len(files)} file(s), {len(tests)} test file(s)", flush=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # The emulators' virtualenvs are the project's, not installed again in the scratch copy.
    env.setdefault("ARMIRROR_TOOLS_DIR", str((ROOT / ".tools").resolve()))
    started = time.monotonic()
    with (scratch / "mutmut.log").open("ab" if resume else "wb") as log:
        mutmut = subprocess.Popen(
            [str(MUTMUT), "run", "--max-children", str(jobs), *mutants],
            cwd=scratch,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers are stopped with it
            # A job started in the background inherits SIGINT ignored; mutmut must see it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            returncode = _wait_recording(name, scratch, mutmut, minutes * 60 if minutes else None)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            returncode = _stop(mutmut)
            print(f"   stopped after {time.monotonic() - started:.0f} s", flush=True)
    if returncode not in (0, -signal.SIGINT, -signal.SIGKILL):
        tail = (scratch / "mutmut.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"mutate: mutmut failed for {name} ({returncode}):\n{tail}")
    print(
        f"   {history.record_group(name, scratch)} verdicts recorded in "
        f"{history.history_file(name)}",
        flush=True,
    )
    per_module = _results(scratch)
    print(f"   {time.monotonic() - started:.0f} s", flush=True)
    return per_module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", nargs="+", choices=sorted(GROUPS), default=list(GROUPS))
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    parser.add_argument(
        "--minutes", type=float, help="stop each group after this long; --resume goes on"
    )
    parser.add_argument(
        "--resume", action="store_true", help="go on from a group's stopped run, keeping verdicts"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="judge every mutant again: forget the group's history (bench/mutate/history)",
    )
    parser.add_argument(
        "--mutants",
        type=Path,
        metavar="FILE",
        help="run only the mutants FILE names (lines of survivors.txt: NAME: status)",
    )
    args = parser.parse_args(argv)
    named = _mutant_names(args.mutants) if args.mutants else []
    if not MUTMUT.exists():
        raise SystemExit("mutate: mutmut is not installed; run `make setup` (dev extras)")
    rows = []
    summary: dict[str, dict[str, int | float]] = {}
    for name in args.groups:
        per_module = run_group(
            name,
            args.jobs,
            resume=args.resume,
            minutes=args.minutes,
            mutants=named,
            fresh=args.fresh,
        )
        group_counts: Counter[str] = Counter()
        for module, counts in sorted(per_module.items()):
            group_counts.update(counts)
            killed, judged, rate = kill_rate(counts)
            rows.append(f"| {name} | {module} | {killed}/{judged} | {rate:.0%} |")
        killed, judged, rate = kill_rate(group_counts)
        target = GROUPS[name].target
        verdict = "met" if rate >= target else "missed"
        note = f"{verdict}, target {target:.0%}"
        if group_counts["not checked"]:  # stopped by --minutes or Ctrl-C, or --mutants
            note = f"partial: {group_counts['not checked']} not run yet, target {target:.0%}"
        rows.append(f"| **{name}** | all | {killed}/{judged} | **{rate:.0%}** ({note}) |")
        summary[name] = {"killed": killed, "judged": judged, "rate": round(rate, 4), **group_counts}
    print("\n| group | module | killed | rate |\n|---|---|---:|---:|")
    print("\n".join(rows))
    # Groups run separately add to one summary instead of replacing the others' figures.
    summary_file = WORK / "summary.json"
    previous = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    summary_file.write_text(json.dumps({**previous, **summary}, indent=2) + "\n")
    print(f"\nsurvivors: {WORK}/<group>/survivors.txt; summary: {WORK}/summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
