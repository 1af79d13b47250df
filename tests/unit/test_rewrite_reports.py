"""rewrite_text reports every reference: rewritten (to what), skipped (why) or unresolved.

Each reference left alone must be named with the reason a user can act on, and one
left alone must never stop the references after it from being rewritten.  Expected
texts are written out, not built with the mapping under test.
"""

from __future__ import annotations

import pytest
from armirror.reference import parse, parse_prefix
from armirror.rewrite import _Edit, _overlaps, rewrite_text, wants_rewrite
from armirror.scan import Finding, Slot, scan_text

PREFIX = "us-docker.pkg.dev/acme/mirror"
M = PREFIX + "/docker.io/library"
DIGEST = "sha256:" + "b" * 64
OLD_DIGEST = "sha256:" + "a" * 64
POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
LONG = "quay.io/" + "a" * 240


def run(
    text: str, type_: str = "dockerfile", hint: str | None = None, prefix: str = PREFIX, **kw
) -> tuple[str, list[tuple[int, str, str]], list[tuple[int, str, str]], list[str]]:
    """New text, changes (line, from, to), skips (line, image, reason), unresolved images."""
    findings, error = scan_text(text, "f", type_, hint)
    assert error is None
    new, changes, skipped, unresolved = rewrite_text(text, findings, prefix, **kw)
    return (
        new,
        [(c.line, c.source, c.destination) for c in changes],
        [(s.finding.line, s.finding.image, s.reason) for s in skipped],
        [f.image for f in unresolved],
    )


def test_a_reference_left_alone_is_named_with_its_reason_and_the_rest_still_move() -> None:
    text = (
        "ARG R=localhost\n"
        f"FROM {LONG}:1 AS long\n"
        "FROM ${R}:5000/x:1 AS assembled\n"
        "FROM postgres:16 AS absent\n"
        "FROM ${X} AS unset\n"
        "FROM nginx:1\n"
    )
    absent = parse(f"{PREFIX}/docker.io/library/postgres:16")
    new, changes, skipped, unresolved = run(text, unusable={absent: "not in the mirror"})
    assert new == text.replace("FROM nginx:1", f"FROM {M}/nginx:1")
    assert changes == [(6, "docker.io/library/nginx:1", f"{M}/nginx:1")]
    assert skipped == [
        (
            2,
            f"{LONG}:1",
            f"invalid image reference '{PREFIX}/{LONG}': "
            "destination name longer than 255 characters",
        ),
        (3, "localhost:5000/x:1", "the rest of the name (':5000/x') does not fit the destination"),
        (4, "postgres:16", "not in the mirror"),
    ]
    assert unresolved == ["${X}"]


def test_a_value_that_cannot_be_edited_is_named_and_the_next_one_moves() -> None:
    text = POD.replace("spec:", "x: &i nginx:1\nspec:") + "  - image: *i\n  - image: redis:7\n"
    new, changes, skipped, _ = run(text, "yaml")
    assert new == text.replace("image: redis:7", f"image: {M}/redis:7")
    assert changes == [(8, "docker.io/library/redis:7", f"{M}/redis:7")]
    assert skipped == [
        (4, "nginx:1", "written with escapes or over several lines; edit it by hand")
    ]


def test_conflicting_shared_values_are_skipped_and_later_references_move() -> None:
    text = "ARG R=docker.io\nFROM ${R}/nginx:1\nFROM ${R}/bitnami/redis:7\nFROM alpine:3\n"
    new, changes, skipped, _ = run(text)
    assert new == (
        f"ARG R={M}\nFROM ${{R}}/nginx:1\nFROM ${{R}}/bitnami/redis:7\nFROM {M}/alpine:3\n"
    )
    assert [line for line, _, _ in changes] == [2, 4]
    assert skipped == [
        (
            3,
            "docker.io/bitnami/redis:7",
            "shares its value with another reference that maps elsewhere",
        )
    ]


def test_a_helm_repository_that_cannot_be_edited_is_skipped_not_reported_as_moved() -> None:
    # The repository is an alias: only the tag could be edited.  Next to it a map that
    # moves, so the file is written: the report must not count the alias as rewritten,
    # and a pin must not land on the tag of the upstream name.
    text = (
        "x: &r nginx\nimage:\n  repository: *r\n  tag: '1'\n"
        "other:\n  image:\n    repository: busybox\n    tag: '1'\n"
    )
    moved = (
        "x: &r nginx\nimage:\n  repository: *r\n  tag: '1'\n"
        f"other:\n  image:\n    repository: {M}/busybox\n    tag: '1'\n"
    )
    pins = {parse(f"{M}/busybox:1"): DIGEST, parse(f"{M}/nginx:1"): DIGEST}
    skip = (2, "nginx:1", "registry or repository is not a plain value")
    new, changes, skipped, _ = run(text, "yaml", "helm")
    assert (new, [c[0] for c in changes], skipped) == (moved, [6], [skip])
    new, changes, skipped, _ = run(text, "yaml", "helm", digests=pins)
    assert new == moved.replace("    tag: '1'", f"    tag: '1@{DIGEST}'")
    assert ([c[0] for c in changes], skipped) == ([6], [skip])


def test_a_kustomize_new_name_that_cannot_be_edited_is_skipped_not_reported_as_moved() -> None:
    text = (
        "images:\n- name: nginx\n  newName: &n quay.io/x/nginx\n- name: redis\n  newName: *n\n"
        "- name: busybox\n  newName: quay.io/x/busybox\n"
    )
    moved = (
        "images:\n- name: nginx\n  newName: &n quay.io/x/nginx\n- name: redis\n  newName: *n\n"
        f"- name: busybox\n  newName: {PREFIX}/quay.io/x/busybox\n"
        f"- name: {M}/busybox\n  newName: {PREFIX}/quay.io/x/busybox\n"
    )
    new, changes, skipped, _ = run(text, "yaml", "kustomize")
    assert new == moved
    assert changes == [(6, "quay.io/x/busybox", f"{PREFIX}/quay.io/x/busybox")]
    problem = "newName is not a plain value"
    assert skipped == [(2, "quay.io/x/nginx", problem), (4, "quay.io/x/nginx", problem)]
    # pinned, no digest is added under the entries that still name the upstream
    pins = {
        parse(f"{PREFIX}/quay.io/x/busybox:1").with_tag(None): DIGEST,
        parse(f"{PREFIX}/quay.io/x/nginx:1").with_tag(None): DIGEST,
    }
    new, changes, skipped, _ = run(text, "yaml", "kustomize", digests=pins)
    assert new == (
        "images:\n- name: nginx\n  newName: &n quay.io/x/nginx\n- name: redis\n  newName: *n\n"
        f"- name: busybox\n  newName: {PREFIX}/quay.io/x/busybox\n  digest: {DIGEST}\n"
        f"- name: {M}/busybox\n  newName: {PREFIX}/quay.io/x/busybox\n  digest: {DIGEST}\n"
    )
    assert [c[0] for c in changes] == [6]
    assert skipped == [(2, "quay.io/x/nginx", problem), (4, "quay.io/x/nginx", problem)]


def test_pinning_writes_the_digest_where_the_shape_has_a_place() -> None:
    alpine = parse(f"{M}/alpine:3")
    nginx = parse(f"{M}/nginx:latest")
    digests = {alpine: DIGEST, nginx: DIGEST}
    # a Helm tag gains the digest when the map has no digest key
    new, changes, skipped, _ = run(
        "image:\n  repository: alpine\n  tag: '3'\n", "yaml", "helm", digests=digests
    )
    assert new == f"image:\n  repository: {M}/alpine\n  tag: '3@{DIGEST}'\n"
    assert changes == [(1, "docker.io/library/alpine:3", f"{M}/alpine:3@{DIGEST}")]
    assert skipped == []
    # an implicit latest is written out once a digest follows it
    new, changes, _, _ = run("FROM nginx\n", digests=digests)
    assert new == f"FROM {M}/nginx:latest@{DIGEST}\n"
    assert changes == [(1, "docker.io/library/nginx:latest", f"{M}/nginx:latest@{DIGEST}")]
    # a name assembled from an ARG has no place for a digest: it moves, and says so
    tool = parse(f"{PREFIX}/ghcr.io/acme/tool:1")
    new, changes, skipped, _ = run(
        "ARG REG=ghcr.io\nFROM ${REG}/acme/tool:1\n", digests={tool: DIGEST}
    )
    assert new == f"ARG REG={PREFIX}/ghcr.io\nFROM ${{REG}}/acme/tool:1\n"
    # the change names what the file now holds: no digest
    assert changes == [(2, "ghcr.io/acme/tool:1", f"{PREFIX}/ghcr.io/acme/tool:1")]
    assert skipped == [
        (2, "ghcr.io/acme/tool:1", "rewritten without a digest: this shape has no place for one")
    ]


def test_a_pinned_kustomize_entry_without_a_tag_and_its_twin_both_get_the_digest() -> None:
    # Both digests are inserted at one place (the end of the entry, where the twin
    # follows); they are two edits, not one made twice.
    busybox = parse(f"{PREFIX}/quay.io/x/busybox:1").with_tag(None)
    new, _, skipped, _ = run(
        "images:\n- name: busybox\n  newName: quay.io/x/busybox\n",
        "yaml",
        "kustomize",
        digests={busybox: DIGEST},
    )
    assert new == (
        f"images:\n- name: busybox\n  newName: {PREFIX}/quay.io/x/busybox\n  digest: {DIGEST}\n"
        f"- name: {M}/busybox\n  newName: {PREFIX}/quay.io/x/busybox\n  digest: {DIGEST}\n"
    )
    assert skipped == []


def test_a_reference_not_yet_in_the_mirror_is_not_pinned_and_the_next_one_is() -> None:
    digests = {parse(f"{M}/redis:7"): DIGEST}
    new, changes, skipped, _ = run("FROM nginx:1\nFROM redis:7\n", digests=digests)
    assert new == f"FROM nginx:1\nFROM {M}/redis:7@{DIGEST}\n"
    assert changes == [(2, "docker.io/library/redis:7", f"{M}/redis:7@{DIGEST}")]
    assert skipped == [(1, "nginx:1", f"{M}/nginx:1 not found at the destination; copy it")]


def test_pinning_leaves_a_digest_already_written_alone() -> None:
    text = f"FROM quay.io/a/b@{OLD_DIGEST}\n"
    new, changes, skipped, _ = run(text, digests={})
    assert new == f"FROM {PREFIX}/quay.io/a/b@{OLD_DIGEST}\n"
    assert changes == [(1, f"quay.io/a/b@{OLD_DIGEST}", f"{PREFIX}/quay.io/a/b@{OLD_DIGEST}")]
    assert skipped == []


def test_an_explicit_latest_stays_explicit() -> None:
    new, _, _, _ = run("FROM nginx\nFROM nginx:latest\n")
    assert new == f"FROM {M}/nginx\nFROM {M}/nginx:latest\n"


def test_only_the_mirror_itself_is_left_alone_on_the_mirror_registry() -> None:
    prefix = "localhost:5000/m"
    text = (
        "FROM localhost:5000/m/docker.io/library/nginx:1\n"  # already the mirror
        "FROM localhost:5000/other:1\n"  # same registry, another repository
        "FROM quay.io/m/tool:1\n"  # another registry, a repository that starts like it
    )
    new, changes, _, _ = run(text, prefix=prefix)
    assert new == (
        "FROM localhost:5000/m/docker.io/library/nginx:1\n"
        "FROM localhost:5000/m/localhost_5000/other:1\n"
        "FROM localhost:5000/m/quay.io/m/tool:1\n"
    )
    assert [line for line, _, _ in changes] == [2, 3]


def test_cluster_and_built_findings_are_never_rewritten() -> None:
    prefix = parse_prefix(PREFIX)
    nginx = parse("nginx:1")
    slot = (Slot(0, 7, "ref"),)
    running = Finding("pod/default/web", 0, "cluster", "nginx:1", nginx, slots=slot)
    built = Finding("compose.yaml", 3, "compose", "nginx:1", nginx, slots=slot, built=True)
    pulled = Finding("compose.yaml", 3, "compose", "nginx:1", nginx, slots=slot)
    assert wants_rewrite(running, prefix, True) is False
    assert wants_rewrite(built, prefix, True) is False
    assert wants_rewrite(pulled, prefix, False) is True


def test_an_unresolved_first_party_template_is_reported_only_with_first_party() -> None:
    text = POD + "  - image: gcr.io/${PROJECT}/app:1\n  - image: ${IMAGE}\n"
    assert run(text, "yaml")[3] == ["${IMAGE}"]
    assert run(text, "yaml", include_first_party=True)[3] == [
        "gcr.io/${PROJECT}/app:1",
        "${IMAGE}",
    ]


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        (_Edit(0, 5, "x"), _Edit(0, 5, "x"), False),  # one edit made twice
        (_Edit(0, 5, "x"), _Edit(0, 5, "y"), True),  # one span, two texts
        (_Edit(0, 5, "x"), _Edit(3, 8, "y"), True),  # partly shared
        (_Edit(3, 8, "y"), _Edit(0, 5, "x"), True),
        (_Edit(0, 5, "x"), _Edit(5, 9, "y"), False),  # adjacent
        (_Edit(4, 4, "x"), _Edit(4, 4, "y"), False),  # two insertions keep their order
        (_Edit(2, 2, "x"), _Edit(0, 5, "y"), True),  # an insertion inside a replacement
        (_Edit(0, 5, "y"), _Edit(2, 2, "x"), True),
        (_Edit(0, 0, "x"), _Edit(0, 5, "y"), False),  # an insertion before it
        (_Edit(0, 5, "y"), _Edit(5, 5, "x"), False),  # an insertion after it
    ],
)
def test_which_edits_overlap(a: _Edit, b: _Edit, overlap: bool) -> None:
    assert _overlaps(a, b) is overlap
