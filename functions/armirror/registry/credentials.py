"""Where registry credentials come from, in order of precedence.

1. Credentials given explicitly (tests, library callers).
2. The credential files docker, skopeo and crane read, in containers-auth.json(5)'s
   order: ``$REGISTRY_AUTH_FILE`` (else ``$XDG_RUNTIME_DIR/containers/auth.json``),
   ``$XDG_CONFIG_HOME/containers/auth.json``, then the Docker config
   (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``).  In each,
   ``credHelpers`` for the registry wins, then ``credsStore``, then ``auths``, as in the
   Docker CLI; helpers are run as ``docker-credential-NAME get``
   (:mod:`armirror.registry.credential_sources`).
3. For Artifact Registry and Container Registry, Google application default
   credentials (user ``oauth2accesstoken``).

Without any, access is anonymous.  :class:`~armirror.registry.auth.RegistryAuth` asks
:meth:`CredentialStore.lookup` when a registry challenges; answers are kept for a few
minutes, so a helper runs about once per registry and run.

A registry's credentials go to that registry's own endpoints only: when an upstream
mapping sends Docker Hub's requests to ``mirror.gcr.io``, Docker Hub's password is not
offered to Google.  Loopback endpoints (local stand-ins) are the exception.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from armirror.reference import RegistryClass, classify_registry
from armirror.registry.credential_sources import (
    DOCKER_HUB_HOSTS,
    AuthFile,
    Credential,
    auth_file_paths,
)
from armirror.registry.endpoints import is_loopback

log = logging.getLogger(__name__)

__all__ = ["Credential", "CredentialStore", "DockerConfig", "GoogleCredentials"]

#: How long a lookup's answer (including "none") is reused.
CACHE_SECONDS = 300.0


class DockerConfig:
    """One credential file read as the Docker CLI reads it (``auths``, ``credHelpers``,
    ``credsStore``); by default ``$DOCKER_CONFIG/config.json``."""

    def __init__(self, path: Path | None = None, *, hosts_only: bool = True) -> None:
        """``hosts_only=False`` reads a containers auth file, whose keys with a path
        name one namespace (and are skipped)."""
        if path is None:
            path = auth_file_paths()[-1][0]
        self.path = path
        self.file = AuthFile.load(path, namespaces_are_hosts=hosts_only)

    def lookup(self, host: str, errors: list[str] | None = None) -> Credential | None:
        if self.file is None:
            return None
        return self.file.lookup(host, errors if errors is not None else [])


class GoogleCredentials:
    """Access tokens from application default credentials, loaded on first use."""

    def __init__(self) -> None:
        self._credentials: object | None = None
        self._failed = False

    def token(self) -> str | None:
        if self._failed:
            return None
        try:
            import google.auth
            import google.auth.transport.requests

            if self._credentials is None:
                self._credentials, _ = google.auth.default(
                    scopes=["https://www.googleapis.com/auth/cloud-platform"]
                )
            credentials = self._credentials
            if not credentials.valid:  # type: ignore[attr-defined]
                credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[attr-defined]
            return str(credentials.token)  # type: ignore[attr-defined]
        except Exception as exc:  # google-auth raises several unrelated types
            log.info("no Google application default credentials: %s", type(exc).__name__)
            self._failed = True
            return None


def _own_endpoint(host: str, registry: str) -> bool:
    """Whether the endpoint ``host`` is ``registry`` itself (or a loopback stand-in)."""
    host, registry = host.lower(), registry.lower()
    if host == registry or is_loopback(host):
        return True
    return registry in DOCKER_HUB_HOSTS and host in DOCKER_HUB_HOSTS


class CredentialStore:
    """Credentials for a registry endpoint, from the sources above."""

    def __init__(
        self,
        docker_config: DockerConfig | None = None,
        google: GoogleCredentials | None = None,
        explicit: Mapping[str, tuple[str, str]] | None = None,
        *,
        files: list[DockerConfig] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``files`` replaces the default credential files; a ``docker_config`` alone
        means "that file and no other" (tests point it at a missing file)."""
        if files is not None:
            self.files = files
        elif docker_config is not None:
            self.files = [docker_config]
        else:
            self.files = [DockerConfig(p, hosts_only=h) for p, h in auth_file_paths(env)]
        self.google = google if google is not None else GoogleCredentials()
        self.explicit = {
            k.lower(): Credential(v[0], v[1], "explicit credentials")
            for k, v in (explicit or {}).items()
        }
        self._cache: dict[tuple[str, str | None], tuple[float, Credential | None]] = {}
        self._problems: dict[tuple[str, str | None], list[str]] = {}
        self._lock = threading.Lock()

    def lookup(self, host: str, registry: str | None = None) -> Credential | None:
        """Credentials for the endpoint ``host`` of ``registry`` (default: ``host``)."""
        key = (host.lower(), registry.lower() if registry else None)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] > now:
                return cached[1]
            problems: list[str] = []
            found = self._find(host, registry, problems)
            self._cache[key] = (now + CACHE_SECONDS, found)
            self._problems[key] = problems
        for problem in problems:
            log.warning("credentials for %s: %s", registry or host, problem)
        return found

    def _names(self, host: str, registry: str | None) -> list[str]:
        names = [host]
        if registry and registry.lower() != host.lower() and _own_endpoint(host, registry):
            names.append(registry)
        return names

    def _find(self, host: str, registry: str | None, problems: list[str]) -> Credential | None:
        names = self._names(host, registry)
        for name in names:
            if name.lower() in self.explicit:
                return self.explicit[name.lower()]
        for config in self.files:
            for name in names:
                found = config.lookup(name, problems)
                if found:
                    return found
        google_host = names[-1]
        if classify_registry(google_host) is not RegistryClass.THIRD_PARTY:
            token = self.google.token()
            if token:
                return Credential(
                    "oauth2accesstoken", token, "Google application default credentials"
                )
        return None

    def searched(self, host: str, registry: str | None = None) -> str:
        """Where :meth:`lookup` looked, and what went wrong there, for a "no credentials"
        message (never a credential)."""
        key = (host.lower(), registry.lower() if registry else None)
        with self._lock:
            problems = list(self._problems.get(key, []))
        places = [str(config.path) for config in self.files]
        text = "looked in " + (", ".join(places) if places else "no credential files")
        if classify_registry(self._names(host, registry)[-1]) is not RegistryClass.THIRD_PARTY:
            text += " and Google application default credentials"
        if problems:
            text += "; " + "; ".join(problems)
        return text
