"""The ``.env`` file beside a compose file: the values of its ``${VAR}`` s.

Compose reads ``.env`` in the project directory and interpolates its variables into the
compose file, so ``image: ${GRAFANA_IMAGE}`` pulls what ``.env`` says.  An image that
is written whole in ``.env`` is reported there, at its line, so a rewrite edits ``.env``.

The syntax read is compose's: ``KEY=VALUE`` lines, an optional ``export``, ``#``
comments, single-quoted values (literal), double-quoted values (a value with escapes
is kept but never offered for rewriting), and unquoted values whose `` #`` starts a
comment.  Each value keeps the span of the text that holds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .expand import Span

#: A .env larger than this is not read (real ones are a few KB).
MAX_DOTENV_BYTES = 1024 * 1024

_LINE = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[ \t]*(.*)")


@dataclass(frozen=True, slots=True)
class EnvValue:
    value: str
    span: Span | None  # where the value is written, when the text there is the value
    line: int


@dataclass(frozen=True, slots=True)
class DotEnv:
    """A parsed .env: its path as reported, its text, and its values by name."""

    rel: str
    text: str
    values: dict[str, EnvValue]


def parse_dotenv(text: str) -> dict[str, EnvValue]:
    """Variables of a .env text; later definitions win, as in compose."""
    values: dict[str, EnvValue] = {}
    offset = 0
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        content = line.rstrip("\r\n")
        match = _LINE.match(content)
        if match and not content.lstrip().startswith("#"):
            raw, start = match.group(2), offset + match.start(2)
            values[match.group(1)] = _value(raw, start, number)
        offset += len(line)
    return values


def _value(raw: str, start: int, line: int) -> EnvValue:
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = raw.find(quote, 1)
        if end == -1:
            return EnvValue(raw, None, line)
        inner = raw[1:end]
        if quote == '"' and "\\" in inner:
            return EnvValue(inner.encode().decode("unicode_escape", "replace"), None, line)
        return EnvValue(inner, (start + 1, start + 1 + len(inner)), line)
    comment = re.search(r"[ \t]#", raw)
    value = (raw[: comment.start()] if comment else raw).rstrip(" \t")
    return EnvValue(value, (start, start + len(value)), line)


def load_dotenv(directory: Path, rel_dir: str) -> DotEnv | None:
    """The .env of ``directory`` (a regular file, not a link), or None."""
    path = directory / ".env"
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_DOTENV_BYTES:
            return None
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return DotEnv(f"{rel_dir}.env", text, parse_dotenv(text))
