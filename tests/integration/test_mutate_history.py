"""`make mutate` remembers verdicts between scratch copies (bench/mutate/history.py),
against the real mutmut: a tiny project is mutated, its verdicts recorded, the scratch
thrown away, and a second run seeded from the record."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MUTMUT = Path(sys.executable).with_name("mutmut")

pytestmark = pytest.mark.skipif(not MUTMUT.exists(), reason="mutmut (dev extras) is absent")


def _history():  # type: ignore[no-untyped-def]
    path = ROOT / "bench" / "mutate" / "history.py"
    spec = importlib.util.spec_from_file_location("mutate_history", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SOURCE = """\
def bounded(value: int, limit: int) -> int:
    if value > limit:
        return limit
    return value


def doubled(value: int) -> int:
    return value * 2


def tripled(value: int) -> int:
    return value * 3


def label(value: int) -> str:
    return "n=" + str(value)
"""

TESTS = """\
from tiny.sizes import bounded, doubled, tripled


def test_bounded():
    assert bounded(5, 3) == 3
    assert bounded(3, 3) == 3


def test_doubled():
    assert doubled(4) == 8


def test_tripled():
    assert tripled(4) == 12
"""

# The second run's tests no longer kill anything in doubled or tripled, and reach label.
WEAKER_TESTS = """\
from tiny.sizes import bounded, doubled, label, tripled


def test_bounded():
    assert bounded(5, 3) == 3


def test_doubled_and_tripled_run():
    doubled(4)
    tripled(4)


def test_label():
    assert label(4) == "n=4"
"""


def _project(root: Path, tests: str) -> Path:
    (root / "src" / "tiny").mkdir(parents=True)
    (root / "src" / "tiny" / "__init__.py").write_text("")
    (root / "src" / "tiny" / "sizes.py").write_text(SOURCE)
    (root / "tests").mkdir()
    (root / "tests" / "test_sizes.py").write_text(tests)
    (root / "pyproject.toml").write_text(
        '[tool.mutmut]\nsource_paths = ["src/tiny"]\n'
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
    )
    return root


def _mutmut_run(project: Path) -> dict[str, Any]:
    subprocess.run(
        [str(MUTMUT), "run", "--max-children", "1"],
        cwd=project,
        check=True,
        capture_output=True,
        timeout=300,
    )
    meta: dict[str, Any] = json.loads((project / "mutants/src/tiny/sizes.py.meta").read_text())
    return meta


def _named(meta: dict[str, Any], function: str) -> dict[str, int]:
    return {k: v for k, v in meta["exit_code_by_key"].items() if f".x_{function}__" in k}


def test_a_seeded_run_keeps_kills_of_unchanged_functions_and_reruns_the_rest(
    tmp_path: Path,
) -> None:
    history = _history()
    first = _mutmut_run(_project(tmp_path / "first", TESTS))
    assert set(_named(first, "doubled").values()) == {1}  # killed
    assert set(_named(first, "tripled").values()) == {1}
    assert set(_named(first, "bounded").values()) == {0}  # `>` -> `>=`: equivalent
    assert set(_named(first, "label").values()) == {33}  # no test reaches it
    files: dict[str, Any] = {}
    assert history.record(tmp_path / "first", files) == len(first["exit_code_by_key"])
    # a round trip through the file keeps everything
    history.save(tmp_path / "record.json", files)
    files = history.load(tmp_path / "record.json")

    second = _project(tmp_path / "second", WEAKER_TESTS)
    changed = SOURCE.replace("return value * 3", "return value + value + value")
    (second / "src" / "tiny" / "sizes.py").write_text(changed)
    (equivalent,) = _named(first, "bounded")
    seeded = history.seed(second, files, {equivalent})
    kills = len(_named(first, "doubled")) + len(_named(first, "tripled"))
    assert seeded == kills + 1
    after = _mutmut_run(second)

    # doubled is unchanged: its kills stand though today's tests would not kill them
    assert set(_named(after, "doubled").values()) == {1}
    # tripled changed: its mutants are new and judged by today's (weak) tests
    assert set(_named(after, "tripled").values()) == {0}
    # the named equivalent is carried over as survived without being run again
    assert after["exit_code_by_key"][equivalent] == 0
    assert equivalent not in after["durations_by_key"]
    # a mutant no test reached was judged again, and the new test kills it
    assert _named(after, "label") and set(_named(after, "label").values()) == {1}


def test_record_replaces_the_verdicts_of_a_changed_function_and_skips_a_torn_file(
    tmp_path: Path,
) -> None:
    history = _history()
    meta = tmp_path / "mutants" / "src" / "pkg"
    meta.mkdir(parents=True)
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    for name in ("a.py", "b.py"):
        (tmp_path / "src" / "pkg" / name).write_text("")
    (meta / "a.py.meta").write_text(
        json.dumps(
            {
                "exit_code_by_key": {"pkg.a.x_f__mutmut_1": 1, "pkg.a.x_f__mutmut_3": None},
                "hash_by_function_name": {"x_f": "new"},
            }
        )
    )
    (meta / "b.py.meta").write_text('{"exit_code_by_key": {"pkg.b.x_g__mu')  # being written
    files = {
        "src/pkg/a.py": {"x_f": {"hash": "old", "killed": [2], "survived": [3]}},
        "src/pkg/gone.py": {"x_h": {"hash": "h", "killed": [1]}},
    }
    assert history.record(tmp_path, files) == 1
    # the old hash's verdicts went with it; an unjudged mutant is not recorded
    assert files["src/pkg/a.py"] == {"x_f": {"hash": "new", "killed": [1]}}
    assert "src/pkg/b.py" not in files  # torn: next time
    assert "src/pkg/gone.py" in files  # only a file the scratch has is judged gone


def test_a_later_verdict_replaces_an_earlier_one_for_the_same_mutant(tmp_path: Path) -> None:
    history = _history()
    (tmp_path / "mutants" / "src").mkdir(parents=True)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("")
    (tmp_path / "mutants" / "src" / "m.py.meta").write_text(
        json.dumps(
            {
                "exit_code_by_key": {"m.x_f__mutmut_1": 1, "m.x_f__mutmut_2": -24},
                "hash_by_function_name": {"x_f": "h"},
            }
        )
    )
    files = {"src/m.py": {"x_f": {"hash": "h", "survived": [1, 4], "no tests": [2]}}}
    history.record(tmp_path, files)
    assert files["src/m.py"]["x_f"] == {
        "hash": "h",
        "killed": [1],
        "timeout": [2],
        "survived": [4],
    }


def test_equivalents_are_the_first_word_of_each_entry(tmp_path: Path) -> None:
    history = _history()
    (tmp_path / "g.txt").write_text(
        "# header naming armirror.x.y__mutmut_9 in passing\n"
        "armirror.a.x_f__mutmut_1 — the reason\n"
        "\n"
        "## a heading\n"
        "armirror.a.xǁCǁm__mutmut_12 — another reason\n"
    )
    assert history.equivalent_names("g", tmp_path) == {
        "armirror.a.x_f__mutmut_1",
        "armirror.a.xǁCǁm__mutmut_12",
    }
    assert history.equivalent_names("absent", tmp_path) == set()
