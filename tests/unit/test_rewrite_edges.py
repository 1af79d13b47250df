"""rewrite_text fails closed on findings it cannot act on.

rewrite_text takes its findings from the scanners.  Should a scanner ever hand it a
reference with no place to write, or a slot of a kind the rewriter does not know (a
scanner and the rewriter out of step), that reference must be left alone and named
with the reason, and the references after it must still move.  The findings are real
scan results, altered only in the one field under test.
"""

from __future__ import annotations

import dataclasses

from armirror.rewrite import rewrite_text
from armirror.scan import Slot, scan_text

PREFIX = "us-docker.pkg.dev/acme/mirror"
M = PREFIX + "/docker.io/library"
TEXT = "FROM nginx:1\nFROM redis:7\n"


def test_a_reference_with_no_place_to_write_is_skipped_and_the_next_one_moves() -> None:
    findings, error = scan_text(TEXT, "Dockerfile", "dockerfile")
    assert error is None and [f.image for f in findings] == ["nginx:1", "redis:7"]
    findings[0] = dataclasses.replace(findings[0], slots=())

    new, changes, skipped, unresolved = rewrite_text(TEXT, findings, PREFIX)

    assert new == f"FROM nginx:1\nFROM {M}/redis:7\n"
    assert [(c.line, c.destination) for c in changes] == [(2, f"{M}/redis:7")]
    assert [(s.finding.line, s.finding.image, s.reason) for s in skipped] == [
        (1, "nginx:1", "no editable value")
    ]
    assert unresolved == []


def test_a_slot_of_an_unknown_kind_is_skipped_naming_it_and_the_next_one_moves() -> None:
    findings, error = scan_text(TEXT, "Dockerfile", "dockerfile")
    assert error is None
    (slot,) = findings[0].slots
    assert TEXT[slot.start : slot.end] == "nginx:1"
    findings[0] = dataclasses.replace(findings[0], slots=(Slot(slot.start, slot.end, "tag"),))

    new, changes, skipped, _ = rewrite_text(TEXT, findings, PREFIX)

    assert new == f"FROM nginx:1\nFROM {M}/redis:7\n"
    assert [(c.line, c.destination) for c in changes] == [(2, f"{M}/redis:7")]
    assert [(s.finding.line, s.reason) for s in skipped] == [(1, "unknown slot part 'tag'")]
