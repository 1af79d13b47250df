"""The serverless pipeline: what each Cloud Function does, independent of how it is hosted.

- :meth:`Pipeline.on_pull_event`: a log entry from the organisation sink (via Pub/Sub)
  is recorded in the pull store, and each third-party image the mirror policy accepts
  gets one copy job.
- :meth:`Pipeline.copy_image`: the queue's target; copies one image and records it.
- :meth:`Pipeline.request_copy`: people and scripts ask for images to be mirrored.
- :meth:`Pipeline.refresh`: the scheduler's call; re-copies mirrors whose upstream tag moved.

:mod:`armirror.runtime` builds a Pipeline from the environment and adapts framework
requests (Flask requests, CloudEvents) to it; this module knows nothing of either.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from armirror import events as events_module
from armirror.config import Settings
from armirror.guard import host_problem, no_resolver
from armirror.http_input import MAX_REQUEST_BYTES, BadJson, parse_json
from armirror.queue import CopyJob, CopyQueue
from armirror.reference import InvalidReference, Reference, destination_for, matches, parse
from armirror.refresh import RATELIMIT_FLOOR, RefreshReport, find_moved
from armirror.registry import Copier, CopyResult, RegistryClient, RegistryError
from armirror.registry.factory import client_from_settings
from armirror.registry.proxies import ProxyRoutes
from armirror.registry.resumable import Deadline
from armirror.registry.retry import Backoffs
from armirror.store import PullStore
from armirror.store.queries import DEMAND_REASONS as COUNTED_REASONS

log = logging.getLogger("armirror.pipeline")

MAX_REQUEST_IMAGES = 100
#: Reasons that show a node wanted the image from its registry.
DEMAND_REASONS = frozenset({"pulling", "pulled", "failed", "rate_limited", "backoff", "deployed"})
#: How long a destination HEAD is trusted when deciding "already mirrored".
MIRRORED_CACHE_SECONDS = 300.0
#: refresh stops before a registry's remaining allowance falls below this.
REFRESH_RATELIMIT_FLOOR = RATELIMIT_FLOOR

Response = tuple[str, int, dict[str, str]]


def _json_response(body: Any, status: int, headers: Mapping[str, str] | None = None) -> Response:
    return (
        json.dumps(body, default=str),
        status,
        {"Content-Type": "application/json", **(headers or {})},
    )


class _HeadChecker:
    """Destination HEADs for :meth:`Pipeline.is_mirrored` on one long-lived client.

    One event loop on a daemon thread owns one registry client, so checks from every
    request thread share its connections and tokens, instead of each building a client
    (TLS context, connection pool, token) and an event loop for a single HEAD.
    """

    def __init__(self, factory: Callable[[], RegistryClient]) -> None:
        self._factory = factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: RegistryClient | None = None
        self._lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="armirror-head-checks", daemon=True
                ).start()
                self._loop = loop
            return self._loop

    def exists(self, reference: Reference) -> bool:
        """Whether a manifest is at ``reference``; registry faults raise RegistryError."""

        async def head() -> bool:
            if self._client is None:  # only ever touched on the loop's thread
                self._client = self._factory()
            return await self._client.head_manifest(reference) is not None

        return asyncio.run_coroutine_threadsafe(head(), self._running_loop()).result()


class MirrorCheckRefused(Exception):
    """The destination answered 401/403 to the "already mirrored" HEAD: a configuration
    error (the function's account cannot read the repository), never "not mirrored"."""


@dataclass
class IngestOutcome:
    """What one Pub/Sub message led to: rows recorded, jobs queued, and why not more."""

    recorded: int = 0
    enqueued: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class Pipeline:
    """The four functions' logic over a store, a queue and a registry client."""

    def __init__(
        self,
        settings: Settings,
        store: PullStore,
        queue: CopyQueue,
        client_factory: Callable[[], RegistryClient] | None = None,
    ) -> None:
        if not settings.destination:
            raise ValueError("ARMIRROR_DESTINATION is required to run the pipeline")
        self.settings = settings
        self.prefix: str = settings.destination
        self.store = store
        self.queue = queue
        #: One registry's Retry-After holds back every copy job of this process.
        self.backoffs = Backoffs()
        #: Read once, so a proxy variable armirror cannot use stops it at start.
        self.proxies = ProxyRoutes.from_environment()
        self.client_factory = client_factory or (
            lambda: client_from_settings(settings, backoffs=self.backoffs, proxies=self.proxies)
        )
        self._mirrored: dict[str, tuple[float, bool]] = {}
        self._mirrored_lock = threading.Lock()
        self._heads = _HeadChecker(self.client_factory)

    # -- policy --------------------------------------------------------------------------

    def allowed(self, reference: Reference) -> str | None:
        """Why a reference must not be mirrored, or None when it may."""
        if not reference.third_party:
            return "not a third-party registry"
        if self.settings.deny and matches(reference, self.settings.deny):
            return "denied by ARMIRROR_DENY"
        if self.settings.allow and not matches(reference, self.settings.allow):
            return "not in ARMIRROR_ALLOW"
        return None

    def host_refused(self, reference: Reference, *, resolve: bool = True) -> str | None:
        """Why the copier must not be pointed at ``reference``'s registry, or None.

        Without ``resolve`` the host is judged by its name and literal only; the registry
        client's guard judges the resolved address again when it connects.
        """
        return host_problem(
            reference.registry,
            allow_private=self.settings.allow_private_hosts,
            trusted=self.settings.upstreams.keys(),
            **({} if resolve else {"resolve": no_resolver}),
        )

    def is_mirrored(self, destination: Reference) -> bool:
        """A cached HEAD at the destination (HEADs cost nothing upstream).

        A refused check (401/403) raises :class:`MirrorCheckRefused`; other registry
        faults count as "not mirrored" (a queued copy of a present image is up-to-date).
        """
        key = str(destination)
        now = time.monotonic()
        with self._mirrored_lock:
            cached = self._mirrored.get(key)
            if cached and cached[0] > now:
                return cached[1]

        try:
            present = self._heads.exists(destination)
        except RegistryError as exc:
            if exc.status in (401, 403):
                # Not "not mirrored": read that way, every pull would queue a copy again
                # once the task-name dedup window passed.  Not cached, so a fix applies
                # at once.
                log.error(
                    "configuration error: the destination refused the 'already mirrored' "
                    "check of %s (HTTP %s): grant this function's account "
                    "roles/artifactregistry.reader on the repository: %s",
                    destination,
                    exc.status,
                    exc,
                )
                raise MirrorCheckRefused(
                    f"cannot tell whether {destination} is mirrored: the destination "
                    f"refused the check (HTTP {exc.status}, configuration error)"
                ) from exc
            log.warning("cannot check %s: %s", destination, exc)
            return False
        with self._mirrored_lock:
            self._mirrored[key] = (now + MIRRORED_CACHE_SECONDS, present)
        return present

    # -- on_pull_event -------------------------------------------------------------------

    def on_pull_event(self, event: Any) -> IngestOutcome:
        """Record a sink message's pull events; queue a copy per newly wanted image.

        Garbage is logged and acknowledged (returns normally); a store or queue fault
        raises so Pub/Sub redelivers.  Recording is idempotent by insertId and job IDs
        are deterministic, so a redelivery counts and queues nothing twice.
        """
        outcome = IngestOutcome()
        parsed = events_module.from_cloud_event(event)
        if not parsed.events:
            outcome.skipped.append(parsed.skip_reason or "no pull events")
            log.info("skipped message: %s", outcome.skipped[-1])
            return outcome
        outcome.recorded = self.store.record(parsed.events)
        wanted: dict[str, bool] = {}  # reference -> rate limited
        counted: dict[str, set[str]] = {}  # reference -> insertIds pull_count counts
        for event_ in parsed.events:
            if event_.reference and event_.third_party and event_.reason in DEMAND_REASONS:
                limited = event_.reason == "rate_limited"
                wanted[event_.reference] = wanted.get(event_.reference, False) or limited
        for event_ in {e.insert_id: e for e in parsed.events}.values():  # as record keeps them
            if event_.reason in COUNTED_REASONS:
                counted.setdefault(event_.reference, set()).add(event_.insert_id)
        for text, rate_limited in wanted.items():
            reference = parse(text)
            reason = self.allowed(reference) or self.host_refused(reference, resolve=False)
            # This message's own pulls are in the store now, so the store's count is at
            # least theirs: when they reach the threshold, the query cannot say less.
            if (
                reason is None
                and not rate_limited
                and len(counted.get(text, ())) < self.settings.mirror_threshold
            ):
                pulls = self.store.pull_count(text)
                if pulls < self.settings.mirror_threshold:
                    reason = (
                        f"{pulls} pull(s), below the threshold of {self.settings.mirror_threshold}"
                    )
            try:
                destination = destination_for(reference, self.prefix)
            except InvalidReference as exc:  # content, which no redelivery can change
                outcome.skipped.append(f"{text}: no mirror name: {exc.problem}")
                continue
            if reason is None:
                try:
                    if self.is_mirrored(destination):
                        reason = "already mirrored"
                except MirrorCheckRefused as exc:
                    reason = str(exc)
            if reason:
                outcome.skipped.append(f"{text}: {reason}")
                continue
            job = CopyJob(
                str(reference), str(destination), "rate_limited" if rate_limited else "pull"
            )
            if self.queue.enqueue(job):
                outcome.enqueued.append(job.job_id)
                log.info("queued %s -> %s (%s)", job.source, job.destination, job.reason)
            else:
                outcome.skipped.append(f"{text}: already queued")
        return outcome

    # -- copy_image ----------------------------------------------------------------------

    def copy(self, source: Reference, destination: Reference) -> CopyResult:
        deadline = Deadline.within(self.settings.copy_deadline)

        async def run() -> CopyResult:
            async with self.client_factory() as client:
                # Every store keeps upload sessions: a copy cut off by the deadline resumes.
                copier = Copier(client, jobs=4, deadline=deadline, sessions=self.store)
                return await copier.copy(source, destination)

        result = asyncio.run(run())
        if result.status != "failed" or not result.retryable:
            self.store.record_copy(result)
        with self._mirrored_lock:
            self._mirrored.pop(str(destination), None)
        return result

    def copy_image(self, body: bytes, headers: Mapping[str, str]) -> Response:
        """Copy one image; 200 when done or permanently failed, 429/503 to be retried.

        A body that is not JSON is refused with 400.  A task that names no valid source,
        a destination other than the source's own mapping, or an internal registry is a
        failure answered 200 (recorded where it names a source), so it is not retried:
        a caller must not be able to write a tag upstream does not have (issue 12 §4).
        """
        task = {k: v[:200] for k, v in headers.items() if k.lower().startswith("x-cloudtasks-")}
        try:
            data = parse_json(body)
        except BadJson as exc:
            log.error("copy_image: refused task %s: %s", task, exc)
            return _json_response({"status": "failed", "error": f"invalid request: {exc}"}, 400)
        try:
            source = parse(data["source"])
            expected = destination_for(source, self.prefix)
            wanted = data.get("destination")
            destination = expected if wanted is None else parse(wanted)
        except (InvalidReference, KeyError, TypeError, AttributeError) as exc:
            error = f"invalid request: {_bounded(exc)}"
            log.error("copy_image: refused task %s: %s", task, error)
            return _json_response({"status": "failed", "error": error}, 200)
        problem: str | None
        if str(destination) != str(expected):
            problem = (
                f"destination {destination} is not {expected}: a source is only ever "
                "copied to its own mapping, tag and digest included"
            )
        else:
            problem = self.host_refused(source)
        if problem:
            refused = CopyResult(str(source), str(destination), "failed", error=problem)
            self.store.record_copy(refused)
            log.error("copy_image %s: refused: %s task=%s", source, problem, task)
            return _json_response(refused.to_json(), 200)
        result = self.copy(source, destination)
        log.info(
            "copy_image %s -> %s: %s%s task=%s",
            source,
            destination,
            result.status,
            f" ({result.error})" if result.error else "",
            task,
        )
        if result.status == "failed" and result.retryable:
            retry_headers = {}
            if result.retry_after is not None:
                retry_headers["Retry-After"] = str(int(result.retry_after + 0.999))
            status = 429 if result.rate_limited else 503
            return _json_response(result.to_json(), status, retry_headers)
        return _json_response(result.to_json(), 200)

    # -- request_copy --------------------------------------------------------------------

    def request_copy(self, body: bytes) -> Response:
        """Validate a batch of references and queue one job each (202), or refuse all."""
        if len(body) > MAX_REQUEST_BYTES:
            return _json_response({"error": f"request larger than {MAX_REQUEST_BYTES} bytes"}, 413)
        try:
            data = parse_json(body or b"null")
        except BadJson as exc:
            return _json_response({"error": str(exc)}, 400)
        images = data.get("images") if isinstance(data, dict) else None
        if not isinstance(images, list) or not images:
            return _json_response({"error": 'expected {"images": ["REF", ...]}'}, 400)
        if len(images) > MAX_REQUEST_IMAGES:
            return _json_response({"error": f"at most {MAX_REQUEST_IMAGES} images a request"}, 413)
        errors, jobs = [], []
        for item in images:
            problem, job = self._validate_request(item)
            if problem:
                errors.append({"image": item, "error": problem})
            elif job:
                jobs.append(job)
        if errors:
            return _json_response({"errors": errors}, 400)
        accepted = []
        for job in dict((j.job_id, j) for j in jobs).values():
            queued = self.queue.enqueue(job)
            accepted.append({**job.to_json(), "queued": queued})
        return _json_response({"jobs": accepted}, 202)

    def _validate_request(self, item: Any) -> tuple[str | None, CopyJob | None]:
        if not isinstance(item, str):
            return "each image must be a string", None
        try:
            reference = parse(item)
        except InvalidReference as exc:
            return str(exc), None
        problem = self.allowed(reference) or self.host_refused(reference)
        if problem:
            return problem, None
        destination = destination_for(reference, self.prefix)
        return None, CopyJob(str(reference), str(destination), "manual")

    # -- refresh -------------------------------------------------------------------------

    def refresh(self) -> dict[str, Any]:
        """HEAD each mirrored tag upstream, many at a time (``ARMIRROR_REFRESH_CONCURRENCY``);
        queue a re-copy where the upstream moved, within each registry's pull budget."""

        async def queue_copy(source: Reference, destination: Reference, digest: str) -> None:
            job = CopyJob(str(source), str(destination), "refresh", digest)
            await asyncio.to_thread(self.queue.enqueue, job)

        async def run() -> RefreshReport:
            async with self.client_factory() as client:
                return await find_moved(
                    client,
                    self.store.mirrored_tags(),
                    destination_of=lambda source: destination_for(source, self.prefix),
                    on_moved=queue_copy,
                    concurrency=self.settings.refresh_concurrency,
                    floor=REFRESH_RATELIMIT_FLOOR,
                )

        return asyncio.run(run()).to_json()


def _bounded(exc: Exception, limit: int = 300) -> str:
    """An exception's text on one line, cut: it may quote what a caller sent."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_job(pipeline: Pipeline, job: CopyJob) -> CopyResult:
    """What a local queue worker does with one job."""
    return pipeline.copy(parse(job.source), parse(job.destination))
