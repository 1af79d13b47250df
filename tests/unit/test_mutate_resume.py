"""`make mutate --resume` notices when mutmut would start a run over: its test selection
(the group's test files as they are now) differs from the one the run began with.  It
says so, and the run starts afresh from the group's history instead."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "bench" / "mutate" / "run.py"


def _run_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("mutate_run", RUN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _config(path: Path, tests: list[str]) -> Path:
    listed = ", ".join(f'"{t}"' for t in tests)
    path.write_text(f"[tool.mutmut]\npytest_add_cli_args_test_selection = [{listed}]\n")
    return path


def test_a_test_file_added_since_the_run_began_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run_module()
    previous = _config(tmp_path / "pyproject.toml", ["tests/a.py", "tests/b.py"])
    assert run._tests_changed(previous, ["tests/a.py", "tests/b.py", "tests/c.py"])
    said = capsys.readouterr().err
    assert "1 added, 0 removed: tests/c.py" in said and "afresh from the history" in said


def test_the_same_test_files_say_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run_module()
    previous = _config(tmp_path / "pyproject.toml", ["tests/a.py", "tests/b.py"])
    assert not run._tests_changed(previous, ["tests/b.py", "tests/a.py"])
    assert not run._tests_changed(tmp_path / "absent.toml", ["tests/a.py"])  # a first run
    assert capsys.readouterr().err == ""


def test_a_mutants_tests_start_with_no_secret_the_parent_process_learnt() -> None:
    """mutmut forks each mutant's tests from a process that already ran them: a secret
    the unmutated code remembered there would hide a mutant that forgets to remember it
    (proxies.parse_proxy mutant 45 survived so).  The children plugin forgets them."""
    from armirror.registry import redact

    run = _run_module()
    plugin: dict[str, object] = {}
    exec(compile(run._CHILDREN_PLUGIN, "_mutate_children.py", "exec"), plugin)
    secret = "proxy-user:s3cret-from-the-parent"
    learnt = dict(redact._known)  # this process's, for the tests that run after this one
    try:
        redact.remember(secret)
        assert secret not in redact.scrub(f"via {secret}")
        plugin["pytest_sessionstart"](None)  # type: ignore[operator]
        assert secret in redact.scrub(f"via {secret}")
    finally:
        with redact._known_lock:
            redact._known.update(learnt)
