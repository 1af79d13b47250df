"""The ``armirror`` command: parse options, call one function, format its output.

Every subcommand that reports results takes ``--format`` (``table`` for people, ``json``
for scripts); logic lives in the modules the subcommands call, never here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

import click

from armirror import __version__

FORMAT_TABLE_JSON = click.Choice(["table", "json"])


def emit_json(value: Any) -> None:
    """Print a JSON document for scripts (dates and paths become strings)."""
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def read_image_list(images: Iterable[str], image_file: str | None) -> list[str]:
    """Images from arguments plus ``-f FILE`` (``-`` is stdin), skipping blanks and comments."""
    names = list(images)
    if image_file:
        stream = sys.stdin if image_file == "-" else open(image_file, encoding="utf-8")  # noqa: SIM115
        with stream:
            for line in stream:
                line = line.split("#", 1)[0].strip()
                if line:
                    names.append(line)
    return names


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="armirror")
def cli() -> None:
    """Move container images off third-party registries onto Artifact Registry.

    \b
    The usual order:
      armirror scan .                       find third-party image references
      armirror pulls logs.json              rank them by pulls and rate-limit failures
      armirror copy -f images.txt --to PREFIX
      armirror rewrite . --to PREFIX        point files at the mirror
      armirror verify . --to PREFIX         prove it is complete and readable
      armirror report --html report.html    show that new pulls come from the mirror
    """


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
