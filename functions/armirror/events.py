"""Cloud Logging entries -> :class:`PullEvent`: what a node (or Cloud Run) did with an image.

Inputs, all of which end in :func:`parse_log_entry`:

- a LogEntry as a dict, or its JSON text (:func:`parse_log_entry`, :func:`parse_json`);
- a Pub/Sub CloudEvent from an Eventarc trigger, whose ``data.message.data`` is the base64
  of the LogEntry JSON (:func:`from_cloud_event`);
- exported files: ``gcloud logging read --format=json`` (one JSON array), JSON lines, and
  newline-delimited exports of a BigQuery sink table, whose column names are lower-cased
  (``jsonPayload.involvedobject``) and whose timestamps read ``2026-10-01 08:00:01 UTC``
  (:func:`read_entries` streams them).

Kubelet messages name the image as the pod spec wrote it; the event keeps that text in
``image`` and the normalised form (``docker.io/library/nginx:latest``) in ``reference``.

Nothing here raises on bad input.  Every entry that yields no event says why in a
:class:`Skip` whose ``code`` is one of :data:`SKIP_CODES`, so skips can be counted: a
Pub/Sub message that can never be parsed must be acknowledged, not redelivered for a day.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Literal, Protocol

import orjson

from armirror.reference import InvalidReference, parse

__all__ = [
    "MAX_ENTRY_BYTES",
    "MAX_MESSAGE_CHARS",
    "REASONS",
    "SKIP_CODES",
    "ParseResult",
    "PullEvent",
    "Reason",
    "Skip",
    "first_by_insert_id",
    "from_cloud_event",
    "parse_json",
    "parse_log_entry",
    "parse_message",
    "parse_timestamp",
    "read_entries",
]

Reason = Literal["pulling", "pulled", "present", "failed", "rate_limited", "backoff", "deployed"]
REASONS: tuple[str, ...] = (
    "pulling",
    "pulled",
    "present",
    "failed",
    "rate_limited",
    "backoff",
    "deployed",
)

#: Why an entry gave no event.  Stable strings: dashboards and logs count them.
SKIP_CODES: dict[str, str] = {
    "bad_base64": "the Pub/Sub message data is not base64",
    "bad_json": "not a JSON document",
    "not_a_log_entry": "JSON, but not a LogEntry object",
    "not_a_cloud_event": "not a Pub/Sub CloudEvent (no data.message.data)",
    "too_large": "larger than the size armirror reads",
    "missing_field": "a field the entry needs is missing or has the wrong type",
    "bad_timestamp": "the entry's timestamp cannot be read",
    "unsupported_resource": "neither a GKE pod/cluster event nor a Cloud Run audit entry",
    "not_an_image_event": "a kubelet event that is not about pulling an image",
    "no_image": "an image pull error that does not name the image (Error: ErrImagePull)",
    "container_backoff": "a BackOff that restarts a crashing container, not a pull",
    "invalid_reference": "the image is not a valid reference",
    "no_images": "a Cloud Run entry whose request names no container image",
    "request_failed": "a Cloud Run request that failed, so nothing was deployed",
}

#: Entries larger than this (bytes of JSON) are skipped whole; Cloud Logging's own limit
#: is 256 KiB an entry.
MAX_ENTRY_BYTES = 512 * 1024
#: Messages longer than this are skipped; a kubelet message is a few hundred characters.
MAX_MESSAGE_CHARS = 16 * 1024


@dataclass(frozen=True, slots=True)
class PullEvent:
    """One thing that happened to one image, with where it happened.

    ``insert_id`` identifies the event: the LogEntry's insertId (suffixed ``#N`` for the
    N-th container image of a Cloud Run entry), so recording it twice counts it once.
    ``repository`` (``library/nginx``) and ``registry`` are what the tables cluster on.
    """

    insert_id: str
    event_time: datetime
    reason: str
    image: str
    reference: str
    registry: str
    repository: str
    registry_class: str
    third_party: bool
    project_id: str | None = None
    location: str | None = None
    cluster: str | None = None
    namespace: str | None = None
    pod: str | None = None
    node: str | None = None
    service: str | None = None
    image_bytes: int | None = None
    pull_seconds: float | None = None
    source: str = "kubelet"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``event_time`` as an RFC 3339 string)."""
        return {
            "insert_id": self.insert_id,
            "event_time": self.event_time.isoformat(),
            "reason": self.reason,
            "image": self.image,
            "reference": self.reference,
            "registry": self.registry,
            "repository": self.repository,
            "registry_class": self.registry_class,
            "third_party": self.third_party,
            "project_id": self.project_id,
            "location": self.location,
            "cluster": self.cluster,
            "namespace": self.namespace,
            "pod": self.pod,
            "node": self.node,
            "service": self.service,
            "image_bytes": self.image_bytes,
            "pull_seconds": self.pull_seconds,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PullEvent:
        values = dict(data)
        when = values["event_time"]
        values["event_time"] = when if isinstance(when, datetime) else parse_timestamp(when)
        return cls(**values)


def first_by_insert_id(events: Iterable[PullEvent]) -> list[PullEvent]:
    """One event per insert_id, the first of each, in order.  Every store and worker
    keeps the first, as a store keeps the row it already has, so which of two different
    entries with one insertId wins never depends on how the input was split."""
    unique: dict[str, PullEvent] = {}
    for event in events:
        unique.setdefault(event.insert_id, event)
    return list(unique.values())


@dataclass(frozen=True, slots=True)
class Skip:
    """Why one entry gave no event: a code from :data:`SKIP_CODES` and a short detail."""

    code: str
    detail: str = ""
    insert_id: str | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}" if self.detail else self.code


@dataclass
class ParseResult:
    """The events an input gave, and the reasons for what it did not give."""

    events: list[PullEvent] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    @property
    def skip_reason(self) -> str | None:
        """The first skip as text (a message usually holds one entry), or None."""
        return str(self.skipped[0]) if self.skipped else None

    def extend(self, other: ParseResult) -> None:
        self.events.extend(other.events)
        self.skipped.extend(other.skipped)


def _skip(code: str, detail: str = "", insert_id: str | None = None) -> ParseResult:
    return ParseResult(skipped=[Skip(code, detail, insert_id)])


# -- timestamps ------------------------------------------------------------------------

_FRACTION_RE = re.compile(r"(\.\d{1,6})\d*")


def parse_timestamp(value: Any) -> datetime:
    """An RFC 3339 timestamp (any fraction length), BigQuery's ``… UTC`` form, or epoch
    seconds, as an aware UTC datetime.  Raises ``ValueError`` otherwise."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        # Nanoseconds, as Cloud Logging writes them: Python reads six digits at most.
        parsed = datetime.fromisoformat(_FRACTION_RE.sub(r"\1", text, count=1))
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# -- kubelet messages ------------------------------------------------------------------

_IMAGE = r'"(?P<image>[^"]{1,1024})"'
_PULLING_RE = re.compile(rf"(?i:pulling) image {_IMAGE}")
_PULLED_RE = re.compile(
    rf"Successfully pulled image {_IMAGE}(?: in (?P<duration>[0-9.]+[a-zµ]+(?:[0-9.]+[a-zµ]+)*))?"
)
_SIZE_RE = re.compile(r"Image size: (?P<bytes>\d{1,20}) bytes")
_PRESENT_RE = re.compile(rf"Container image {_IMAGE} already present on machine")
_FAILED_RE = re.compile(rf"Failed to pull image {_IMAGE}")
_BACKOFF_RE = re.compile(rf"Back-off pulling image {_IMAGE}")
# Docker: "toomanyrequests: You have reached your pull rate limit"; containerd: "429 Too
# Many Requests - Server message: toomanyrequests: …" or "unexpected status … 429 Too Many
# Requests"; some registries only say "rate limit exceeded".
_RATE_LIMIT_RE = re.compile(
    r"toomanyrequests|too many requests|\b429\b|pull rate limit|rate limit exceeded", re.I
)
_NO_IMAGE_RE = re.compile(r"^Error: (?:ErrImagePull|ImagePullBackOff|ErrImageNeverPull)\b")
_DURATION_PART_RE = re.compile(r"([0-9.]+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _go_duration(text: str | None) -> float | None:
    """Seconds in a Go duration (``1.2s``, ``523ms``, ``1m2.5s``), or None."""
    if not text:
        return None
    total, end = 0.0, 0
    for match in _DURATION_PART_RE.finditer(text):
        if match.start() != end:
            return None
        try:
            total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        except ValueError:
            return None
        end = match.end()
    return round(total, 6) if end == len(text) and end else None


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """What a kubelet message says: the reason, the image as written, and figures."""

    reason: str
    image: str
    image_bytes: int | None = None
    pull_seconds: float | None = None


def parse_message(message: str, kubelet_reason: str = "") -> MessageInfo | Skip:
    """Classify one kubelet event message; a :class:`Skip` when it is not an image pull.

    The message decides, not the event's reason: "already present" carries reason
    Pulled, and BackOff is also the reason for restarting a crashing container.
    """
    if len(message) > MAX_MESSAGE_CHARS:
        return Skip("too_large", f"message of {len(message)} characters")
    if len(message) <= _CACHED_MESSAGE_CHARS:
        return _classify_cached(message, kubelet_reason)
    return _classify(message, kubelet_reason)


def _classify(message: str, kubelet_reason: str) -> MessageInfo | Skip:
    head = message[:40]
    if head.startswith("Pulling image") or head.startswith("pulling image"):
        match = _PULLING_RE.match(message)
        if match:
            return MessageInfo("pulling", match.group("image"))
    elif head.startswith("Successfully pulled image"):
        match = _PULLED_RE.match(message)
        if match:
            size = _SIZE_RE.search(message, match.end())
            return MessageInfo(
                "pulled",
                match.group("image"),
                image_bytes=int(size.group("bytes")) if size else None,
                pull_seconds=_go_duration(match.group("duration")),
            )
    elif head.startswith("Container image"):
        match = _PRESENT_RE.match(message)
        if match:
            return MessageInfo("present", match.group("image"))
    elif head.startswith("Failed to pull image"):
        match = _FAILED_RE.match(message)
        if match:
            rest = message[match.end() :]
            limited = _RATE_LIMIT_RE.search(rest) is not None
            return MessageInfo("rate_limited" if limited else "failed", match.group("image"))
    elif head.startswith("Back-off pulling image"):
        match = _BACKOFF_RE.match(message)
        if match:
            return MessageInfo("backoff", match.group("image"))
    elif _NO_IMAGE_RE.match(message):
        return Skip("no_image", message[:80])
    elif head.startswith("Back-off restarting") or (
        kubelet_reason == "BackOff" and "image" not in message
    ):
        return Skip("container_backoff")
    return Skip("not_an_image_event", f"{kubelet_reason}: {message[:80]}")


#: Messages up to this long are classified once: the same few forms recur for each image
#: (a result is immutable, so sharing it is safe).  Longer ones, and the odd huge one, are
#: classified every time rather than kept.
_CACHED_MESSAGE_CHARS = 512
_classify_cached = functools.lru_cache(maxsize=16384)(_classify)


@functools.lru_cache(maxsize=16384)
def _normalise(image: str) -> tuple[str, str, str, str, bool] | str:
    """(reference, registry, repository, registry_class, third_party), or the problem."""
    try:
        ref = parse(image)
    except InvalidReference as exc:
        return exc.problem
    cls = ref.registry_class
    return str(ref), ref.registry, ref.repository, str(cls), ref.third_party


# -- LogEntry --------------------------------------------------------------------------


def _field(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]``, also under the lower-cased name a BigQuery sink export uses."""
    value = obj.get(name)
    if value is None and name != name.lower():
        value = obj.get(name.lower())
    return value


def _dict(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = _field(obj, name)
    return value if isinstance(value, dict) else {}


_EMPTY: Mapping[str, Any] = {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _entry_time(entry: Mapping[str, Any], fallback: Any = None) -> datetime | Skip:
    raw = _field(entry, "timestamp") or _field(entry, "receiveTimestamp") or fallback
    if raw is None:
        return Skip("missing_field", "timestamp")
    try:
        return parse_timestamp(raw)
    except (ValueError, OverflowError, OSError):
        return Skip("bad_timestamp", repr(raw)[:64])


def _project_from_log_name(entry: Mapping[str, Any]) -> str | None:
    log_name = _field(entry, "logName")
    if isinstance(log_name, str) and log_name.startswith("projects/"):
        return log_name.split("/", 2)[1] or None
    return None


def parse_log_entry(entry: Any, *, fallback_time: Any = None) -> ParseResult:
    """One LogEntry (a dict) -> its events, or the reason it has none.  Never raises.

    ``fallback_time`` is used when the entry has no timestamp (e.g. the Pub/Sub
    message's ``logging.googleapis.com/timestamp`` attribute).
    """
    try:
        return _parse_log_entry(entry, fallback_time)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        # The parser checks types as it goes; this is the net under it, so that no
        # entry, however odd, makes Pub/Sub redeliver a message for a day.
        return _skip("missing_field", f"{type(exc).__name__}: {str(exc)[:80]}")


def _parse_log_entry(entry: Any, fallback_time: Any) -> ParseResult:
    if not isinstance(entry, dict):
        return _skip("not_a_log_entry", type(entry).__name__)
    resource = _dict(entry, "resource")
    resource_type = resource.get("type")
    if resource_type in ("k8s_pod", "k8s_cluster"):
        return _parse_kubelet(entry, resource, fallback_time)
    if _dict(entry, "protoPayload").get("serviceName") == "run.googleapis.com" or (
        resource_type == "cloud_run_revision"
    ):
        return _parse_cloud_run(entry, resource, fallback_time)
    if resource_type is None:
        return _skip("missing_field", "resource.type")
    return _skip("unsupported_resource", str(resource_type)[:64])


def _insert_id(entry: Mapping[str, Any]) -> str | Skip:
    value = _field(entry, "insertId")
    if isinstance(value, str) and 0 < len(value) <= 256:
        return value
    return Skip("missing_field", "insertId")


def _parse_kubelet(
    entry: Mapping[str, Any], resource: Mapping[str, Any], fallback_time: Any
) -> ParseResult:
    # The hot path of `armirror pulls`: the lookups of _field, _dict and _str are written
    # out here (a call each costs more than the lookup).
    insert_id = entry.get("insertId")
    if insert_id is None:
        insert_id = entry.get("insertid")
    if not isinstance(insert_id, str) or not 0 < len(insert_id) <= 256:
        return ParseResult(skipped=[Skip("missing_field", "insertId")])
    payload = entry.get("jsonPayload")
    if payload is None:
        payload = entry.get("jsonpayload")
    if not isinstance(payload, dict):
        payload = _EMPTY
    message = payload.get("message")
    if not isinstance(message, str):
        return _skip("missing_field", "jsonPayload.message", insert_id)
    kubelet_reason = payload.get("reason")
    info = parse_message(message, kubelet_reason if isinstance(kubelet_reason, str) else "")
    if isinstance(info, Skip):
        return ParseResult(skipped=[Skip(info.code, info.detail, insert_id)])
    when = _entry_time(entry, fallback_time)
    if isinstance(when, Skip):
        return ParseResult(skipped=[Skip(when.code, when.detail, insert_id)])
    image = info.image
    normalised = _normalise(image)
    if isinstance(normalised, str):
        return _skip("invalid_reference", f"{image[:120]}: {normalised}", insert_id)

    labels = resource.get("labels")
    if not isinstance(labels, dict):
        labels = _EMPTY
    involved = payload.get("involvedObject")
    if involved is None:
        involved = payload.get("involvedobject")
    if not isinstance(involved, dict):
        involved = _EMPTY
    source = payload.get("source")
    node = source.get("host") if isinstance(source, dict) else None
    pod = labels.get("pod_name")
    if not (isinstance(pod, str) and pod):
        pod = None
        if involved.get("kind") == "Pod":
            pod = involved.get("name")
            pod = pod if isinstance(pod, str) and pod else None
    project_id = labels.get("project_id")
    if not (isinstance(project_id, str) and project_id):
        project_id = _project_from_log_name(entry)
    location = labels.get("location")
    cluster = labels.get("cluster_name")
    namespace = labels.get("namespace_name")
    if not (isinstance(namespace, str) and namespace):
        namespace = involved.get("namespace")
    # Positional, in field order: PullEvent(insert_id, event_time, reason, image,
    # reference, registry, repository, registry_class, third_party, project_id, location,
    # cluster, namespace, pod, node, service, image_bytes, pull_seconds, source).
    event = PullEvent(
        insert_id,
        when,
        info.reason,
        image,
        *normalised,
        project_id,
        location if isinstance(location, str) and location else None,
        cluster if isinstance(cluster, str) and cluster else None,
        namespace if isinstance(namespace, str) and namespace else None,
        pod,
        node if isinstance(node, str) and node else None,
        None,
        info.image_bytes,
        info.pull_seconds,
        "kubelet",
    )
    return ParseResult(events=[event])


_CLOUD_RUN_DEPLOYS = ("CreateService", "ReplaceService", "UpdateService")


def _cloud_run_images(request: Mapping[str, Any]) -> list[Any]:
    """Container images of a v1 (service.spec.template.spec) or v2 (service.template)
    Cloud Run request."""
    service = _dict(request, "service")
    template = _dict(_dict(service, "spec"), "template") or _dict(service, "template")
    spec = _dict(template, "spec") or template
    containers = spec.get("containers")
    if not isinstance(containers, list):
        return []
    return [c.get("image") for c in containers if isinstance(c, dict)]


def _parse_cloud_run(
    entry: Mapping[str, Any], resource: Mapping[str, Any], fallback_time: Any
) -> ParseResult:
    insert_id = _insert_id(entry)
    if isinstance(insert_id, Skip):
        return ParseResult(skipped=[insert_id])
    proto = _dict(entry, "protoPayload")
    method = proto.get("methodName")
    if not isinstance(method, str) or not method.endswith(_CLOUD_RUN_DEPLOYS):
        return _skip("unsupported_resource", f"Cloud Run {str(method)[:64]}", insert_id)
    status = _dict(proto, "status")
    if status.get("code") not in (None, 0):
        return _skip("request_failed", str(status.get("message", ""))[:80], insert_id)
    images = _cloud_run_images(_dict(proto, "request"))
    if not images:
        return _skip("no_images", method, insert_id)
    when = _entry_time(entry, fallback_time)
    if isinstance(when, Skip):
        return ParseResult(skipped=[Skip(when.code, when.detail, insert_id)])
    labels = _dict(resource, "labels")
    service = _str(labels.get("service_name"))
    if service is None:
        resource_name = proto.get("resourceName")
        if isinstance(resource_name, str) and "/services/" in resource_name:
            service = resource_name.rsplit("/services/", 1)[1].split("/", 1)[0] or None
    result = ParseResult()
    for index, image in enumerate(images):
        event_id = f"{insert_id}#{index}"
        if not isinstance(image, str) or not image:
            result.skipped.append(Skip("missing_field", "containers[].image", event_id))
            continue
        normalised = _normalise(image)
        if isinstance(normalised, str):
            result.skipped.append(
                Skip("invalid_reference", f"{image[:120]}: {normalised}", event_id)
            )
            continue
        reference, registry, repository, registry_class, third_party = normalised
        result.events.append(
            PullEvent(
                insert_id=event_id,
                event_time=when,
                reason="deployed",
                image=image,
                reference=reference,
                registry=registry,
                repository=repository,
                registry_class=registry_class,
                third_party=third_party,
                project_id=_str(labels.get("project_id")) or _project_from_log_name(entry),
                location=_str(labels.get("location")),
                service=service,
                source="cloud_run",
            )
        )
    return result


# -- JSON, Pub/Sub ---------------------------------------------------------------------


def parse_json(text: str | bytes, *, fallback_time: Any = None) -> ParseResult:
    """A LogEntry's JSON text -> its events (bad or oversized JSON is a skip)."""
    if len(text) > MAX_ENTRY_BYTES:
        return _skip("too_large", f"entry of {len(text)} bytes")
    try:
        entry = orjson.loads(text)
    except (ValueError, RecursionError) as exc:
        return _skip("bad_json", str(exc)[:80])
    return parse_log_entry(entry, fallback_time=fallback_time)


def _cloud_event_data(event: Any) -> Any:
    data = getattr(event, "data", None)
    if data is None and isinstance(event, Mapping):
        data = event.get("data")
    if data is None:
        try:
            data = event["data"]  # cloudevents' CloudEvent supports item access
        except (KeyError, TypeError, IndexError):
            return None
    if isinstance(data, bytes | str):
        try:
            data = orjson.loads(data)
        except (ValueError, RecursionError):
            return None
    return data


def from_cloud_event(event: Any) -> ParseResult:
    """A Pub/Sub CloudEvent (an object with ``.data``, or its dict form) -> events.

    ``data.message.data`` is base64 of the LogEntry JSON.  Every problem is a skip.
    """
    try:
        data = _cloud_event_data(event)
    except Exception as exc:  # an exotic event object; the message is acknowledged
        return _skip("not_a_cloud_event", f"{type(exc).__name__}: {str(exc)[:80]}")
    message = data.get("message") if isinstance(data, dict) else None
    encoded = message.get("data") if isinstance(message, dict) else None
    if not isinstance(encoded, str | bytes):
        return _skip("not_a_cloud_event", "no data.message.data")
    if len(encoded) > MAX_ENTRY_BYTES * 4 // 3 + 4:
        return _skip("too_large", f"message data of {len(encoded)} bytes")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        return _skip("bad_base64", str(exc)[:80])
    assert isinstance(message, dict)
    attributes = message.get("attributes")
    fallback = None
    if isinstance(attributes, dict):
        fallback = attributes.get("logging.googleapis.com/timestamp")
    fallback = fallback or message.get("publishTime")
    return parse_json(raw, fallback_time=fallback)


# -- exported files --------------------------------------------------------------------

_SEPARATORS_RE = re.compile(r"[\s,]*")
_CHUNK = 1 << 20


def read_entries(stream: IO[str], head: str | None = None) -> Iterator[Any | Skip]:
    """Stream the LogEntries of an exported file: a JSON array (``gcloud logging read
    --format=json``) or JSON lines (also a BigQuery sink export).

    Yields each entry (whatever JSON value it is) or a :class:`Skip` for a line that is
    not JSON or too large.  Memory stays at about one chunk plus one entry.  A JSON array
    that is cut short or malformed raises ``ValueError`` naming the offset.
    """
    if head is None:  # else: the text already read from the stream
        head = stream.read(_CHUNK)
    stripped = head.lstrip()
    if stripped.startswith("["):
        yield from _read_array(stream, stripped[1:])
    else:
        yield from _read_lines(stream, head)


def _read_lines(stream: IO[str], head: str) -> Iterator[Any | Skip]:
    for lines in line_blocks(stream, head):
        for line in lines:
            if not line or line.isspace():
                continue
            yield decode_line(line)


def decode_line(line: str) -> Any | Skip:
    """One line of a JSON-lines export: its JSON value, or why it has none."""
    if len(line) > MAX_ENTRY_BYTES:
        return Skip("too_large", f"line of {len(line)} characters")
    try:
        return orjson.loads(line)
    except (ValueError, RecursionError) as exc:
        return Skip("bad_json", str(exc)[:80])


class TextReader(Protocol):
    """What :func:`line_blocks` reads from: a text file, or a byte range of one."""

    def read(self, size: int, /) -> str: ...


def line_blocks(stream: TextReader, head: str = "") -> Iterator[list[str]]:
    """The lines of a JSON-lines stream (after ``head``, text already read from it), a
    chunk's worth at a time; some may be blank.  One endless line is cut to its last
    :data:`MAX_ENTRY_BYTES` characters as it grows, so memory stays bounded."""
    lines = head.split("\n")
    pending = lines.pop()  # an unfinished last line
    while True:
        if lines:
            yield lines
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        lines = (pending + chunk).split("\n")
        pending = lines.pop()
        if len(pending) > 4 * MAX_ENTRY_BYTES:  # one endless line: drop what we have
            pending = pending[-MAX_ENTRY_BYTES:]
    if pending:
        yield [pending]


def _read_array(stream: IO[str], buffer: str) -> Iterator[Any | Skip]:
    decoder = json.JSONDecoder()
    pos, offset, eof = 0, 0, False
    while True:
        pos = _SEPARATORS_RE.match(buffer, pos).end()  # type: ignore[union-attr]
        if pos < len(buffer) and buffer[pos] == "]":
            return
        try:
            if pos >= len(buffer):
                raise json.JSONDecodeError("need more data", buffer, pos)
            value, end = decoder.raw_decode(buffer, pos)
        except json.JSONDecodeError as exc:
            if eof:
                where = offset + pos
                raise ValueError(
                    f"JSON array malformed or cut short near character {where}"
                ) from exc
            if len(buffer) - pos > 4 * MAX_ENTRY_BYTES:
                raise ValueError(
                    f"JSON array element at character {offset + pos} is not valid JSON"
                ) from exc
            more = stream.read(max(_CHUNK, len(buffer) - pos))
            eof = not more
            offset += pos
            buffer, pos = buffer[pos:] + more, 0
            continue
        yield value
        pos = end
