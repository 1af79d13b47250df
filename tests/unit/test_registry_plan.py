"""Planning decisions that need no registry: cosign's signature tags, the order a plan
pushes manifests in, and how a resumable upload plans its chunks (sizes, the offset a
registry reports, reading exactly a chunk's bytes, where sessions are kept).

Chunk sizes depend on the time left, so the deadline here is one whose clock stands
still (``StillDeadline``); the real clock is used only where a bound can be asserted.
"""

from __future__ import annotations

import json
import time

import pytest
from armirror.registry.errors import TransientError
from armirror.registry.manifest import Manifest, parse_manifest
from armirror.registry.plan import SIGNATURE_TAG_RE, Plan, signature_tags
from armirror.registry.resumable import (
    ChunkedUploadRefused,
    ChunkPlanner,
    Deadline,
    ExactReader,
    MemoryUploadSessions,
    upload_offset,
)

HEX = "0123456789abcdef" * 4
MIB = 1024 * 1024


# -- signatures and plans ---------------------------------------------------------------


def test_signature_tags_follow_cosign() -> None:
    assert signature_tags(f"sha256:{HEX}") == [
        f"sha256-{HEX}.sig",
        f"sha256-{HEX}.att",
        f"sha256-{HEX}.sbom",
    ]


@pytest.mark.parametrize(
    ("tag", "is_signature"),
    [
        (f"sha256-{HEX}.sig", True),
        (f"sha256-{HEX}.att", True),
        (f"sha256-{HEX}.sbom", True),
        (f"sha256-{HEX}.sig.bak", False),
        (f"v1-sha256-{HEX}.sig", False),
        (f"sha256-{HEX[:-1]}.sig", False),
        (f"sha256-{HEX.upper()}.sig", False),
        (f"sha256-{HEX}.pem", False),
        ("latest", False),
    ],
)
def test_signature_tag_pattern(tag: str, is_signature: bool) -> None:
    assert bool(SIGNATURE_TAG_RE.match(tag)) is is_signature


def _manifest(n: int) -> Manifest:
    body = json.dumps({"layers": [], "annotations": {"n": str(n)}}).encode()
    return parse_manifest(body, "application/vnd.oci.image.manifest.v1+json", None)


def test_plan_pushes_the_top_first_then_platforms_signatures_referrers() -> None:
    top, one, two, sig, att, ref = (_manifest(n) for n in range(6))
    plan = Plan(
        top=top,
        children=[one, two],
        signatures={"b.sig": sig, "a.att": att},
        referrers=[ref],
    )
    assert plan.manifests() == [top, one, two, sig, att, ref]
    assert Plan(top=top).manifests() == [top]


# -- the offset a registry reports --------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "offset"),
    [
        ("0-0", 1),
        ("0-99", 100),
        ("bytes=0-8388607", 8 * MIB),
        ("  0-9 ", 10),
        ("1-9", None),  # not from the start: nothing to resume from
        ("0-", None),
        ("0-x", None),
        ("0-9x", None),
        ("bytes 0-9", None),
        ("", None),
        (None, None),
    ],
)
def test_upload_offset(header: str | None, offset: int | None) -> None:
    assert upload_offset(header) == offset


# -- deadlines and chunk sizes ------------------------------------------------------------


class StillDeadline(Deadline):
    """A deadline whose time left does not move: ``at`` is the seconds left."""

    def left(self) -> float:
        return self.at


def test_deadline_within_keeps_a_fifth_back_at_most_a_minute() -> None:
    before = time.monotonic()
    short = Deadline.within(10)
    long = Deadline.within(1000)
    after = time.monotonic()
    assert short.reserve == 2.0 and long.reserve == 60.0
    assert Deadline.within(300).reserve == 60.0
    assert Deadline.within(0.5).reserve == 0.1  # under a second is still in the future
    assert before + 10 <= short.at <= after + 10
    assert before + 1000 <= long.at <= after + 1000
    for nonsense in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="a deadline must be in the future"):
            Deadline.within(nonsense)


def test_deadline_left_keeps_the_reserve_back() -> None:
    deadline = Deadline(at=time.monotonic() + 100, reserve=30)
    before = time.monotonic()
    left = deadline.left()
    after = time.monotonic()
    assert deadline.at - 30 - after <= left <= deadline.at - 30 - before
    assert Deadline(at=time.monotonic() - 1).left() < 0


def test_chunks_without_a_deadline_are_as_large_as_allowed() -> None:
    planner = ChunkPlanner(None)
    assert planner.next(1000) == 1000
    assert planner.next(256 * MIB) == 256 * MIB
    assert planner.next(256 * MIB + 1) == 256 * MIB


def test_first_chunk_is_small_until_the_link_is_measured() -> None:
    planner = ChunkPlanner(StillDeadline(1000.0))
    assert planner.next(100 * MIB) == 8 * MIB
    assert planner.next(3 * MIB) == 3 * MIB
    assert ChunkPlanner(StillDeadline(0.0)).next(100) is None
    assert ChunkPlanner(StillDeadline(-1.0)).next(100) is None
    assert ChunkPlanner(StillDeadline(0.001)).next(100) == 100


def test_chunks_take_half_the_time_left_at_the_measured_rate() -> None:
    planner = ChunkPlanner(StillDeadline(10.0), rate=4 * MIB)
    assert planner.next(1000 * MIB) == 20 * MIB  # 4 MiB/s x 10 s x 0.5
    assert planner.next(12 * MIB) == 12 * MIB  # the rest is smaller
    fast = ChunkPlanner(StillDeadline(1000.0), rate=100 * MIB)
    assert fast.next(1000 * MIB) == 256 * MIB  # never over the largest chunk


def test_no_chunk_when_not_even_the_smallest_would_finish() -> None:
    # 1 MiB/s x 16 s x 0.5 = 8 MiB: exactly the smallest chunk still goes.
    assert ChunkPlanner(StillDeadline(16.0), rate=MIB).next(100 * MIB) == 8 * MIB
    assert ChunkPlanner(StillDeadline(15.9), rate=MIB).next(100 * MIB) is None
    # The rest of a blob smaller than the smallest chunk goes if it fits.
    assert ChunkPlanner(StillDeadline(4.0), rate=MIB).next(2 * MIB) == 2 * MIB
    assert ChunkPlanner(StillDeadline(3.9), rate=MIB).next(2 * MIB) is None


def test_rate_is_measured_over_the_last_four_chunks() -> None:
    planner = ChunkPlanner(None)
    planner.observe(100, 1.0)
    assert planner.rate == 100.0
    planner.observe(300, 1.0)
    assert planner.rate == 200.0
    for _ in range(3):
        planner.observe(1000, 2.0)
    assert planner.rate == (300 + 3000) / 7.0  # the first sample has dropped out
    planner.observe(10, 0.0)  # a chunk that took no measurable time
    assert planner.rate == 3010 / (2.0 + 2.0 + 2.0 + 1e-6)  # counted as a microsecond


# -- reading a chunk's bytes exactly ------------------------------------------------------


def test_exact_reader_cuts_and_joins_pieces() -> None:
    reader = ExactReader(iter([b"abc", b"", b"defgh", b"ij"]))
    assert b"".join(reader.take(2)) == b"ab"
    assert list(reader.take(4)) == [b"c", b"def"]
    reader.skip(1)
    assert b"".join(reader.take(3)) == b"hij"
    assert list(reader.take(0)) == []


def test_exact_reader_source_ending_early_is_transient() -> None:
    reader = ExactReader(iter([b"abc"]))
    with pytest.raises(TransientError) as caught:
        b"".join(reader.take(5))
    assert str(caught.value).startswith("the source ended 2 bytes before the blob did")


# -- where sessions are kept --------------------------------------------------------------


def test_memory_sessions_by_destination_and_digest() -> None:
    sessions = MemoryUploadSessions()
    here, there = "https://r.test/team/app", "https://r.test/team/other"
    assert sessions.upload_session(here, "sha256:1") is None
    sessions.save_upload_session(here, "sha256:1", "/v2/team/app/blobs/uploads/u1", 10)
    sessions.save_upload_session(here, "sha256:2", "/v2/team/app/blobs/uploads/u2", 20)
    assert sessions.upload_session(here, "sha256:1") == ("/v2/team/app/blobs/uploads/u1", 10)
    assert sessions.upload_session(here, "sha256:2") == ("/v2/team/app/blobs/uploads/u2", 20)
    assert sessions.upload_session(there, "sha256:1") is None
    sessions.save_upload_session(here, "sha256:1", "/v2/team/app/blobs/uploads/u1b", 30)
    assert sessions.upload_session(here, "sha256:1") == ("/v2/team/app/blobs/uploads/u1b", 30)
    sessions.forget_upload_session(here, "sha256:1")
    sessions.forget_upload_session(here, "sha256:1")  # forgetting twice is fine
    assert sessions.upload_session(here, "sha256:1") is None
    assert sessions.upload_session(here, "sha256:2") == ("/v2/team/app/blobs/uploads/u2", 20)


def test_chunked_refusal_carries_the_status() -> None:
    refused = ChunkedUploadRefused(405)
    assert refused.status == 405 and str(refused) == "chunked upload refused with 405"
