"""Help text that never splits a name: no breaks at hyphens, no cut long words.

Click wraps help with textwrap's defaults, which break ``us-docker.pkg.dev`` after
``us-`` and cut a word longer than the line.  A reader copies names out of help, so
here a line breaks only at spaces, and a word longer than the line overflows whole.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

import click


def wrap_paragraphs(text: str, width: int, indent: str = "") -> str:
    """Click's paragraph rules (blank lines split, a ``\\b`` line keeps a block as it is)."""
    paragraphs: list[tuple[str, bool, list[str]]] = []  # (indent, verbatim, lines)
    lines: list[str] = []
    extra = ""

    def flush() -> None:
        if lines:
            verbatim = lines[0] == "\b"
            paragraphs.append((extra, verbatim, lines[1:] if verbatim else list(lines)))
            lines.clear()

    for line in text.expandtabs().splitlines():
        if not line.strip():
            flush()
            continue
        if line.strip() == "\b":  # a verbatim block starts here, even without a blank line
            flush()
            lines.append("\b")
            continue
        if not lines or lines == ["\b"]:
            extra = " " * (len(line) - len(line.lstrip()))
        # verbatim lines keep their indentation relative to the block's first line
        lines.append(line[len(extra) :] if line.startswith(extra) else line.strip())
    flush()

    out = []
    for extra_indent, verbatim, body in paragraphs:
        prefix = indent + extra_indent
        if verbatim:
            out.append("\n".join(prefix + line for line in body))
            continue
        wrapper = textwrap.TextWrapper(
            width=max(width, len(prefix) + 10),
            initial_indent=prefix,
            subsequent_indent=prefix,
            break_on_hyphens=False,
            break_long_words=False,
        )
        out.append(wrapper.fill(" ".join(body)))
    return "\n\n".join(out)


class NameSafeHelpFormatter(click.HelpFormatter):
    def write_text(self, text: str) -> None:
        self.write(wrap_paragraphs(text, self.width, " " * self.current_indent) + "\n")

    def write_dl(
        self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        rows = list(rows)
        first_width = min(max((len(first) for first, _ in rows), default=0), col_max)
        column = first_width + col_spacing
        for first, second in rows:
            self.write(" " * self.current_indent + first)
            if not second:
                self.write("\n")
                continue
            if len(first) <= first_width:
                self.write(" " * (column - len(first)))
            else:
                self.write("\n" + " " * (column + self.current_indent))
            wrapped = wrap_paragraphs(second, max(self.width - column - 2, 10))
            lines = wrapped.splitlines() or [""]
            self.write(lines[0] + "\n")
            for line in lines[1:]:
                self.write(" " * (column + self.current_indent) + line + "\n")


class ArmirrorContext(click.Context):
    formatter_class = NameSafeHelpFormatter
