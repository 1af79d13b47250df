"""rewrite_paths over real files: what the mirror is asked, what is written, what is refused.

A file is written whole or not at all, and one file that cannot be rewritten never
stops the others.  Failures are injected where the real ones would come from (a
rewrite that breaks the file, a rename that fails); expected texts are written out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest
from armirror import rewrite
from armirror.reference import Reference
from armirror.rewrite import atomic_write, rewrite_paths, unified_diff

PREFIX = "us-docker.pkg.dev/acme/mirror"
M = PREFIX + "/docker.io/library"
DIGEST = "sha256:" + "b" * 64
OLD_DIGEST = "sha256:" + "a" * 64
POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"


class Mirror:
    """Answers for the mirror, and a record of every question put to it."""

    def __init__(self, absent: tuple[str, ...] = (), digests: dict[str, str] | None = None):
        self.absent = absent
        self.digests = digests or {}
        self.checked: list[list[str]] = []
        self.resolved: list[list[str]] = []

    def check(self, refs: list[Reference]) -> Mapping[Reference, str]:
        self.checked.append([str(r) for r in refs])
        return {r: "not in the mirror" for r in refs if str(r) in self.absent}

    def resolve(self, refs: list[Reference]) -> Mapping[Reference, str | None]:
        self.resolved.append([str(r) for r in refs])
        return {r: self.digests.get(str(r)) for r in refs}


def test_the_report_names_every_change_skip_unresolved_reference_and_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM nginx:1\nFROM ${X}\nFROM postgres:16\n")
    (tmp_path / "bad.yaml").write_text(POD + "  - image: nginx:1\n    x: [\n")
    mirror = Mirror(absent=(f"{M}/postgres:16",))
    result = rewrite_paths([tmp_path], PREFIX, check_mirror=mirror.check)
    assert result.files_scanned == 2
    assert (tmp_path / "Dockerfile").read_text() == (
        f"FROM {M}/nginx:1\nFROM ${{X}}\nFROM postgres:16\n"
    )
    assert result.to_json() == {
        "files_changed": ["Dockerfile"],
        "references_rewritten": 1,
        "changes": [
            {
                "file": "Dockerfile",
                "line": 1,
                "kind": "dockerfile",
                "from": "docker.io/library/nginx:1",
                "to": f"{M}/nginx:1",
            }
        ],
        "unresolved": [
            {
                "file": "Dockerfile",
                "line": 2,
                "kind": "dockerfile",
                "image": "${X}",
                "reference": None,
                "registry": None,
                "third_party": None,
                "unresolved": True,
                "where": "FROM",
                "problem": "${X} has no default",
            }
        ],
        "skipped": [
            {
                "file": "Dockerfile",
                "line": 3,
                "kind": "dockerfile",
                "image": "postgres:16",
                "reference": "docker.io/library/postgres:16",
                "registry": "docker.io",
                "third_party": True,
                "unresolved": False,
                "where": "FROM",
                "reason": "not in the mirror",
            }
        ],
        "errors": [
            {
                "file": "bad.yaml",
                "error": "invalid YAML: line 8, column 1: did not find expected node content "
                "(while parsing a flow node)",
            }
        ],
    }


def test_the_mirror_is_asked_once_about_each_destination_that_would_be_written(
    tmp_path: Path,
) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM nginx:1\n"
        "FROM ${X}\n"  # unresolved: nothing to ask
        f"FROM {M}/redis:7\n"  # the mirror already
        f"FROM quay.io/{'a' * 240}:1\n"  # no valid destination
        "FROM gcr.io/p/app:2\n"  # first party: only with include_first_party
        f"FROM quay.io/a/b@{OLD_DIGEST}\n"  # pinned already: no digest to resolve
        "FROM nginx:1 AS again\n"
    )
    mirror = Mirror(digests={f"{M}/nginx:1": DIGEST})
    rewrite_paths([tmp_path], PREFIX, dry_run=True, check_mirror=mirror.check)
    rewrite_paths([tmp_path], PREFIX, dry_run=True, resolve_digests=mirror.resolve)
    assert mirror.checked == [[f"{M}/nginx:1", f"{PREFIX}/quay.io/a/b@{OLD_DIGEST}"]]
    assert mirror.resolved == [[f"{M}/nginx:1"]]

    mirror = Mirror(digests={f"{M}/nginx:1": DIGEST, f"{PREFIX}/gcr.io/p/app:2": DIGEST})
    result = rewrite_paths(
        [tmp_path],
        PREFIX,
        include_first_party=True,
        check_mirror=mirror.check,
        resolve_digests=mirror.resolve,
    )
    assert mirror.checked == [
        [f"{M}/nginx:1", f"{PREFIX}/gcr.io/p/app:2", f"{PREFIX}/quay.io/a/b@{OLD_DIGEST}"]
    ]
    assert mirror.resolved == [[f"{M}/nginx:1", f"{PREFIX}/gcr.io/p/app:2"]]
    assert (tmp_path / "Dockerfile").read_text() == (
        f"FROM {M}/nginx:1@{DIGEST}\n"
        "FROM ${X}\n"
        f"FROM {M}/redis:7\n"
        f"FROM quay.io/{'a' * 240}:1\n"
        f"FROM {PREFIX}/gcr.io/p/app:2@{DIGEST}\n"
        f"FROM {PREFIX}/quay.io/a/b@{OLD_DIGEST}\n"
        f"FROM {M}/nginx:1@{DIGEST} AS again\n"
    )
    assert [c.line for c in result.changes] == [1, 5, 6, 7]


def test_the_mirror_is_not_asked_when_nothing_would_move(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {M}/nginx:1\nFROM gcr.io/p/app:2\n")
    mirror = Mirror()
    result = rewrite_paths(
        [tmp_path], PREFIX, check_mirror=mirror.check, resolve_digests=mirror.resolve
    )
    assert (mirror.checked, mirror.resolved) == ([], [])
    assert result.changes == [] and result.errors == []


def test_a_dry_run_shows_one_diff_per_file_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM nginx:1\nRUN true\nFROM redis:7")
    (tmp_path / "pod.yaml").write_text(POD + "  - image: alpine:3\n")
    result = rewrite_paths([tmp_path], PREFIX, dry_run=True)
    assert (tmp_path / "Dockerfile").read_text() == "FROM nginx:1\nRUN true\nFROM redis:7"
    assert result.files_changed == ["Dockerfile", "pod.yaml"]
    assert result.diff == (
        "--- a/Dockerfile\n"
        "+++ b/Dockerfile\n"
        "@@ -1,3 +1,3 @@\n"
        "-FROM nginx:1\n"
        f"+FROM {M}/nginx:1\n"
        " RUN true\n"
        "-FROM redis:7\n"
        "\\ No newline at end of file\n"
        f"+FROM {M}/redis:7\n"
        "\\ No newline at end of file\n"
        "--- a/pod.yaml\n"
        "+++ b/pod.yaml\n"
        "@@ -3,4 +3,4 @@\n"
        " metadata: {name: p}\n"
        " spec:\n"
        "   containers:\n"
        "-  - image: alpine:3\n"
        f"+  - image: {M}/alpine:3\n"
    )


def test_unified_diff_of_texts_with_and_without_a_final_newline() -> None:
    assert unified_diff("a\nb\n", "a\nc\n", "f") == (
        "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
    )
    assert unified_diff("a\nb", "a\nb\n", "d/f") == (
        "--- a/d/f\n+++ b/d/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"
    )
    assert unified_diff("same\n", "same\n", "f") == ""


def _break_the_rewrite(monkeypatch: pytest.MonkeyPatch, damage: dict[str, str]) -> None:
    """rewrite_text's new text with each key of ``damage`` it holds replaced by its value."""
    real = rewrite.rewrite_text

    def damaged(text: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        new, changes, skipped, unresolved = real(text, *args, **kwargs)
        for marker, replacement in damage.items():
            new = new.replace(marker, replacement)
        return new, changes, skipped, unresolved

    monkeypatch.setattr(rewrite, "rewrite_text", damaged)


def test_a_rewrite_that_would_break_a_file_is_refused_and_the_other_files_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod = POD + "  - image: nginx:1\n"
    dockerfile = "FROM nginx:1\nFROM redis:7\n"
    dotenv = "A=redis:7\nB=x\n"
    files = {"a.yaml": pod, "b/Dockerfile": dockerfile, "c/.env": dotenv, "z.yaml": pod}
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "compose.yaml").write_text("services:\n  a:\n    image: ${A}\n")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    _break_the_rewrite(
        monkeypatch,
        {
            "spec:\n": "spec: [\n",  # no longer parses: in both YAML files
            f"FROM {M}/redis": "RUN echo redis",  # one reference lost
            "B=x\n": "",  # a variable lost
        },
    )
    result = rewrite_paths([tmp_path], PREFIX)
    for name, text in files.items():
        assert (tmp_path / name).read_text() == text
    unparsable = (
        "not rewritten: the rewritten text would not parse (invalid YAML: line 6, "
        "column 3: did not find expected node content (while parsing a flow node))"
    )
    # a folder's files come before its subfolders
    assert [(e.file, e.message) for e in result.errors] == [
        ("a.yaml", unparsable),
        ("z.yaml", unparsable),
        (
            "b/Dockerfile",
            "not rewritten: the rewritten text holds 1 references where there were 2",
        ),
        ("c/.env", "not rewritten: the rewritten .env would not define the same variables"),
    ]
    assert result.changes == [] and result.files_changed == []

    monkeypatch.undo()
    result = rewrite_paths([tmp_path], PREFIX)
    assert result.errors == []
    assert result.files_changed == ["a.yaml", "z.yaml", "b/Dockerfile", "c/.env"]


def test_a_file_changed_during_the_run_is_left_alone_and_the_next_one_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.Dockerfile").write_text("FROM nginx:1\n")
    (tmp_path / "b.Dockerfile").write_text("FROM redis:7\n")
    real = rewrite.rewrite_text

    def someone_saves_a(text: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "nginx" in text:
            (tmp_path / "a.Dockerfile").write_text("FROM nginx:2\n")
        return real(text, *args, **kwargs)

    monkeypatch.setattr(rewrite, "rewrite_text", someone_saves_a)
    result = rewrite_paths([tmp_path], PREFIX)
    assert (tmp_path / "a.Dockerfile").read_text() == "FROM nginx:2\n"
    assert (tmp_path / "b.Dockerfile").read_text() == f"FROM {M}/redis:7\n"
    assert [(e.file, e.message) for e in result.errors] == [
        ("a.Dockerfile", "not rewritten: the file changed while it was being rewritten")
    ]
    assert result.files_changed == ["b.Dockerfile"]


# -- atomic_write ------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_write_goes_through_a_hidden_sibling_and_replaces_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "deploy.yaml"
    target.write_bytes(b"old\n")
    target.chmod(0o640)
    before = target.stat().st_ino
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def watched(src: str, dst: str) -> None:
        renames.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watched)
    atomic_write(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert target.stat().st_ino != before  # a new file, not the old one overwritten
    assert target.stat().st_mode & 0o777 == 0o640
    [(src, dst)] = renames
    assert dst == str(target)
    # same directory (a rename across file systems is not atomic), hidden, recognisable
    assert Path(src).parent == tmp_path
    assert Path(src).name.startswith(".deploy.yaml.") and src.endswith(".armirror")
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_leaves_the_original_bytes_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / "deploy.yaml"
    target.write_bytes(b"original\n")
    before = target.stat().st_ino

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        atomic_write(target, b"rewritten\n")
    monkeypatch.undo()
    assert target.read_bytes() == b"original\n"
    assert target.stat().st_ino == before
    assert _leftovers(tmp_path) == []


def test_a_symbolic_link_keeps_pointing_at_the_rewritten_file(tmp_path: Path) -> None:
    real = tmp_path / "real.yaml"
    real.write_bytes(b"old\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    atomic_write(link, b"new\n")
    assert link.is_symlink() and real.read_bytes() == b"new\n"


def test_a_temporary_file_that_cannot_be_removed_does_not_hide_the_write_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "deploy.yaml"
    target.write_bytes(b"original\n")

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    def busy(*args: object) -> None:
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(os, "replace", disk_full)
    monkeypatch.setattr(os, "unlink", busy)
    with pytest.raises(OSError, match="No space left on device"):
        atomic_write(target, b"rewritten\n")
    monkeypatch.undo()
    assert target.read_bytes() == b"original\n"
