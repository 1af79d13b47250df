"""The Cloud Tasks adapter: one named HTTP task per copy job, aimed at ``copy_image``.

- The task's name is ``{queue}/tasks/{job.job_id}``.  Cloud Tasks refuses a second task
  of the same name (ALREADY_EXISTS) while the first is queued and for about an hour after
  it ran, so a redelivered event or a repeated request does not copy twice:
  :meth:`CloudTasksQueue.enqueue` returns False then.
- The task POSTs ``job.body()`` (JSON) to the copy URL.  With a service account it carries
  an OIDC token for that account whose audience is the copy URL (or ``audience``), which
  is what a private Cloud Run service / 2nd gen function checks.
- ``dispatch_deadline`` (whole seconds) defaults to 1800, Cloud Tasks' maximum for HTTP
  targets and the Terraform module's default copy_image timeout: one task copies one
  whole image, and a large image from a slow registry can take many minutes.  A shorter
  deadline would make Cloud Tasks give up on (and retry) a copy still making progress.
- Errors: faults a retry can fix raise :class:`~armirror.queue.QueueUnavailable` (so the
  Pub/Sub trigger redelivers); faults of configuration (no such queue, no permission, a
  bad request, no credentials) raise :class:`QueueMisconfigured`, whose message says what
  to fix.

- ``emulator_host`` (``ARMIRROR_TASKS_EMULATOR_HOST=127.0.0.1:PORT``, as the BigQuery
  store has ``BIGQUERY_EMULATOR_HOST``) sends everything to a Cloud Tasks emulator over
  plain gRPC without credentials, so the deployed configuration runs against the local
  stand-ins unchanged.

This module is the only one that imports the Cloud Tasks SDK.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.auth import exceptions as auth_exc
from google.cloud import tasks_v2
from google.protobuf import duration_pb2

from armirror.queue import CopyJob, QueueUnavailable

log = logging.getLogger(__name__)

SCHEME = "cloudtasks://"
#: Cloud Tasks' bounds for an HTTP target's dispatch deadline, in seconds.
MIN_DISPATCH_DEADLINE = 15
MAX_DISPATCH_DEADLINE = 1800
DEFAULT_DISPATCH_DEADLINE = MAX_DISPATCH_DEADLINE
#: How long one enqueue may take, retries of UNAVAILABLE included.
DEFAULT_TIMEOUT = 10.0

# Project IDs: lower-case letters, digits, hyphens; legacy domain-scoped ones
# ("example.com:proj") have dots and a colon.  Locations: "europe-west1" and the like.
# Queue IDs: letters, digits and hyphens, at most 100 characters.
_PROJECT = re.compile(r"^(?:[a-z0-9][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_LOCATION = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
_QUEUE = re.compile(r"^[A-Za-z0-9-]{1,100}$")

#: gRPC failures a later attempt can get past.
_TRANSIENT: tuple[type[BaseException], ...] = (
    gexc.ServiceUnavailable,  # UNAVAILABLE
    gexc.DeadlineExceeded,  # DEADLINE_EXCEEDED
    gexc.InternalServerError,  # INTERNAL
    gexc.TooManyRequests,  # RESOURCE_EXHAUSTED (ResourceExhausted is a subclass)
    gexc.Aborted,  # ABORTED
    gexc.Cancelled,  # CANCELLED
    gexc.Unknown,  # UNKNOWN: a server-side failure with no better status
    gexc.RetryError,  # our own retry of UNAVAILABLE ran out of time
    auth_exc.TransportError,  # could not reach the token endpoint
)


class QueueMisconfigured(Exception):
    """A Cloud Tasks fault no retry will fix: the queue, its permissions or the request."""


@dataclass(frozen=True)
class QueuePath:
    """``projects/P/locations/L/queues/Q``, parsed from ``cloudtasks://projects/…``."""

    project: str
    location: str
    queue: str

    @property
    def parent(self) -> str:
        """The location the queue lives in (what CreateQueue takes)."""
        return f"projects/{self.project}/locations/{self.location}"

    def __str__(self) -> str:
        return f"{self.parent}/queues/{self.queue}"


def parse_queue_url(url: str) -> QueuePath:
    """Parse ``cloudtasks://projects/P/locations/L/queues/Q``; ValueError names the bad part."""
    if not isinstance(url, str) or not url.startswith(SCHEME):
        raise ValueError(
            f"Cloud Tasks queue URL must start with {SCHEME!r} "
            f"(cloudtasks://projects/P/locations/L/queues/Q), got {url!r}"
        )
    parts = url[len(SCHEME) :].rstrip("/").split("/")
    expected = ("projects", "locations", "queues")
    if len(parts) != 6 or tuple(parts[0::2]) != expected:
        raise ValueError(
            f"Cloud Tasks queue URL must be cloudtasks://projects/P/locations/L/queues/Q, "
            f"got {url!r}"
        )
    project, location, queue = parts[1::2]
    if not _PROJECT.match(project):
        raise ValueError(
            f"Cloud Tasks queue URL {url!r}: project {project!r} is not a project ID "
            "(6-30 lower-case letters, digits or hyphens, starting with a letter)"
        )
    if not _LOCATION.match(location):
        raise ValueError(
            f"Cloud Tasks queue URL {url!r}: location {location!r} is not a location "
            "such as europe-west1"
        )
    if not _QUEUE.match(queue):
        raise ValueError(
            f"Cloud Tasks queue URL {url!r}: queue {queue!r} is not a queue ID "
            "(1-100 letters, digits or hyphens)"
        )
    return QueuePath(project, location, queue)


def _check_target(url: str) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"copy URL must be an http(s) URL with a host, got {url!r}")
    if len(url) > 2083:
        raise ValueError("copy URL is longer than Cloud Tasks allows (2083 characters)")
    return url


def build_task(
    job: CopyJob,
    *,
    queue_path: str,
    url: str,
    service_account: str | None = None,
    audience: str | None = None,
    dispatch_deadline: int = DEFAULT_DISPATCH_DEADLINE,
) -> tasks_v2.Task:
    """The task for ``job``: named for deduplication, POSTing its JSON body to ``url``."""
    if (
        isinstance(dispatch_deadline, bool)
        or not isinstance(dispatch_deadline, int)
        or not MIN_DISPATCH_DEADLINE <= dispatch_deadline <= MAX_DISPATCH_DEADLINE
    ):
        raise ValueError(
            f"dispatch deadline must be whole seconds within {MIN_DISPATCH_DEADLINE}-"
            f"{MAX_DISPATCH_DEADLINE}, got {dispatch_deadline!r}"
        )
    request = tasks_v2.HttpRequest(
        http_method=tasks_v2.HttpMethod.POST,
        url=url,
        headers={"Content-Type": "application/json"},
        body=job.body(),
    )
    if service_account:
        request.oidc_token = tasks_v2.OidcToken(
            service_account_email=service_account, audience=audience or url
        )
    return tasks_v2.Task(
        name=f"{queue_path}/tasks/{job.job_id}",
        http_request=request,
        dispatch_deadline=duration_pb2.Duration(seconds=dispatch_deadline),
    )


class CloudTasksQueue:
    """A :class:`~armirror.queue.CopyQueue` over a Cloud Tasks queue.

    ``queue_url`` is ``cloudtasks://projects/P/locations/L/queues/Q``; ``url`` is
    copy_image's URL; ``service_account`` (optional) is the account whose OIDC token each
    task carries, with ``audience`` defaulting to ``url``.  ``client`` is an injected
    ``tasks_v2.CloudTasksClient`` (the tests point one at the emulator); without it a
    client with Application Default Credentials is made on first use and closed by
    :meth:`close`.  ``timeout`` bounds one :meth:`enqueue`, retries of UNAVAILABLE
    included.
    """

    def __init__(
        self,
        queue_url: str,
        url: str,
        *,
        service_account: str | None = None,
        audience: str | None = None,
        dispatch_deadline: int = DEFAULT_DISPATCH_DEADLINE,
        client: Any | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        emulator_host: str | None = None,
    ) -> None:
        self.queue = parse_queue_url(queue_url)
        if emulator_host is not None and not re.fullmatch(r"[\w.\[\]:-]+:\d{1,5}", emulator_host):
            raise ValueError(f"Cloud Tasks emulator must be HOST:PORT, got {emulator_host!r}")
        self.emulator_host = emulator_host
        self.queue_path = str(self.queue)
        self.url = _check_target(url)
        if service_account is not None and "@" not in service_account:
            raise ValueError(
                f"OIDC service account must be an email address, got {service_account!r}"
            )
        self.service_account = service_account or None
        self.audience = audience
        # Validate the deadline now rather than on the first job.
        build_task(
            CopyJob("validate", "validate"),
            queue_path=self.queue_path,
            url=self.url,
            dispatch_deadline=dispatch_deadline,
        )
        self.dispatch_deadline = dispatch_deadline
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.timeout = timeout
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()

    def build_task(self, job: CopyJob) -> tasks_v2.Task:
        return build_task(
            job,
            queue_path=self.queue_path,
            url=self.url,
            service_account=self.service_account,
            audience=self.audience,
            dispatch_deadline=self.dispatch_deadline,
        )

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None and self.emulator_host:
                import grpc
                from google.cloud.tasks_v2.services.cloud_tasks.transports import (
                    CloudTasksGrpcTransport,
                )

                channel = grpc.insecure_channel(self.emulator_host)
                self._client = tasks_v2.CloudTasksClient(
                    transport=CloudTasksGrpcTransport(channel=channel)
                )
            if self._client is None:
                try:
                    self._client = tasks_v2.CloudTasksClient()
                except auth_exc.DefaultCredentialsError as exc:
                    raise QueueMisconfigured(
                        f"Cloud Tasks queue {self.queue_path}: no credentials: {exc}"
                    ) from exc
            return self._client

    def enqueue(self, job: CopyJob) -> bool:
        """Create the job's task; False when a task of that name exists or recently ran.

        False may also follow our own earlier attempt whose answer was lost (UNAVAILABLE,
        retried): either way the job is queued once.
        """
        task = self.build_task(job)
        client = self._get_client()
        retry = gretry.Retry(
            predicate=gretry.if_exception_type(gexc.ServiceUnavailable),
            initial=0.1,
            maximum=1.0,
            multiplier=2.0,
            timeout=self.timeout,
        )
        try:
            client.create_task(parent=self.queue_path, task=task, retry=retry, timeout=self.timeout)
        except gexc.AlreadyExists:
            log.info("task %s already exists (duplicate of a queued or recent job)", job.job_id)
            return False
        except _TRANSIENT as exc:
            raise QueueUnavailable(
                f"Cloud Tasks queue {self.queue_path} unavailable: {_describe(exc)}"
            ) from exc
        except gexc.GoogleAPICallError as exc:
            raise QueueMisconfigured(self._explain(exc)) from exc
        except auth_exc.GoogleAuthError as exc:
            raise QueueMisconfigured(
                f"Cloud Tasks queue {self.queue_path}: credentials refused: {exc}"
            ) from exc
        log.info("queued task %s: %s -> %s", job.job_id, job.source, job.destination)
        return True

    def _explain(self, exc: gexc.GoogleAPICallError) -> str:
        where = f"Cloud Tasks queue {self.queue_path}"
        if isinstance(exc, gexc.NotFound):
            hint = "the queue does not exist (check ARMIRROR_QUEUE and the Terraform)"
        elif isinstance(exc, gexc.PermissionDenied | gexc.Unauthenticated):
            hint = "permission denied: the caller needs roles/cloudtasks.enqueuer on the queue" + (
                f" and roles/iam.serviceAccountUser on {self.service_account}"
                if self.service_account
                else ""
            )
        elif isinstance(exc, gexc.FailedPrecondition):
            hint = "the queue cannot take tasks (disabled or being deleted?)"
        elif isinstance(exc, gexc.InvalidArgument):
            hint = "the task was refused as invalid"
        else:
            hint = "request refused"
        return f"{where}: {hint}: {_describe(exc)}"

    def close(self) -> None:
        """Close the client if this queue made it; an injected client is the caller's."""
        if not self._owns_client:
            return
        with self._lock:
            client, self._client = self._client, None
        transport = getattr(client, "transport", None)
        if transport is not None:
            transport.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, gexc.RetryError) and exc.cause is not None:
        return _describe(exc.cause)
    if isinstance(exc, gexc.GoogleAPICallError):
        code = exc.grpc_status_code.name if exc.grpc_status_code is not None else exc.code
        return f"{code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"
