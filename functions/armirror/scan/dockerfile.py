"""Image references in Dockerfiles and Containerfiles.

Read like BuildKit reads them: parser directives (``# escape=`` changes the line
continuation character, ``# syntax=`` names a frontend image that is pulled), line
continuations with comment lines inside them, heredocs (whose bodies are not
instructions), ``ARG`` defaults before and after the first ``FROM``, ``FROM`` with flags
and ``AS name``, stage names and indexes (not images), ``FROM scratch`` (not an image),
``COPY --from`` and ``RUN --mount=...,from=``, and ``ONBUILD`` wrapping either.
Quotes around an image are removed as BuildKit's word lexer removes them
(``FROM "node:8.15"`` pulls ``node:8.15``).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

from .expand import Piece, Span, Var, expand, literal_var, slots_for, try_reference
from .finding import Finding, Slot
from .limits import Refused, check_findings, check_time

_DIRECTIVE = re.compile(r"#[ \t]*([A-Za-z][A-Za-z0-9_-]*)[ \t]*=[ \t]*(\S*)[ \t]*$")
_KNOWN_DIRECTIVES = {"syntax", "escape", "check"}
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_ARG_ITEM = re.compile(
    r"\s*([A-Za-z_][A-Za-z0-9_]*)(?:=(?:\"((?:[^\"\\]|\\.)*)\"|'([^']*)'|(\S*)))?"
)
_TOKEN = re.compile(r"\S+")


def _physical_lines(text: str) -> Iterator[tuple[int, int, str]]:
    """``(line number, offset, content without line ending)`` for each line."""
    pos, n, number = 0, len(text), 1
    while pos < n:
        newline = text.find("\n", pos)
        end = n if newline == -1 else newline
        content_end = end - 1 if end > pos and text[end - 1] == "\r" else end
        yield number, pos, text[pos:content_end]
        pos, number = end + 1, number + 1


@dataclass
class _Instruction:
    line: int
    pieces: list[tuple[int, str]]  # (file offset, text) joined into the logical line
    text: str = ""

    def finish(self) -> None:
        self.text = "".join(t for _, t in self.pieces)
        starts, total = [], 0
        for _, t in self.pieces:
            starts.append(total)
            total += len(t)
        self._starts = starts

    def locate(self, i: int, j: int) -> Span | None:
        """File span of ``text[i:j]``, or None when it crosses a line continuation."""
        if j <= i or i < 0:
            return None
        index = bisect.bisect_right(self._starts, i) - 1
        while index >= 0 and not self.pieces[index][1]:
            index -= 1  # an empty piece shares its start with the next one
        if index < 0:
            return None
        offset, piece = self.pieces[index]
        start = self._starts[index]
        if i < start + len(piece) and j <= start + len(piece):
            return offset + i - start, offset + j - start
        return None


def _instructions(text: str, first_line: int, escape: str, lines: list[tuple[int, int, str]]):
    """Logical instructions, skipping comments, blank lines and heredoc bodies."""
    index = first_line
    total = len(lines)
    while index < total:
        check_time()
        number, offset, content = lines[index]
        index += 1
        stripped = content.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        lead = len(content) - len(stripped)
        instruction = _Instruction(number, [])
        piece_offset, piece = offset + lead, stripped
        while True:
            trimmed = piece.rstrip(" \t")
            if trimmed.endswith(escape) and index <= total:
                instruction.pieces.append((piece_offset, trimmed[: -len(escape)]))
                # the next non-comment, non-blank line continues this instruction
                while index < total:
                    check_time()
                    _, offset2, content2 = lines[index]
                    index += 1
                    s2 = content2.lstrip()
                    if s2.startswith("#") or not s2:
                        continue
                    piece_offset, piece = offset2, content2
                    break
                else:
                    break
                continue
            instruction.pieces.append((piece_offset, piece))
            break
        instruction.finish()
        yield instruction
        keyword = instruction.text.split(None, 1)[0].upper()
        if keyword in {"RUN", "COPY", "ADD", "ONBUILD"}:
            for match in _HEREDOC.finditer(instruction.text):
                dash, terminator = match.group(1), match.group(3)
                while index < total:
                    body = lines[index][2]
                    index += 1
                    if (body.lstrip("\t") if dash else body) == terminator:
                        break


class _Scanner:
    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.findings: list[Finding] = []
        self.global_scope: dict[str, Var] = {}
        self.stage_scope: dict[str, Var] | None = None
        self.stages: set[str] = set()
        self.stage_count = 0
        self.escape = "\\"

    def run(self) -> list[Finding]:
        lines = list(_physical_lines(self.text))
        if lines and lines[0][2].startswith("\ufeff"):
            lines[0] = (1, lines[0][1] + 1, lines[0][2][1:])
        first = 0
        for number, offset, content in lines:
            match = _DIRECTIVE.match(content)
            if not match or match.group(1).lower() not in _KNOWN_DIRECTIVES:
                break
            key, value = match.group(1).lower(), match.group(2)
            if key == "escape" and value in ("\\", "`"):
                self.escape = value
            elif key == "syntax" and value:
                start = offset + match.start(2)
                pieces = (Piece(value, (start, start + len(value))),)
                self._report(number, value, pieces, "# syntax= directive")
            first += 1
        for instruction in _instructions(self.text, first, self.escape, lines):
            try:
                self._instruction(instruction, 0)
            except Refused as exc:
                raise Refused(f"line {instruction.line}: {exc}") from None
            check_findings(len(self.findings))
        return self.findings

    def _instruction(self, ins: _Instruction, start: int) -> None:
        text = ins.text
        tokens = [(m.start(), m.group()) for m in _TOKEN.finditer(text, start)]
        if not tokens:
            return
        keyword = tokens[0][1].upper()
        if keyword == "ONBUILD" and len(tokens) > 1:
            self._instruction(ins, tokens[1][0])
        elif keyword == "ARG":
            self._arg(ins, tokens[0][0] + 3)
        elif keyword == "FROM":
            self._from(ins, tokens[1:])
        elif keyword == "COPY":
            for position, token in _flags(tokens[1:]):
                if token.lower().startswith("--from="):
                    self._from_flag(ins, position + 7, token[7:], "COPY --from")
        elif keyword == "RUN":
            for position, token in _flags(tokens[1:]):
                if not token.lower().startswith("--mount="):
                    continue
                cursor = position + 8
                for field in token[8:].split(","):
                    key, eq, value = field.partition("=")
                    if eq and key.strip().lower() == "from":
                        self._from_flag(ins, cursor + len(key) + 1, value, "RUN --mount from=")
                    cursor += len(field) + 1

    def _scope(self) -> dict[str, Var]:
        return self.global_scope if self.stage_scope is None else self.stage_scope

    def _arg(self, ins: _Instruction, position: int) -> None:
        text = ins.text
        while position < len(text):
            match = _ARG_ITEM.match(text, position)
            if not match or match.end() == position:
                break
            position = match.end()
            name = match.group(1)
            scope = self._scope()
            group = next((g for g in (2, 3, 4) if match.group(g) is not None), None)
            if group is None:
                inherited = self.global_scope.get(name) if self.stage_scope is not None else None
                scope[name] = inherited or Var(None)
                continue
            raw = match.group(group)
            raw_start = match.start(group)
            if group == 2 and "\\" in raw:
                scope[name] = literal_var(re.sub(r"\\(.)", r"\1", raw), None)
                continue
            if group == 3:  # single quotes: no expansion
                scope[name] = literal_var(raw, ins.locate(raw_start, raw_start + len(raw)))
                continue
            lookup = {**self.global_scope, **scope} if self.stage_scope is not None else scope

            def locate(i: int, j: int, base: int = raw_start) -> Span | None:
                return ins.locate(base + i, base + j)

            result = expand(raw, locate, lookup, escape=self.escape)
            scope[name] = (
                Var(result.value, result.pieces) if result.value is not None else Var(None)
            )

    def _from(self, ins: _Instruction, tokens: list[tuple[int, str]]) -> None:
        args = [t for t in tokens if not t[1].startswith("--")]
        self.stage_scope = {}
        if not args:
            return
        position, word = args[0]
        result = expand(
            word,
            lambda i, j: ins.locate(position + i, position + j),
            self.global_scope,
            escape=self.escape,
            quotes=True,
        )
        value = result.value
        if value is None or (value.lower() != "scratch" and value.lower() not in self.stages):
            line = self._line_at(ins, position)
            self._report(line, word, result.pieces, "FROM", value, result.problem)
        if len(args) >= 3 and args[1][1].lower() == "as":
            self.stages.add(args[2][1].lower())
        self.stage_count += 1

    def _from_flag(self, ins: _Instruction, position: int, word: str, where: str) -> None:
        if not word:
            return
        lookup = {**self.global_scope, **(self.stage_scope or {})}
        result = expand(
            word,
            lambda i, j: ins.locate(position + i, position + j),
            lookup,
            escape=self.escape,
            quotes=True,
        )
        value = result.value
        if value is not None and (value.lower() in self.stages or value.isdigit()):
            return
        line = self._line_at(ins, position)
        self._report(line, word, result.pieces, where, value, result.problem)

    def _line_at(self, ins: _Instruction, position: int) -> int:
        """The physical line holding ``ins.text[position]`` (continuations counted)."""
        span = ins.locate(position, position + 1)
        if span is None:
            return ins.line
        return self.text.count("\n", 0, span[0]) + 1

    def _report(
        self,
        line: int,
        written: str,
        pieces: tuple[Piece, ...],
        where: str,
        value: str | None = None,
        problem: str | None = None,
    ) -> None:
        if value is None and problem is None:
            value = written
        expression = written if value != written else None
        if value is None:
            self.findings.append(
                Finding(self.file, line, "dockerfile", written, None, where, None, problem)
            )
            return
        reference, bad = try_reference(value)
        slots: tuple[Slot, ...] = ()
        if reference is not None:
            slots, problem = slots_for(pieces, value)
        self.findings.append(
            Finding(
                self.file,
                line,
                "dockerfile",
                value,
                reference,
                where,
                expression,
                f"not a valid reference: {bad}" if bad else problem,
                slots=slots,
            )
        )


def _flags(tokens: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    for position, token in tokens:
        if not token.startswith("--"):
            return
        yield position, token


def scan_dockerfile(text: str, file: str) -> list[Finding]:
    """Every image reference in a Dockerfile's text (stage names and ``scratch`` excluded)."""
    return _Scanner(text, file).run()
