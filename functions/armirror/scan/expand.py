"""Variable expansion that remembers where every character of the result came from.

Dockerfile ARGs, compose interpolation and Cloud Build substitutions share one shape:
``$NAME``, ``${NAME}``, ``${NAME:-default}`` (and ``-``, ``:+``, ``+``, ``:?``, ``?``).
The result is a list of :class:`Piece` s, each the text it contributes and the span of
the file that holds that text, so a rewrite can edit the place a value is written (an
``ARG`` default, a ``${VAR:-default}``) rather than the expression that uses it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from armirror.reference import InvalidReference, Reference, parse

from .finding import Slot
from .limits import check_length, check_time

Span = tuple[int, int]
Locate = Callable[[int, int], Span | None]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_BRACED = re.compile(rf"\$\{{({_NAME})(?:(:?[-+?])([^}}]*))?\}}")
_BARE = re.compile(rf"\$({_NAME})")


@dataclass(frozen=True, slots=True)
class Piece:
    """Text that is part of an expanded value, and the file span that holds it (if one does)."""

    text: str
    span: Span | None


@dataclass(frozen=True, slots=True)
class Var:
    """A variable in scope: its value (None when declared without one) and its pieces."""

    value: str | None
    pieces: tuple[Piece, ...] = ()


@dataclass(frozen=True, slots=True)
class Expansion:
    value: str | None
    pieces: tuple[Piece, ...]
    problem: str | None = None


def literal_var(value: str, span: Span | None) -> Var:
    return Var(value, (Piece(value, span),))


def has_variables(word: str) -> bool:
    return "$" in word


def expand(
    word: str,
    locate: Locate,
    scope: Mapping[str, Var],
    *,
    escape: str | None = None,
    dollar_dollar: bool = False,
    quotes: bool = False,
) -> Expansion:
    """Expand ``word``; ``locate(i, j)`` maps ``word[i:j]`` to a file span.

    ``escape`` is the Dockerfile escape character (``\\$`` is a literal ``$``);
    ``dollar_dollar`` makes ``$$`` a literal ``$`` (compose, Cloud Build); ``quotes``
    removes quotes as BuildKit's word lexer does (``FROM "node:8.15"`` is ``node:8.15``):
    nothing expands inside single quotes, variables do inside double quotes.

    Raises :class:`~armirror.scan.limits.Refused` when the value would grow past
    ``MAX_EXPANDED_LENGTH`` (``ARG B=${A}${A}`` doubles a value per line).
    """
    pieces: list[Piece] = []
    length = 0
    problem: str | None = None
    run_start = 0  # start of the current literal run in `word`
    i = 0
    n = len(word)
    last_brace = word.rfind("}")  # no ``${`` after it can close: skip the regex there

    def add(new: tuple[Piece, ...] | list[Piece]) -> None:
        nonlocal length
        for piece in new:
            if piece.text:
                length += len(piece.text)
                check_length(length)
                pieces.append(piece)

    def flush(end: int) -> None:
        if end > run_start:
            add([Piece(word[run_start:end], locate(run_start, end))])

    quote = ""  # the quote character we are inside, if any
    while i < n:
        ch = word[i]
        if quotes and (ch == quote or (not quote and ch in "'\"")):
            flush(i)
            quote = "" if quote else ch
            i += 1
            run_start = i
            continue
        if quote == "'":
            i += 1
            continue
        if escape is not None and ch == escape and i + 1 < n and word[i + 1] == "$":
            flush(i)
            add([Piece("$", None)])
            i += 2
            run_start = i
            continue
        if ch != "$":
            i += 1
            continue
        check_time()
        if dollar_dollar and word.startswith("$$", i):
            flush(i)
            add([Piece("$", None)])
            i += 2
            run_start = i
            continue
        braced = _BRACED.match(word, i) if i < last_brace else None
        if braced and quotes and any(q in braced.group(0) for q in "'\""):
            braced = None  # ${X:-"a"} is not handled: better unresolved than wrong
        bare = None if braced else _BARE.match(word, i)
        if not braced and not bare:
            i += 1
            continue
        flush(i)
        if braced:
            name, op, arg = braced.group(1), braced.group(2), braced.group(3)
            end = braced.end()
            arg_start = braced.start(3) if op else end
        else:
            assert bare is not None
            name, op, arg, end, arg_start = bare.group(1), None, None, bare.end(), bare.end()
        var = scope.get(name)
        is_set = var is not None and var.value is not None
        non_empty = is_set and bool(var and var.value)
        if op in (":-", "-"):
            use_default = not non_empty if op == ":-" else not is_set
            if use_default:
                assert arg is not None
                if "$" in arg:
                    problem = problem or f"nested variable in {word[i:end]!r}"
                if arg:
                    add([Piece(arg, locate(arg_start, arg_start + len(arg)))])
            else:
                assert var is not None
                add(var.pieces)
        elif op in (":+", "+"):
            if non_empty if op == ":+" else is_set:
                assert arg is not None
                if arg:
                    add([Piece(arg, locate(arg_start, arg_start + len(arg)))])
        elif op in (":?", "?"):
            if (non_empty if op == ":?" else is_set) and var is not None:
                add(var.pieces)
            else:
                problem = problem or f"${{{name}}} is required and has no default"
        elif is_set and var is not None:
            add(var.pieces)
        else:
            problem = problem or f"${{{name}}} has no default"
        i = end
        run_start = i
    flush(n)
    if quote:
        problem = problem or f"unterminated {quote} quote"
    if problem:
        return Expansion(None, tuple(pieces), problem)
    return Expansion("".join(p.text for p in pieces), tuple(pieces))


def written_name_length(value: str) -> int:
    """How many leading characters of a reference as written are its name."""
    remainder = value.split("@", 1)[0]
    colon = remainder.rfind(":")
    if colon != -1 and "/" not in remainder[colon + 1 :]:
        return colon
    return len(remainder)


def slots_for(pieces: tuple[Piece, ...], value: str) -> tuple[tuple[Slot, ...], str | None]:
    """Where a rewrite can write the reference an expansion produced.

    One piece holding the whole value gives a ``ref`` slot; a piece holding exactly the
    name part (``ARG REPO=nginx`` in ``FROM ${REPO}:${TAG}``) gives a ``name`` slot.
    """
    nonempty = [p for p in pieces if p.text]
    if len(nonempty) == 1 and nonempty[0].span is not None and nonempty[0].text == value:
        return (Slot(nonempty[0].span[0], nonempty[0].span[1], "ref"),), None
    name_len = written_name_length(value)
    offset = 0
    for piece in nonempty:
        start, end = offset, offset + len(piece.text)
        if start == 0 and end >= name_len and piece.span is not None:
            file_start = piece.span[0]
            if end == name_len or piece.text[name_len:][:1] in (":", "@"):
                return (Slot(file_start, file_start + name_len, "name"),), None
        offset = end
    first = nonempty[0] if nonempty else None
    if first is not None and first.span is not None and len(first.text) < name_len:
        tail = value[len(first.text) : name_len]
        return (Slot(first.span[0], first.span[1], "name-head", tail=tail),), None
    return (), "the reference is assembled from several values; edit it by hand"


def try_reference(value: str) -> tuple[Reference | None, str | None]:
    """``(Reference, None)`` or ``(None, problem)``."""
    try:
        return parse(value), None
    except InvalidReference as exc:
        return None, exc.problem
