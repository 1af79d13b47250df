"""The ``armirror`` command: the group, the options several commands share, and ``main``.

Each command lives in its own module (``armirror.cli.copy`` and so on): it parses its
options, calls one library function, renders the result with ``armirror.cli.output`` and
exits.  Command modules are imported only when their command runs (or its help is
shown), so ``armirror scan`` never pays for the registry client or the BigQuery library.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NoReturn

import click

from armirror import __version__
from armirror.cli.helpformat import ArmirrorContext
from armirror.config import ConfigError, parse_upstreams

if TYPE_CHECKING:
    from armirror.reference import Reference
    from armirror.registry import RegistryClient

#: Command name -> "module:attribute", in the order a migration runs them.
COMMANDS: dict[str, str] = {
    "scan": "armirror.cli.scan:scan",
    "pulls": "armirror.cli.pulls:pulls",
    "copy": "armirror.cli.copy:copy",
    "rewrite": "armirror.cli.rewrite:rewrite",
    "verify": "armirror.cli.verify:verify",
    "redeploy": "armirror.cli.redeploy:redeploy",
    "report": "armirror.cli.report:report",
    "serve": "armirror.cli.serve:serve",
    "completion": "armirror.cli.completion:completion",
}


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    from armirror.cli import output

    if not value:
        return
    level = output.QUIET if param.name == "quiet" else output.VERBOSE
    other = ctx.meta.get("armirror.verbosity")
    if other is not None and other != level:
        raise click.UsageError("-q/--quiet and -v/--verbose contradict each other")
    ctx.meta["armirror.verbosity"] = level
    output.set_verbosity(level)


def verbosity_options() -> list[click.Option]:
    """-q/-v, which the group adds to every command (as cobra's persistent flags)."""
    return [
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            callback=_set_verbosity,
            help="Only errors on stderr: no progress, summaries or hints.",
        ),
        click.Option(
            ["-v", "--verbose"],
            is_flag=True,
            expose_value=False,
            callback=_set_verbosity,
            help="Also log each retry, skipped step and request failure on stderr.",
        ),
    ]


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is needed.

    It also owns what every command shares at the edges: -q/-v on each command, one
    line on stderr for every error (no traceback), and the exit statuses: 2 for bad
    input, 1 for a failure, 130 for Ctrl-C.
    """

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
        else:
            command = super().get_command(ctx, cmd_name)
        if command is not None and not any(p.name == "quiet" for p in command.params):
            command.params.extend(verbosity_options())
            command.context_class = ArmirrorContext
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted from None

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        from armirror.cli import output

        output.set_verbosity(output.NORMAL)
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            output.error(_click_message(exc))
            sys.exit(exc.exit_code)
        except (Interrupted, click.Abort, KeyboardInterrupt):
            _exit_interrupted()
        except BrokenPipeError:  # `armirror pulls | head`: the reader has what it wanted
            sys.stderr.close()
            sys.exit(output.EXIT_FAILURE)
        except Exception as exc:
            if output.show_traceback():
                raise
            output.error(
                f"unexpected {type(exc).__name__}: {exc} "
                "(a bug: ARMIRROR_TRACEBACK=1 shows where it happened)"
            )
            sys.exit(output.EXIT_FAILURE)
        sys.exit(code if isinstance(code, int) else output.EXIT_OK)


def _exit_interrupted() -> NoReturn:
    """Exit 130 after Ctrl-C, without waiting for threads stuck on a registry.

    A blob transfer thread may sit in a blocking socket read on a registry that stopped
    answering, for up to the client's 60 s timeout, and the interpreter joins such
    threads before it exits.  Everything kept was recorded as the command unwound (each
    finished copy when it finished), so once the output is flushed there is nothing
    left to wait for.
    """
    from armirror.cli import output

    output.error(output.INTERRUPTED)
    stuck = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if not stuck:
        sys.exit(output.EXIT_INTERRUPTED)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(output.EXIT_INTERRUPTED)


class Interrupted(Exception):
    """Ctrl-C inside a command, carried past click's own "Aborted!" handling."""


def _click_message(exc: click.ClickException) -> str:
    message = exc.format_message()
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        message += f" (see '{exc.ctx.command_path} --help')"
    return message


LazyGroup.context_class = ArmirrorContext


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
      armirror redeploy --cluster --to PREFIX --dry-run   move what runs
      armirror report --html report.html    show that new pulls come from the mirror
    """


# -- options several commands share -----------------------------------------------------

FORMAT_TABLE_JSON = click.Choice(["table", "json"])

#: --format table|json, for the commands that print a table or JSON.
format_option = click.option(
    "--format", "output_format", type=FORMAT_TABLE_JSON, default="table", show_default=True
)

#: -f FILE, the images read by :func:`read_image_list`.
image_file_option = click.option(
    "-f", "--file", "image_file", metavar="FILE", help="Read images, one a line ('-' for stdin)."
)


def destination_option[F: Callable[..., Any]](
    help: str, *, required: bool = True
) -> Callable[[F], F]:
    """--to PREFIX (env ARMIRROR_DESTINATION): the mirror's prefix, which every command
    maps with reference.destination_for; ``help`` says what it is to this command."""
    return click.option(
        "--to",
        "prefix",
        envvar="ARMIRROR_DESTINATION",
        required=required,
        metavar="PREFIX",
        help=help,
    )


def check_prefix(prefix: str) -> None:
    """A malformed --to is bad input (exit 2), before anything is asked of a registry."""
    from armirror.reference import InvalidReference, parse_prefix

    try:
        parse_prefix(prefix)
    except InvalidReference as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from None


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
        metavar="REGISTRY=URL[,URL...]",
        help="Send requests for REGISTRY to these endpoints, tried in order (the next only "
        "when one does not have the image), while references keep their name, e.g. "
        "docker.io=https://mirror.gcr.io,https://registry-1.docker.io (repeatable; env "
        "ARMIRROR_UPSTREAMS, with ';' between registries).",
    )(command)


def make_registry_client(
    upstreams: tuple[str, ...],
    insecure: tuple[str, ...],
    jobs: int = 8,
    *,
    named: Iterable[Reference] = (),
) -> RegistryClient:
    """A RegistryClient from the shared options plus ARMIRROR_UPSTREAMS.

    The registries of the ``named`` references (what the operator asked for: sources
    and destinations) are trusted like the upstream endpoints, loopback ones included;
    a redirect or token realm elsewhere is judged by the host guard, which allows
    loopback and private networks only with ARMIRROR_ALLOW_PRIVATE_HOSTS (issue 12 §1).
    """
    from armirror.config import Settings, load
    from armirror.registry.factory import client_from_settings

    try:
        mapping = parse_upstreams([os.environ.get("ARMIRROR_UPSTREAMS", "")], "ARMIRROR_UPSTREAMS")
        mapping.update(parse_upstreams(list(upstreams), "--upstream"))
        allow_private = load().allow_private_hosts
        settings = Settings(upstreams=mapping, allow_private_hosts=allow_private)
        registries = sorted({reference.registry for reference in named})
        # The proxy variables (HTTPS_PROXY, NO_PROXY, ...) are read here too.
        return client_from_settings(settings, insecure=insecure, jobs=jobs, trusted=registries)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def read_image_list(images: Iterable[str], image_file: str | None) -> list[str]:
    """Images from arguments plus ``-f FILE`` (``-`` is stdin), skipping blanks and comments.

    A file that cannot be read, or is not text, is bad input (exit 2).
    """
    names = list(images)
    if not image_file:
        return names
    try:
        stream = sys.stdin if image_file == "-" else open(image_file, encoding="utf-8")  # noqa: SIM115
        with stream:
            for line in stream:
                line = line.split("#", 1)[0].strip()
                if line:
                    names.append(line)
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {image_file}: {exc.strerror or exc}", param_hint="-f/--file"
        ) from None
    except UnicodeDecodeError:
        raise click.BadParameter(
            f"{image_file} is not a text file of image names", param_hint="-f/--file"
        ) from None
    return names


def main() -> None:
    cli()
