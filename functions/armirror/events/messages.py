"""Kubelet event messages: which kind of pull a message reports, the image it names as
the pod spec wrote it, and the figures it gives (image size, pull duration).

The message decides, not the event's reason: "already present" carries reason Pulled,
and BackOff is also the reason for restarting a crashing container.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from armirror.events.columns import fit_bytes, fit_seconds
from armirror.events.model import Skip

#: Messages longer than this are skipped; a kubelet message is a few hundred characters.
MAX_MESSAGE_CHARS = 16 * 1024

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


def go_duration(text: str | None) -> float | None:
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
    """What a kubelet message says: the reason, the image as written (at most 1024
    characters), and figures that fit their columns (else None)."""

    reason: str
    image: str
    image_bytes: int | None = None
    pull_seconds: float | None = None


def parse_message(message: str, kubelet_reason: str) -> MessageInfo | Skip:
    """Classify one kubelet event message; a :class:`Skip` when it is not an image pull."""
    if len(message) > MAX_MESSAGE_CHARS:
        return Skip("too_large", f"message of {len(message)} characters")
    if len(message) <= _CACHED_MESSAGE_CHARS:
        return _classify_cached(message, kubelet_reason)
    return _classify(message, kubelet_reason)


def _classify(message: str, kubelet_reason: str) -> MessageInfo | Skip:
    if message.startswith("Pulling image") or message.startswith("pulling image"):
        match = _PULLING_RE.match(message)
        if match:
            return MessageInfo("pulling", match.group("image"))
    elif message.startswith("Successfully pulled image"):
        match = _PULLED_RE.match(message)
        if match:
            size = _SIZE_RE.search(message, match.end())
            return MessageInfo(
                "pulled",
                match.group("image"),
                image_bytes=fit_bytes(int(size.group("bytes"))) if size else None,
                pull_seconds=fit_seconds(go_duration(match.group("duration"))),
            )
    elif message.startswith("Container image"):
        match = _PRESENT_RE.match(message)
        if match:
            return MessageInfo("present", match.group("image"))
    elif message.startswith("Failed to pull image"):
        match = _FAILED_RE.match(message)
        if match:
            rest = message[match.end() :]
            limited = _RATE_LIMIT_RE.search(rest) is not None
            return MessageInfo("rate_limited" if limited else "failed", match.group("image"))
    elif message.startswith("Back-off pulling image"):
        match = _BACKOFF_RE.match(message)
        if match:
            return MessageInfo("backoff", match.group("image"))
    elif _NO_IMAGE_RE.match(message):
        return Skip("no_image", message[:80])
    elif message.startswith("Back-off restarting") or (
        kubelet_reason == "BackOff" and "image" not in message
    ):
        return Skip("container_backoff")
    return Skip("not_an_image_event", f"{kubelet_reason}: {message[:80]}")


#: Messages up to this long are classified once: the same few forms recur for each image
#: (a result is immutable, so sharing it is safe).  Longer ones, and the odd huge one, are
#: classified every time rather than kept.
_CACHED_MESSAGE_CHARS = 512
_classify_cached = functools.lru_cache(maxsize=16384)(_classify)
