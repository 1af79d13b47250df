"""Dockerfile scanning: what is an image, what is not, and where its text is."""

from __future__ import annotations

from armirror.scan import Finding, scan_text


def scan(text: str) -> list[Finding]:
    findings, error = scan_text(text, "Dockerfile", "dockerfile")
    assert error is None
    return findings


def refs(text: str) -> list[tuple[int, str | None]]:
    return [(f.line, str(f.reference) if f.reference else None) for f in scan(text)]


def slot_texts(text: str) -> list[list[tuple[str, str]]]:
    return [[(s.part, text[s.start : s.end]) for s in f.slots] for f in scan(text)]


def test_stages_scratch_and_indexes_are_not_images() -> None:
    text = (
        "FROM golang:1.23 AS Build\n"
        "FROM build AS test\n"
        "COPY --from=BUILD /a /b\n"
        "COPY --from=0 /a /b\n"
        "FROM scratch\n"
        "COPY --from=test /a /b\n"
    )
    assert refs(text) == [(1, "docker.io/library/golang:1.23")]


def test_platform_flag_and_lowercase_keywords() -> None:
    text = "from --platform=$BUILDPLATFORM alpine:3.20 as base\n"
    assert refs(text) == [(1, "docker.io/library/alpine:3.20")]
    assert slot_texts(text) == [[("ref", "alpine:3.20")]]


def test_arg_defaults_before_from_in_all_spellings() -> None:
    text = (
        "ARG A=nginx:1.27\n"
        'ARG B="redis:7"\n'
        "ARG C\n"
        "FROM ${A}\n"
        "FROM $B\n"
        "FROM ${C:-quay.io/x/y:1}\n"
        "FROM ${C}\n"
    )
    found = scan(text)
    assert [(f.line, f.image) for f in found] == [
        (4, "nginx:1.27"),
        (5, "redis:7"),
        (6, "quay.io/x/y:1"),
        (7, "${C}"),
    ]
    assert found[3].reference is None and "no default" in (found[3].problem or "")
    # the rewrite edits the place the value is written, not the expression using it
    assert slot_texts(text)[:3] == [
        [("ref", "nginx:1.27")],
        [("ref", "redis:7")],
        [("ref", "quay.io/x/y:1")],
    ]
    assert found[0].slots[0].start == text.index("nginx:1.27")
    assert found[1].slots[0].start == text.index("redis:7")


def test_arg_composed_from_other_args() -> None:
    text = "ARG V=3.12\nARG BASE=python:${V}-slim\nFROM $BASE\n"
    [finding] = scan(text)
    assert str(finding.reference) == "docker.io/library/python:3.12-slim"
    assert slot_texts(text) == [[("name", "python")]]


def test_registry_arg_becomes_a_name_head_slot() -> None:
    text = "ARG REG=ghcr.io\nFROM ${REG}/acme/tool:1\n"
    [finding] = scan(text)
    assert str(finding.reference) == "ghcr.io/acme/tool:1"
    [slot] = finding.slots
    assert (slot.part, text[slot.start : slot.end], slot.tail) == (
        "name-head",
        "ghcr.io",
        "/acme/tool",
    )


def test_stage_args_inherit_global_defaults_and_from_is_global_only() -> None:
    text = (
        "ARG TOOL=busybox:1.36\n"
        "FROM alpine:3.20\n"
        "ARG TOOL\n"
        "ARG LOCAL=curlimages/curl:8.10.1\n"
        "COPY --from=${TOOL} /bin/busybox /bin/\n"
        "RUN --mount=type=bind,from=$LOCAL,target=/c true\n"
        "FROM ${LOCAL}\n"
    )
    assert refs(text) == [
        (2, "docker.io/library/alpine:3.20"),
        (5, "docker.io/library/busybox:1.36"),
        (6, "docker.io/curlimages/curl:8.10.1"),
        (7, None),  # a stage ARG is not in scope for FROM
    ]


def test_comments_continuations_and_heredocs() -> None:
    text = (
        "# FROM commented:1\n"
        "FROM \\\n"
        "  # a comment inside a continuation\n"
        "\n"
        "  nginx:1.27 \\\n"
        "  AS web\n"
        "RUN <<EOF\n"
        "FROM inside-heredoc:1\n"
        "EOF\n"
        "COPY <<-'END' /etc/x\n"
        "\tFROM also-heredoc:1\n"
        "\tEND\n"
        "FROM redis:7\n"
    )
    # the line where the image is written, not where the instruction starts
    assert refs(text) == [(5, "docker.io/library/nginx:1.27"), (13, "docker.io/library/redis:7")]
    assert slot_texts(text)[0] == [("ref", "nginx:1.27")]


def test_escape_directive_and_crlf() -> None:
    text = (
        "# escape=`\r\nFROM mcr.microsoft.com/windows/nanoserver:ltsc2022 `\r\n"
        "  AS a\r\nRUN dir `\r\n  C:\\\r\nFROM a\r\n"
    )
    assert refs(text) == [(2, "mcr.microsoft.com/windows/nanoserver:ltsc2022")]
    assert slot_texts(text) == [[("ref", "mcr.microsoft.com/windows/nanoserver:ltsc2022")]]


def test_backslash_is_not_a_continuation_after_escape_directive() -> None:
    text = "# escape=`\nRUN echo \\\nFROM nginx:1\n"
    assert refs(text) == [(3, "docker.io/library/nginx:1")]


def test_directives_only_at_the_top() -> None:
    text = "# syntax=docker/dockerfile:1\nFROM alpine:3\n# syntax=other/frontend:1\n"
    found = scan(text)
    assert [(f.line, f.where) for f in found] == [(1, "# syntax= directive"), (2, "FROM")]
    late = "\n# syntax=docker/dockerfile:1\nFROM alpine:3\n"
    assert [f.line for f in scan(late)] == [3]


def test_onbuild_copy_from() -> None:
    text = "FROM alpine:3\nONBUILD COPY --from=quay.io/a/b:1 /x /y\n"
    assert refs(text)[1] == (2, "quay.io/a/b:1")


def test_invalid_reference_is_reported_not_an_image() -> None:
    [finding] = scan("FROM NGINX:latest\n")
    assert finding.reference is None
    assert "not a valid reference" in (finding.problem or "")


def test_bom_keeps_offsets() -> None:
    text = "\ufeffFROM nginx:1\n"
    [finding] = scan(text)
    assert text[finding.slots[0].start : finding.slots[0].end] == "nginx:1"
