"""verify after rewrite, and statuses that tell the truth (issue 15 §1 §2).

Real registries throughout: docker-registry plays Docker Hub and the mirror, an
htpasswd registry refuses anonymous callers, and closed ports and a .invalid host stand
for an unreachable registry and a DNS failure.
"""

from __future__ import annotations

from pathlib import Path

from registry_checks import armirror, unique, verify_json
from standins import images
from standins.registry import Registry, free_port

SHA_ABSENT = "sha256:" + "0" * 64


def statuses(report: dict) -> dict[str, tuple[str, str]]:  # type: ignore[type-arg]
    return {row["source"]: (row["status"], row["detail"]) for row in report["images"]}


def test_verify_checks_files_that_rewrite_pointed_at_the_mirror(
    source_registry: Registry, dest_registry: Registry, tmp_path: Path
) -> None:
    upstream = ["--upstream", f"docker.io={source_registry.url}"]
    prefix = f"{dest_registry.host}/{unique('rewritten')}"
    web = images.single_image(unique("library/web"), "1", seed=951)
    db = images.single_image(unique("team/db"), "2", seed=952)
    for image in (web, db):
        images.push(source_registry.url, image)
    (tmp_path / "Dockerfile").write_text(f"FROM {web.repository}:1\nRUN true\n")
    (tmp_path / "deploy.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        f"  - name: db\n    image: docker.io/{db.repository}:2\n"
    )
    copied = armirror(
        "copy", f"{web.repository}:1", f"{db.repository}:2", "--to", prefix, *upstream
    )
    assert copied.returncode == 0, copied.stderr

    # The order the help gives: rewrite, then verify the same paths.
    rewritten = armirror("rewrite", str(tmp_path), "--to", prefix, *upstream)
    assert rewritten.returncode == 0, rewritten.stderr
    assert f"{prefix}/docker.io/{web.repository}:1" in (tmp_path / "Dockerfile").read_text()
    status, report = verify_json(str(tmp_path), "--to", prefix, *upstream)
    assert status == 0, report
    assert statuses(report) == {
        f"docker.io/{web.repository}:1": ("ok", ""),
        f"docker.io/{db.repository}:2": ("ok", ""),
    }
    row = next(r for r in report["images"] if r["source"].endswith(":1"))
    assert row["destination"] == f"{prefix}/docker.io/{web.repository}:1"

    # A file set with both kinds: one file back on Docker Hub, one on the mirror.
    (tmp_path / "Dockerfile").write_text(f"FROM {web.repository}:1\n")
    status, report = verify_json(str(tmp_path), "--to", prefix, *upstream)
    assert status == 0 and {s for s, _ in statuses(report).values()} == {"ok"}
    assert len(report["images"]) == 2

    # The upstream tag moves on: the rewritten file's image is stale, as any other.
    images.push(source_registry.url, images.single_image(db.repository, "2", seed=953))
    status, report = verify_json(str(tmp_path), "--to", prefix, *upstream)
    assert status == 1
    assert statuses(report)[f"docker.io/{db.repository}:2"][0] == "stale"


def test_could_not_check_is_unknown_with_its_reason(
    source_registry: Registry,
    dest_registry: Registry,
    htpasswd_registry: Registry,
    tmp_path: Path,
) -> None:
    prefix = f"{dest_registry.host}/{unique('unknown')}"
    image = images.single_image(unique("library/present"), "1", seed=961)
    images.push(source_registry.url, image)
    name = f"{image.repository}:1"
    copied = armirror(
        "copy", name, "--to", prefix, "--upstream", f"docker.io={source_registry.url}"
    )
    assert copied.returncode == 0, copied.stderr

    # The upstream is unreachable while the image sits in the mirror.
    closed = f"docker.io=http://127.0.0.1:{free_port()}"
    status, report = verify_json("--to", prefix, "--upstream", closed, names=[name])
    state, detail = statuses(report)[f"docker.io/{name}"]
    assert (state, status) == ("unknown", 3)
    assert "upstream could not be asked" in detail and "ConnectError" in detail
    assert report["summary"] == {"ok": 0, "missing": 0, "stale": 0, "incomplete": 0, "unknown": 1}
    assert report["ok"] is False

    # The destination refuses anonymous callers (401).
    status, report = verify_json("--to", f"{htpasswd_registry.host}/m", names=[name])
    state, detail = statuses(report)[f"docker.io/{name}"]
    assert (state, status) == ("unknown", 3)
    assert "401" in detail and "could not check the mirror" in detail

    # The destination's name does not resolve.
    status, report = verify_json("--to", "mirror.nonexistent.invalid/m", names=[name])
    state, detail = statuses(report)[f"docker.io/{name}"]
    assert (state, status) == ("unknown", 3)
    assert "nonexistent.invalid" in detail

    # An unknown next to a missing: the proven problem sets the exit status.
    absent = f"{unique('library/absent')}:1"
    status, report = verify_json("--to", prefix, "--upstream", closed, names=[name, absent])
    assert status == 1
    assert statuses(report)[f"docker.io/{absent}"][0] == "missing"
    assert report["summary"]["unknown"] == 1 and report["summary"]["missing"] == 1

    # The table's summary names both, and the hint says what to do.
    table = armirror(
        "verify", "-f", "-", "--to", prefix, "--upstream", closed, stdin=f"{name}\n{absent}\n"
    )
    assert table.returncode == 1
    assert "1 missing, 1 unknown" in table.stderr  # a summary: a message, not data
    assert "could not be checked" in table.stderr


def test_a_pinned_reference_is_ok_or_missing_never_stale(
    source_registry: Registry, dest_registry: Registry
) -> None:
    upstream = ["--upstream", f"docker.io={source_registry.url}"]
    prefix = f"{dest_registry.host}/{unique('pinned')}"
    image = images.single_image(unique("library/pinned"), "1", seed=971)
    digest = images.push(source_registry.url, image)
    copied = armirror("copy", f"{image.repository}:1", "--to", prefix, *upstream)
    assert copied.returncode == 0, copied.stderr

    present = f"{image.repository}:1@{digest}"
    absent = f"{image.repository}:1@{SHA_ABSENT}"
    by_digest_only = f"{image.repository}@{digest}"
    # The upstream tag moves: a tag would be stale, a pinned digest is not.
    images.push(source_registry.url, images.single_image(image.repository, "1", seed=972))
    status, report = verify_json("--to", prefix, *upstream, names=[present, absent, by_digest_only])
    found = statuses(report)
    assert found[f"docker.io/{present}"][0] == "ok"
    assert found[f"docker.io/{by_digest_only}"][0] == "ok"
    assert found[f"docker.io/{absent}"] == ("missing", "not at the destination")
    assert status == 1

    # A pinned reference never asks the upstream, so an unreachable one changes nothing.
    closed = f"docker.io=http://127.0.0.1:{free_port()}"
    status, report = verify_json("--to", prefix, "--upstream", closed, names=[present])
    assert (status, statuses(report)[f"docker.io/{present}"][0]) == (0, "ok")
