"""The CLI package: every command loads and explains itself; imports run one way.

Commands are imported lazily (armirror.cli.COMMANDS), so a command whose module fails
to import would only show when someone runs it: ``--help`` on each catches that, as
Click's documentation advises for lazy groups.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from armirror.cli import COMMANDS, cli
from click.testing import CliRunner

PACKAGE = Path(__file__).parents[2] / "functions" / "armirror"


def test_group_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert f"  {name} " in result.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: cli {name} ")
    # the docstring's first line is the summary shown under Usage
    command = cli.get_command(None, name)  # type: ignore[arg-type]
    assert command is not None and command.help
    summary = " ".join(command.help.split("\n")[0].split())
    assert summary in " ".join(result.stdout.split())


def test_console_script_module_runs_help() -> None:
    """``python -m armirror.cli`` (used by tests and benchmarks) is the console script."""
    result = subprocess.run(
        [sys.executable, "-m", "armirror.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: ")
    assert "copy" in result.stdout


def test_help_does_not_import_heavy_libraries() -> None:
    """Lazy loading: help needs no registry client, store, cloud library or progress bars."""
    code = (
        "import sys\n"
        "from armirror.cli import cli\n"
        "try:\n"
        "    cli.main(['--help'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('httpx', 'duckdb', 'google.cloud.bigquery', 'rich', "
        "'armirror.registry') if m in sys.modules]\n"
        "print('heavy=' + ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "heavy="


def _armirror_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.startswith("armirror")}


def test_pipeline_does_not_import_runtime() -> None:
    """runtime builds pipelines from settings; pipeline must not reach back for it."""
    assert not any(
        n.startswith("armirror.runtime") for n in _armirror_imports(PACKAGE / "pipeline.py")
    )
    assert "armirror.pipeline" in _armirror_imports(PACKAGE / "runtime.py")
