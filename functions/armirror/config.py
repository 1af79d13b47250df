"""Settings from the environment, validated once at start.

Every variable the Cloud Functions read is listed in :data:`ENV_VARS`; Terraform sets
them and a test checks the two agree.  A bad value raises :class:`ConfigError` naming
the variable, so a misconfigured deployment fails at start rather than on the first event.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from armirror.reference import InvalidReference, parse_prefix

#: Every environment variable armirror reads, with what it means.
ENV_VARS: dict[str, str] = {
    "ARMIRROR_DESTINATION": "destination prefix, e.g. us-docker.pkg.dev/PROJECT/REPOSITORY",
    "ARMIRROR_STORE": "pull store URL: duckdb:///path or bigquery://PROJECT/DATASET",
    "ARMIRROR_QUEUE": "copy queue: local, or cloudtasks://projects/P/locations/L/queues/Q",
    "ARMIRROR_COPY_URL": "URL of the copy_image function (the Cloud Tasks target)",
    "ARMIRROR_TASKS_SERVICE_ACCOUNT": "service account whose OIDC token Cloud Tasks sends",
    "ARMIRROR_UPSTREAMS": "REGISTRY=URL[,URL...] endpoints tried in order; ';' between registries",
    "ARMIRROR_ALLOW": "comma-separated glob patterns of sources that may be mirrored",
    "ARMIRROR_DENY": "comma-separated glob patterns of sources that are never mirrored",
    "ARMIRROR_MIRROR_THRESHOLD": "pulls of an image before it is mirrored (default 1)",
    "ARMIRROR_ALLOW_PRIVATE_HOSTS": "true to let request_copy name private or loopback hosts",
    "ARMIRROR_TASKS_EMULATOR_HOST": "HOST:PORT of a Cloud Tasks emulator (plain gRPC)",
    "ARMIRROR_REFRESH_CONCURRENCY": "upstream checks refresh keeps in flight (default 32)",
    "ARMIRROR_COPY_DEADLINE": "seconds one copy_image call may run (default 1800)",
}

#: Variables a cloud deployment must set (the CLI has defaults for all of them).
REQUIRED_IN_CLOUD: frozenset[str] = frozenset(
    {"ARMIRROR_DESTINATION", "ARMIRROR_STORE", "ARMIRROR_QUEUE", "ARMIRROR_COPY_URL"}
)


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


#: A token that starts a registry's entry: ``NAME=`` (a host, maybe with a port).
_UPSTREAM_START = re.compile(
    r"^\s*([A-Za-z0-9][A-Za-z0-9.\-]*(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)\s*=(.*)$"
)
MAX_ENDPOINTS = 8

Upstreams = dict[str, tuple[str, ...]]


def parse_upstreams(items: tuple[str, ...] | list[str], source: str) -> Upstreams:
    """Endpoint lists per registry, tried in order; ``source`` names the option for errors.

    Each item is ``REGISTRY=URL[,URL...]``; an item may hold several registries separated
    by ``;`` (``ARMIRROR_UPSTREAMS`` does): ``docker.io=https://mirror.gcr.io,
    https://registry-1.docker.io;quay.io=https://quay.example``.  A comma followed by
    ``NAME=`` also starts a new registry, so the older ``A=URL,B=URL`` form still reads
    as two registries: a URL never looks like ``NAME=`` (it starts with ``http``).
    A registry named twice keeps its last list.
    """
    upstreams: Upstreams = {}
    for item in items:
        current: str | None = None
        for segment in re.split(r"[;\n]", item):
            current = None
            for token in segment.split(","):
                if not token.strip():
                    continue
                start = _UPSTREAM_START.match(token)
                if start and not token.strip().lower().startswith(("http://", "https://")):
                    current = start.group(1).lower()
                    upstreams[current] = ()
                    token = start.group(2)
                    if not token.strip():
                        raise ConfigError(f"{source}: {current}= names no endpoint")
                elif current is None:
                    raise ConfigError(
                        f"{source}: expected REGISTRY=URL[,URL...], got {token.strip()!r}"
                    )
                url = _endpoint_url(token.strip().rstrip("/"), source)
                if url not in upstreams[current]:
                    upstreams[current] += (url,)
                if len(upstreams[current]) > MAX_ENDPOINTS:
                    raise ConfigError(f"{source}: at most {MAX_ENDPOINTS} endpoints a registry")
    return upstreams


def _endpoint_url(url: str, source: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{source}: {url!r} must start with http:// or https://")
    parts = urlsplit(url)
    if not parts.hostname:
        raise ConfigError(f"{source}: {url!r} names no host")
    if parts.username or parts.password:
        raise ConfigError(
            f"{source}: an endpoint URL must not hold credentials; put them in the Docker "
            "config or a credential helper"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{source}: {url!r} must not have a query or fragment")
    return url


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"", "0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}: expected true or false, got {value!r}")


def _whole_number(
    env: Mapping[str, str], name: str, *, default: int, low: int, high: int | None = None
) -> int:
    text = env.get(name) or str(default)
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {text!r}") from None
    if value < low:
        raise ConfigError(f"{name}: must be at least {low}, got {value}")
    if high is not None and value > high:
        raise ConfigError(f"{name}: must be at most {high}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Validated settings; build with :func:`load`."""

    destination: str | None = None
    store: str | None = None
    queue: str = "local"
    copy_url: str | None = None
    tasks_service_account: str | None = None
    upstreams: Upstreams = field(default_factory=dict)
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    mirror_threshold: int = 1
    allow_private_hosts: bool = False
    tasks_emulator_host: str | None = None
    refresh_concurrency: int = 32
    #: Seconds a copy_image call may take (Cloud Tasks' dispatch deadline); transfers
    #: stop before it and the next attempt resumes them.
    copy_deadline: float = 1800.0

    def require_cloud(self) -> None:
        """Raise unless every variable a cloud deployment needs is set."""
        missing = [
            name
            for name, value in (
                ("ARMIRROR_DESTINATION", self.destination),
                ("ARMIRROR_STORE", self.store),
                ("ARMIRROR_COPY_URL", self.copy_url),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"missing required setting(s): {', '.join(missing)}")


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every ``ARMIRROR_*`` variable."""
    env = os.environ if environ is None else environ
    destination = env.get("ARMIRROR_DESTINATION") or None
    if destination:
        try:
            parse_prefix(destination)
        except InvalidReference as exc:
            raise ConfigError(f"ARMIRROR_DESTINATION: {exc}") from exc
        destination = destination.rstrip("/")

    store = env.get("ARMIRROR_STORE") or None
    if store and not store.startswith(("duckdb://", "bigquery://")):
        raise ConfigError(
            f"ARMIRROR_STORE: expected duckdb:///PATH or bigquery://PROJECT/DATASET, got {store!r}"
        )

    queue = env.get("ARMIRROR_QUEUE") or "local"
    if queue != "local" and not queue.startswith("cloudtasks://projects/"):
        raise ConfigError(
            "ARMIRROR_QUEUE: expected 'local' or "
            f"cloudtasks://projects/P/locations/L/queues/Q, got {queue!r}"
        )

    threshold = _whole_number(env, "ARMIRROR_MIRROR_THRESHOLD", default=1, low=1)

    return Settings(
        destination=destination,
        store=store,
        queue=queue,
        copy_url=env.get("ARMIRROR_COPY_URL") or None,
        tasks_service_account=env.get("ARMIRROR_TASKS_SERVICE_ACCOUNT") or None,
        upstreams=parse_upstreams([env.get("ARMIRROR_UPSTREAMS", "")], "ARMIRROR_UPSTREAMS"),
        allow=_split(env.get("ARMIRROR_ALLOW", "")),
        deny=_split(env.get("ARMIRROR_DENY", "")),
        mirror_threshold=threshold,
        allow_private_hosts=_bool(
            "ARMIRROR_ALLOW_PRIVATE_HOSTS", env.get("ARMIRROR_ALLOW_PRIVATE_HOSTS", "")
        ),
        tasks_emulator_host=env.get("ARMIRROR_TASKS_EMULATOR_HOST") or None,
        refresh_concurrency=_whole_number(
            env, "ARMIRROR_REFRESH_CONCURRENCY", default=32, low=1, high=256
        ),
        copy_deadline=float(
            _whole_number(env, "ARMIRROR_COPY_DEADLINE", default=1800, low=15, high=86400)
        ),
    )
