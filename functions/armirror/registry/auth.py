"""Registry authentication as an ``httpx.Auth`` flow.

A registry answers an unauthenticated request with 401 and a ``WWW-Authenticate``
challenge.  ``Basic`` means "send credentials with every request"; ``Bearer
realm=…,service=…,scope=…`` means "fetch a token from the realm for these scopes, then
retry".  Tokens are cached per scope set and, once a host's realm is known, fetched
before the request, so a streamed upload body is never sent twice.

Credentials come from the Docker config (``$DOCKER_CONFIG/config.json`` ``auths``) and,
for Artifact Registry and Container Registry hosts, from Google application default
credentials (user ``oauth2accesstoken``).  Without either, access is anonymous.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from armirror.reference import RegistryClass, classify_registry

log = logging.getLogger(__name__)

Credential = tuple[str, str]
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
# The name is greedy and the endpoint anchored at the end, so a repository whose path has
# a component called "blobs", "manifests", "tags" or "referrers" keeps its whole name.
_REPO_PATH = re.compile(
    r"^/v2/(?P<name>.+)/(?:manifests/[^/]+|blobs/uploads(?:/.*)?|blobs/[^/]+"
    r"|tags/list|referrers/[^/]+)$"
)
_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io")


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` -> (``"bearer"``, {realm, service, …})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        match.group(1).lower(): match.group(2) if match.group(2) is not None else match.group(3)
        for match in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


def scopes_for(request: httpx.Request) -> tuple[str, ...]:
    """The token scopes a request needs, derived from its path, method and mount query."""
    match = _REPO_PATH.match(request.url.path)
    if not match:
        return ()
    actions = "pull" if request.method in {"GET", "HEAD"} else "pull,push"
    scopes = [f"repository:{match.group('name')}:{actions}"]
    source = parse_qs(request.url.query.decode()).get("from")
    if source:
        scopes.append(f"repository:{source[0]}:pull")
    return tuple(scopes)


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


#: The token specification's default when a token server leaves ``expires_in`` out.
DEFAULT_TOKEN_SECONDS = 60.0
#: However long a token server says a token lives, it is asked again after an hour.
MAX_TOKEN_SECONDS = 3600.0


def cache_seconds(body: dict[str, object]) -> float:
    """How long to reuse a token: its lifetime, less a margin so that no request races
    the expiry (10 s, or a quarter of a short lifetime).  Never longer than the token
    lives: a cache that outlived a 3-second token sent it expired (issue 18)."""
    try:
        lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_SECONDS)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        lifetime = DEFAULT_TOKEN_SECONDS
    if not lifetime > 0:  # also NaN
        return 0.0
    lifetime = min(lifetime, MAX_TOKEN_SECONDS)
    return lifetime - min(10.0, lifetime / 4)


@dataclass
class _Token:
    header: str
    expires: float


class RegistryAuth(httpx.Auth):
    """Answer Basic and Bearer challenges for one registry endpoint (async clients only)."""

    requires_response_body = False

    def __init__(self, credential: Callable[[], Credential | None]) -> None:
        self._credential = credential
        self._basic_only = False
        self._bearer: dict[str, str] | None = None  # realm and service, once challenged
        self._tokens: dict[tuple[str, ...], _Token] = {}
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}
        self.token_requests = 0

    def _basic_header(self) -> str | None:
        credential = self._credential()
        if not credential:
            return None
        raw = f"{credential[0]}:{credential[1]}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _cached(self, scopes: tuple[str, ...]) -> str | None:
        token = self._tokens.get(scopes)
        if token and token.expires > time.monotonic():
            return token.header
        return None

    def _token_request(self, scopes: tuple[str, ...], challenge: dict[str, str]) -> httpx.Request:
        wanted = list(scopes)
        for scope in challenge.get("scope", "").split(" "):
            if scope and scope not in wanted:
                wanted.append(scope)
        params: list[tuple[str, str | int | float | bool | None]] = []
        if challenge.get("service"):
            params.append(("service", challenge["service"]))
        params += [("scope", scope) for scope in wanted]
        headers = {}
        basic = self._basic_header()
        if basic:
            headers["Authorization"] = basic
        self.token_requests += 1
        return httpx.Request("GET", challenge["realm"], params=params, headers=headers)

    def _store_token(self, scopes: tuple[str, ...], response: httpx.Response) -> str:
        if response.status_code != 200:
            raise httpx.HTTPStatusError(
                f"token request to {response.request.url.host} failed with "
                f"{response.status_code}: {response.text[:200]}",
                request=response.request,
                response=response,
            )
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise httpx.HTTPStatusError(
                "token response carries no token", request=response.request, response=response
            )
        header = f"Bearer {token}"
        self._tokens[scopes] = _Token(header, time.monotonic() + cache_seconds(body))
        return header

    def header_for(self, method: str, url: httpx.URL) -> str | None:
        """The Authorization header already earned for a request, for use outside httpx's
        auth flow (the blob transfer threads).  None means send none."""
        if self._basic_only:
            return self._basic_header()
        return self._cached(scopes_for(httpx.Request(method, url)))

    def _prepare(self, request: httpx.Request) -> tuple[str, ...]:
        scopes = scopes_for(request)
        if self._basic_only:
            basic = self._basic_header()
            if basic:
                request.headers["Authorization"] = basic
        else:
            cached = self._cached(scopes)
            if cached:
                request.headers["Authorization"] = cached
        return scopes

    def _challenge(self, response: httpx.Response) -> tuple[str, dict[str, str]] | None:
        if response.status_code != 401:
            return None
        header = response.headers.get("WWW-Authenticate", "")
        scheme, params = parse_challenge(header) if header else ("", {})
        if scheme == "bearer" and params.get("realm"):
            self._bearer = {k: v for k, v in params.items() if k in {"realm", "service"}}
            return scheme, params
        if scheme == "basic":
            return scheme, params
        return None

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        scopes = self._prepare(request)
        if self._bearer and not self._basic_only and scopes and not self._cached(scopes):
            lock = self._locks.setdefault(scopes, asyncio.Lock())
            async with lock:
                if not self._cached(scopes):
                    token_response = yield self._token_request(scopes, self._bearer)
                    await token_response.aread()
                    self._store_token(scopes, token_response)
            request.headers["Authorization"] = self._cached(scopes) or ""
        response = yield request
        challenge = self._challenge(response)
        if challenge is None:
            return
        scheme, params = challenge
        if scheme == "basic":
            basic = self._basic_header()
            # Another request may have switched to basic meanwhile; retry unless this
            # request already carried the credentials.
            if basic and request.headers.get("Authorization") != basic:
                self._basic_only = True
                request.headers["Authorization"] = basic
                # No aclose() here: httpx reads the 401 body itself once the flow yields
                # the next request, and a closed stream makes that read fail.
                yield request
            return
        token_response = yield self._token_request(scopes, params)
        await token_response.aread()
        request.headers["Authorization"] = self._store_token(scopes, token_response)
        yield request
