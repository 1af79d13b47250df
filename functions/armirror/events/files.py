"""Exported log files, streamed: ``gcloud logging read --format=json`` (one JSON array),
JSON lines, and newline-delimited exports of a BigQuery sink table.  Memory stays at
about one chunk plus one entry, however large the file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any, Protocol

import orjson

from armirror.events.model import MAX_ENTRY_BYTES, Skip, error_text

_SEPARATORS_RE = re.compile(r"[\s,]*")
_CHUNK = 1 << 20


class MalformedInput(ValueError):
    """An exported file that cannot be read on: a JSON array cut short, malformed, or
    nested too deeply to parse.  Its message names the character offset."""


def read_entries(stream: IO[str], head: str | None = None) -> Iterator[Any | Skip]:
    """Stream the LogEntries of an exported file: a JSON array (``gcloud logging read
    --format=json``) or JSON lines (also a BigQuery sink export).

    Yields each entry (whatever JSON value it is) or a :class:`Skip` for a line that is
    not JSON, too large or too deep.  Memory stays at about one chunk plus one entry.  A
    JSON array that is cut short, malformed or too deep raises :class:`MalformedInput`.
    """
    if head is None:  # else: the text already read from the stream
        head = stream.read(_CHUNK)
    stripped = head.lstrip()
    if stripped.startswith("["):
        # Offsets in errors count from the file's start: the '[' and what precedes it.
        yield from _read_array(stream, stripped[1:], len(head) - len(stripped) + 1)
    else:
        yield from _read_lines(stream, head)


def _read_lines(stream: IO[str], head: str) -> Iterator[Any | Skip]:
    for lines in line_blocks(stream, head):
        for line in lines:
            if not line or line.isspace():
                continue
            yield decode_line(line)


def decode_line(line: str) -> Any | Skip:
    """One line of a JSON-lines export: its JSON value, or why it has none."""
    if len(line) > MAX_ENTRY_BYTES:
        return Skip("too_large", f"line of {len(line)} characters")
    try:
        return orjson.loads(line)
    except (ValueError, RecursionError) as exc:
        return Skip("bad_json", error_text(exc))


class TextReader(Protocol):
    """What :func:`line_blocks` reads from: a text file, or a byte range of one."""

    def read(self, size: int, /) -> str: ...


def line_blocks(stream: TextReader, head: str = "") -> Iterator[list[str]]:
    """The lines of a JSON-lines stream (after ``head``, text already read from it), a
    chunk's worth at a time; some may be blank.  One endless line is cut to its last
    :data:`MAX_ENTRY_BYTES` characters as it grows, so memory stays bounded."""
    lines = head.split("\n")
    pending = lines.pop()  # an unfinished last line
    while True:
        if lines:
            yield lines
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        lines = (pending + chunk).split("\n")
        pending = lines.pop()
        if len(pending) > 4 * MAX_ENTRY_BYTES:  # one endless line: drop what we have
            pending = pending[-MAX_ENTRY_BYTES:]
    if pending:
        yield [pending]


def _json_int(text: str) -> int | float:
    """A JSON integer as orjson reads one: an int within the signed or unsigned 64-bit
    range, else a float (Python's own parser raises ValueError on 4,300 digits, which
    would end the whole file; no number of more than 20 characters is in that range)."""
    if len(text) <= 20:
        value = int(text)
        if -(2**63) <= value < 2**64:
            return value
    return float(text)


def _read_array(stream: IO[str], buffer: str, offset: int) -> Iterator[Any | Skip]:
    decoder = json.JSONDecoder(parse_int=_json_int)
    pos = 0
    while True:
        pos = _SEPARATORS_RE.match(buffer, pos).end()  # type: ignore[union-attr]
        if pos < len(buffer) and buffer[pos] == "]":
            return
        try:
            value, end = decoder.raw_decode(buffer, pos)  # at the buffer's end: no value
        except RecursionError:
            # The parser recurses once a level: past Python's limit (about 1,000 levels;
            # orjson stops at 1,024 for JSON lines) the element's end cannot be found.
            raise MalformedInput(
                f"JSON array element at character {offset + pos} is nested too deeply"
            ) from None
        except json.JSONDecodeError as exc:
            if len(buffer) - pos > 4 * MAX_ENTRY_BYTES:
                raise MalformedInput(
                    f"JSON array element at character {offset + pos} is not valid JSON"
                ) from exc
            more = stream.read(max(_CHUNK, len(buffer) - pos))
            if not more:  # the element fails with all there is
                raise MalformedInput(
                    f"JSON array malformed or cut short near character {offset + pos}"
                ) from exc
            offset += pos
            buffer, pos = buffer[pos:] + more, 0
            continue
        yield value
        pos = end
