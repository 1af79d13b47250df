"""``armirror serve``: the four Cloud Functions in one local process."""

from __future__ import annotations

import click

from armirror.cli import output
from armirror.config import ConfigError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
def serve(host: str, port: int) -> None:
    """Serve on_pull_event, copy_image, request_copy and refresh at POST /<name>.

    \b
    Configuration comes from the ARMIRROR_* environment, as in the cloud; by default
    the embedded store (DuckDB) and the in-process queue. ARMIRROR_DESTINATION is
    required. One log line per request and per copy; -v adds each retry and each
    registry request (URLs without their query).
    """
    import logging
    import signal

    from armirror import runtime
    from armirror.cli import output
    from armirror.config import load
    from armirror.registry.proxies import ProxyRoutes
    from armirror.registry.redact import configure_request_logs
    from armirror.server import serve as run_server

    _check_address(host, port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # One line per request (werkzeug) and one per copy; -v adds retries and the
    # registry requests, their URLs without the query (issue 12 §2).
    configure_request_logs(verbose=output.verbosity >= output.VERBOSE)
    armirror_log = logging.getLogger("armirror")
    for handler in [h for h in armirror_log.handlers if getattr(h, "armirror_cli", False)]:
        armirror_log.removeHandler(handler)  # -v's own handler: the root one logs already
    try:
        settings = load()
        if not settings.destination:
            raise ConfigError("ARMIRROR_DESTINATION: set it to the destination prefix")
        ProxyRoutes.from_environment()  # a proxy variable armirror cannot use is bad input
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    from armirror.store import StoreError

    try:
        runtime.install(runtime.build_pipeline(settings))
    except (ValueError, OSError, StoreError) as exc:
        output.failure(f"cannot start: {exc}")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        run_server(host, port)
    except OSError as exc:  # the address is taken, or not this machine's
        output.failure(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def _check_address(host: str, port: int) -> None:
    """A taken port stops here with one line (werkzeug would print its own paragraph)."""
    import socket

    if port == 0:
        return
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        output.failure(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def _raise_interrupt(signum: int, frame: object) -> None:
    """SIGTERM stops `serve` the way Ctrl-C does, so the queue is closed cleanly."""
    raise KeyboardInterrupt
