"""The ``armirror`` command: the group, the options several commands share, and ``main``.

Each command lives in its own module (``armirror.cli.copy`` and so on): it parses its
options, calls one library function, renders the result with ``armirror.cli.output`` and
exits.  Command modules are imported only when their command runs (or its help is
shown), so ``armirror scan`` never pays for the registry client or the BigQuery library.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import click

from armirror import __version__
from armirror.config import ConfigError, parse_upstreams

if TYPE_CHECKING:
    from armirror.registry import RegistryClient

#: Command name -> "module:attribute", in the order a migration runs them.
COMMANDS: dict[str, str] = {
    "scan": "armirror.cli.scan:scan",
    "pulls": "armirror.cli.pulls:pulls",
    "copy": "armirror.cli.copy:copy",
    "rewrite": "armirror.cli.rewrite:rewrite",
    "verify": "armirror.cli.verify:verify",
    "report": "armirror.cli.report:report",
    "serve": "armirror.cli.serve:serve",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is needed."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            module_name, attribute = self.lazy_commands[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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


# -- options several commands share -----------------------------------------------------

FORMAT_TABLE_JSON = click.Choice(["table", "json"])


def registry_options[F: Callable[..., Any]](command: F) -> F:
    """The options every command that talks to registries shares."""
    command = click.option(
        "--insecure-registry",
        "insecure",
        multiple=True,
        metavar="HOST",
        help="Speak plain HTTP to HOST (loopback registries always use plain HTTP).",
    )(command)
    return click.option(
        "--upstream",
        "upstreams",
        multiple=True,
        metavar="REGISTRY=URL",
        help="Send requests for REGISTRY to URL while references keep their name, "
        "e.g. docker.io=https://mirror.gcr.io (repeatable; env ARMIRROR_UPSTREAMS).",
    )(command)


def make_registry_client(
    upstreams: tuple[str, ...], insecure: tuple[str, ...], jobs: int = 8
) -> RegistryClient:
    """A RegistryClient from the shared options plus ARMIRROR_UPSTREAMS."""
    from armirror.registry import RegistryClient

    env_items = [i for i in os.environ.get("ARMIRROR_UPSTREAMS", "").split(",") if i.strip()]
    try:
        mapping = parse_upstreams(env_items, "ARMIRROR_UPSTREAMS")
        mapping.update(parse_upstreams(list(upstreams), "--upstream"))
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    return RegistryClient(
        upstreams=mapping, insecure=set(insecure), max_connections=jobs, blob_threads=jobs
    )


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


class When(click.ParamType):
    """YYYY-MM-DD, an ISO 8601 time (UTC unless it says), or an age: 7d, 12h, 30m."""

    name = "DATE"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        from datetime import UTC, datetime, timedelta

        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        units = {"d": "days", "h": "hours", "m": "minutes"}
        if text[:-1].isdigit() and text[-1:] in units:
            return datetime.now(UTC) - timedelta(**{units[text[-1]]: int(text[:-1])})
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r}: expected YYYY-MM-DD, an ISO time, or an age like 7d", param, ctx)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def main() -> None:
    cli()
