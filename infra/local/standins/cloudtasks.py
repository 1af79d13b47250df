"""The Cloud Tasks stand-in: PyPI's gcloud-tasks-emulator, bound to 127.0.0.1.

Two halves in one file:

- :func:`start_cloud_tasks_emulator` (run from the project's virtualenv, by tests, the
  demo and bench) installs the emulator's own virtualenv if needed (via
  infra/local/cloudtasks-emulator.sh) and starts it on a 127.0.0.1 port;
- run as a script with the emulator virtualenv's Python (``cloudtasks-emulator.sh serve``
  does that), it is the launcher: the emulator's ``start`` command binds ``[::]`` whatever
  host it is given, so the launcher starts the emulator's server itself, bound to
  127.0.0.1.

The emulator keeps queues in memory only: a queue must be created (CreateQueue, or
``queues=`` here) before tasks are added to it.  It POSTs each HTTP task to its URL with
the X-CloudTasks-* headers and retries every ~0.1 s until the target answers 2xx (or
``max_retries``).  It ignores OIDC tokens, retry_config and dispatch deadlines.

The emulator itself accepts any number of tasks of one name; Cloud Tasks refuses a
named task with ALREADY_EXISTS while one of that name is queued and for about an hour
after it ran, and armirror's queue relies on that to copy an image once however often it
is asked.  So the launcher adds that rule (``dedup_window`` seconds, 3600 by default,
counted from the last creation or dispatch of the name; 0 turns it off).

Only the standard library is imported at module level, so both virtualenvs can load it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "infra" / "local" / "cloudtasks-emulator.sh"
HOST = "127.0.0.1"


@dataclass
class CloudTasksEmulator:
    """A running emulator: where it listens and how to stop it."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    host: str = HOST

    @property
    def endpoint(self) -> str:
        """``host:port``, the gRPC target for ``client_options.api_endpoint``."""
        return f"{self.host}:{self.port}"

    def client(self) -> Any:
        """A ``tasks_v2.CloudTasksClient`` talking plain gRPC to this emulator."""
        import grpc
        from google.cloud import tasks_v2
        from google.cloud.tasks_v2.services.cloud_tasks.transports import (
            CloudTasksGrpcTransport,
        )

        channel = grpc.insecure_channel(self.endpoint)
        return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        from standins.processes import stop_process  # the launcher runs without it

        stop_process(self.process, timeout=10)

    def __enter__(self) -> CloudTasksEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def install_cloud_tasks_emulator(timeout: float = 600) -> None:
    """Install the emulator's virtualenv if missing (fast when present)."""
    subprocess.run(["bash", str(SCRIPT), "install"], check=True, timeout=timeout)


def start_cloud_tasks_emulator(
    port: int | None = None,
    *,
    queues: Sequence[str] = (),
    max_retries: int = -1,
    dedup_window: float = 3600,
    log_path: Path | None = None,
    startup_timeout: float = 30,
    install_timeout: float = 600,
) -> CloudTasksEmulator:
    """Start the emulator on 127.0.0.1 (``port``, or a free one) and wait until it serves.

    ``queues`` are full queue names (``projects/P/locations/L/queues/Q``) created at start;
    ``max_retries`` bounds redelivery of failed tasks (-1: forever, as the emulator does);
    ``dedup_window``: how long a task name stays taken (0: never, as the emulator alone).
    """
    install_cloud_tasks_emulator(install_timeout)
    # Port 0 unless asked: the kernel picks and the launcher writes the port it got into
    # the ready file.  (gRPC binds with SO_REUSEPORT, so a port picked beforehand could be
    # shared silently with another emulator instead of failing.)
    log_file = log_path or Path(tempfile.mkdtemp(prefix="cloudtasks-emulator-")) / "log"
    ready = log_file.with_name(log_file.name + ".ready")
    ready.unlink(missing_ok=True)
    args = ["bash", str(SCRIPT), "serve", str(port or 0), "--ready-file", str(ready)]
    args += ["--max-retries", str(max_retries), "--dedup-window", str(dedup_window)]
    for queue in queues:
        args += ["--queue", queue]
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    emulator = CloudTasksEmulator(port=port or 0, process=process, log_path=log_file)
    deadline = time.monotonic() + startup_timeout
    while process.poll() is None and not ready.exists():
        if time.monotonic() > deadline:
            emulator.stop()
            raise RuntimeError(
                f"Cloud Tasks emulator did not start within {startup_timeout:g} s:\n"
                f"{emulator.log()[-2000:]}"
            )
        time.sleep(0.05)
    if process.poll() is not None:
        raise RuntimeError(f"Cloud Tasks emulator exited:\n{emulator.log()[-2000:]}")
    emulator.port = int(ready.read_text().strip().rsplit(":", 1)[1])
    return emulator


# -- the launcher, run with the emulator virtualenv's Python ---------------------------------


def _serve(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="gcloud-tasks-emulator bound to one host")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--queue", action="append", default=[], help="queue to create")
    parser.add_argument("--max-retries", type=int, default=-1)
    parser.add_argument("--dedup-window", type=float, default=3600.0)
    parser.add_argument("--ready-file", help="written once the API is served")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    # This file's folder holds other stand-ins; keep them off the emulator's import path.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]

    import logging
    from concurrent import futures

    import grpc
    from gcloud_tasks_emulator import server as emulator_server
    from gcloud_tasks_emulator.cloudtasks_pb2_grpc import add_CloudTasksServicer_to_server

    logging.basicConfig(
        level=logging.ERROR if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    bind = f"{args.host}:{args.port}"

    def run(self: Any) -> None:
        # The emulator's APIThread.run, with the address it hard-codes as [::] replaced.
        self._httpd = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        add_CloudTasksServicer_to_server(emulator_server.Greeter(self._state), self._httpd)
        try:
            bound = self._httpd.add_insecure_port(bind)
        except RuntimeError as exc:
            print(f"cloudtasks-emulator: cannot bind {bind}: {exc}", file=sys.stderr, flush=True)
            os._exit(3)
        if not bound:
            print(f"cloudtasks-emulator: cannot bind {bind}", file=sys.stderr, flush=True)
            os._exit(3)
        self._httpd.start()
        where = f"{args.host}:{bound}"
        print(f"cloudtasks-emulator: serving on {where}", file=sys.stderr, flush=True)
        if args.ready_file:
            # Written whole, then renamed: the starter reads it as soon as it exists.
            partial = Path(args.ready_file + ".partial")
            partial.write_text(where + "\n")
            partial.replace(args.ready_file)

    emulator_server.APIThread.run = run
    if args.dedup_window > 0:
        _deduplicate_task_names(emulator_server.QueueState, args.dedup_window)
    server = emulator_server.create_server(
        args.host, args.port, "localhost", 80, set(args.queue), args.max_retries
    )
    server.run()
    return 0


def _deduplicate_task_names(state_class: Any, window: float) -> None:
    """Refuse a task name that is queued, or was created or dispatched less than
    ``window`` seconds ago, with ALREADY_EXISTS, as Cloud Tasks does."""
    import threading

    from google.api_core.exceptions import AlreadyExists

    create_task, submit_task = state_class.create_task, state_class.submit_task
    lock = threading.Lock()
    last_seen: dict[str, float] = {}

    def create(self: Any, queue: str, task: Any) -> Any:
        if task.name:
            with lock:
                now = time.monotonic()
                queued = any(t.name == task.name for t in self._queue_tasks.get(queue, ()))
                if queued or now - last_seen.get(task.name, -window) < window:
                    raise AlreadyExists(f"Requested entity already exists: {task.name}")
                last_seen[task.name] = now
        return create_task(self, queue, task)

    def submit(self: Any, task_name: str, force_run: bool = False) -> Any:
        task = submit_task(self, task_name, force_run)
        with lock:
            last_seen[task.name] = time.monotonic()
        return task

    state_class.create_task = create
    state_class.submit_task = submit


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1:]))
