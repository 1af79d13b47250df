"""Where registry credentials come from.

In order of precedence: credentials given explicitly (tests, callers), the Docker config
(``$DOCKER_CONFIG/config.json`` ``auths``), and for Artifact Registry and Container
Registry hosts, Google application default credentials (user ``oauth2accesstoken``).
Without any, access is anonymous.  :class:`~armirror.registry.auth.RegistryAuth` asks
:meth:`CredentialStore.lookup` when a registry challenges.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

from armirror.reference import RegistryClass, classify_registry

log = logging.getLogger(__name__)

Credential = tuple[str, str]
_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io")


def _host_key(key: str) -> str:
    if "://" in key:
        key = urlsplit(key).netloc
    return key.split("/", 1)[0].lower()


class DockerConfig:
    """Basic credentials from the Docker config file's ``auths`` section."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            directory = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
            path = Path(directory) / "config.json"
        self.path = path
        self._auths: dict[str, Credential] = {}
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable Docker config %s: %s", path, exc)
            return
        for key, entry in (data.get("auths") or {}).items():
            credential = _decode_entry(entry)
            if credential:
                host = _host_key(key)
                self._auths[host] = credential
                if key in _DOCKER_HUB_KEYS or host in _DOCKER_HUB_KEYS:
                    for alias in ("docker.io", "index.docker.io", "registry-1.docker.io"):
                        self._auths.setdefault(alias, credential)

    def lookup(self, host: str) -> Credential | None:
        return self._auths.get(host.lower())


def _decode_entry(entry: object) -> Credential | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("auth"):
        try:
            user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return (user, secret) if user else None
    if entry.get("username") and entry.get("password"):
        return str(entry["username"]), str(entry["password"])
    return None


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
            log.info("no Google application default credentials: %s", exc)
            self._failed = True
            return None


class CredentialStore:
    """Where basic credentials for a host come from, in order of precedence."""

    def __init__(
        self,
        docker_config: DockerConfig | None = None,
        google: GoogleCredentials | None = None,
        explicit: dict[str, Credential] | None = None,
    ) -> None:
        self.docker_config = docker_config if docker_config is not None else DockerConfig()
        self.google = google if google is not None else GoogleCredentials()
        self.explicit = {k.lower(): v for k, v in (explicit or {}).items()}

    def lookup(self, host: str, registry: str | None = None) -> Credential | None:
        """Credentials for the endpoint ``host`` (falling back to the registry's name)."""
        for key in (host, registry):
            if not key:
                continue
            found = self.explicit.get(key.lower()) or self.docker_config.lookup(key)
            if found:
                return found
        name = registry or host
        if classify_registry(name) is not RegistryClass.THIRD_PARTY:
            token = self.google.token()
            if token:
                return ("oauth2accesstoken", token)
        return None
