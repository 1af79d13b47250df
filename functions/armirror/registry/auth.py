"""Registry authentication as an ``httpx.Auth`` flow.

A registry answers an unauthenticated request with 401 and a ``WWW-Authenticate``
challenge.  ``Basic`` means "send credentials with every request"; ``Bearer
realm=…,service=…,scope=…`` means "fetch a token from the realm for these scopes, then
retry".  Tokens are cached per scope set and, once a host's realm is known, fetched
before the request, so a streamed upload body is never sent twice.

Where the credentials come from is :mod:`armirror.registry.credentials`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

import httpx

from armirror.registry.bodies import answer_with, read_bounded
from armirror.registry.credentials import Credential
from armirror.registry.errors import HostRefused, MalformedAnswer
from armirror.registry.redact import remember, remember_basic, scrub, url_for_log

log = logging.getLogger(__name__)

_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
# The name is greedy and the endpoint anchored at the end, so a repository whose path has
# a component called "blobs", "manifests", "tags" or "referrers" keeps its whole name.
_REPO_PATH = re.compile(
    r"^/v2/(?P<name>.+)/(?:manifests/[^/]+|blobs/uploads(?:/.*)?|blobs/[^/]+"
    r"|tags/list|referrers/[^/]+)$"
)


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


#: A token server's answer is read up to this size (a token is a few KiB).
MAX_TOKEN_BODY = 1024 * 1024
#: What a bearer token may look like: printable, no spaces, bounded.
_TOKEN = re.compile(r"^[\x21-\x7e]{1,65536}$")


async def _read_token_answer(response: httpx.Response) -> bytes:
    """The token server's answer, read with a cap.  httpx reads the response again once
    the flow moves on, so the bytes read are left where it looks for them."""
    body = await read_bounded(response, MAX_TOKEN_BODY)
    response._content = body  # what Response.aread() sets; httpx 0.28's auth loop reads it
    return body


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

    def __init__(
        self,
        credential: Callable[[], Credential | None],
        *,
        realm_problem: Callable[[str], str | None] | None = None,
    ) -> None:
        self._credential = credential
        #: Why a token realm must not be asked (HostGuard.realm_problem), or None.
        self._realm_problem = realm_problem
        self._basic_only = False
        self._bearer: dict[str, str] | None = None  # realm and service, once challenged
        self._tokens: dict[tuple[str, ...], _Token] = {}
        #: Tokens given no lifetime to keep them for (expires_in < 0), each held until one
        #: transfer thread's request takes it (header_for): fetched for that request.
        self._unkept: dict[tuple[str, ...], str] = {}
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}
        self.token_requests = 0

    @property
    def challenged(self) -> bool:
        """Whether this endpoint has asked for credentials (Basic or a Bearer realm)."""
        return self._basic_only or self._bearer is not None

    def _basic_header(self) -> str | None:
        credential = self._credential()
        if not credential:
            return None
        remember_basic(credential[0], credential[1])
        raw = f"{credential[0]}:{credential[1]}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _cached(self, scopes: tuple[str, ...]) -> str | None:
        token = self._tokens.get(scopes)
        if token and token.expires > time.monotonic():
            return token.header
        return None

    def _token_request(self, scopes: tuple[str, ...], challenge: dict[str, str]) -> httpx.Request:
        realm = challenge["realm"]
        problem = self._realm_problem(realm) if self._realm_problem else None
        if problem:
            # Checked before the request is built: the registry's credentials go with it.
            raise HostRefused(f"token realm {url_for_log(scrub(realm, 120))} refused: {problem}")
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
        return httpx.Request("GET", realm, params=params, headers=headers)

    def _store_token(self, scopes: tuple[str, ...], response: httpx.Response, body: bytes) -> str:
        """Keep the token from a token server's answer (``body``, read bounded).

        A refusal becomes httpx.HTTPStatusError for the session to map; an answer that
        is not a token (not JSON, a list, no token) is a MalformedAnswer.  Neither
        quotes the body: it may carry a token (issue 12 §2).
        """
        where = f"token server {scrub(response.request.url.netloc.decode(errors='replace'), 100)}"
        if response.status_code != 200:
            answer = answer_with(response, body)
            raise httpx.HTTPStatusError(
                f"{where} answered {response.status_code}",
                request=response.request,
                response=answer,
            )
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            raise MalformedAnswer(f"{where} answered something that is not JSON") from None
        if not isinstance(document, dict):
            raise MalformedAnswer(f"{where} answered JSON that is not an object")
        token = document.get("token") or document.get("access_token")
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise MalformedAnswer(f"{where} answered no usable token")
        remember(token)
        header = f"Bearer {token}"
        lifetime = cache_seconds(document)
        if lifetime > 0:
            self._tokens[scopes] = _Token(header, time.monotonic() + lifetime)
        else:  # nothing to keep, and an older token for these scopes is no better
            self._tokens.pop(scopes, None)
            self._unkept[scopes] = header
        return header

    async def earn(self, client: httpx.AsyncClient, method: str, url: httpx.URL) -> None:
        """Fetch the token a ``method`` request to ``url`` needs, without sending it: for
        requests a transfer thread sends outside httpx's auth flow (header_for).  Does
        nothing until the endpoint has challenged with a Bearer realm, or when a token
        for those scopes is cached."""
        scopes = scopes_for(httpx.Request(method, url))
        if self._basic_only or not self._bearer or not scopes or self._cached(scopes):
            return
        async with self._locks.setdefault(scopes, asyncio.Lock()):
            if self._cached(scopes):
                return
            response = await client.send(
                self._token_request(scopes, self._bearer), auth=None, stream=True
            )
            try:
                body = await read_bounded(response, MAX_TOKEN_BODY)
            finally:
                await response.aclose()
            self._store_token(scopes, response, body)

    def header_for(self, method: str, url: httpx.URL) -> str | None:
        """The Authorization header already earned for a request, for use outside httpx's
        auth flow (the blob transfer threads).  None means send none.  A token that is not
        kept is handed out once, to the request it was just fetched for."""
        if self._basic_only:
            return self._basic_header()
        scopes = scopes_for(httpx.Request(method, url))
        return self._cached(scopes) or self._unkept.pop(scopes, None)

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
                header = self._cached(scopes)
                if not header:
                    token_response = yield self._token_request(scopes, self._bearer)
                    body = await _read_token_answer(token_response)
                    # The token goes with this request even when it is not kept for
                    # others (a lifetime of 0): a streamed body cannot be sent twice.
                    header = self._store_token(scopes, token_response, body)
            request.headers["Authorization"] = header
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
        body = await _read_token_answer(token_response)
        request.headers["Authorization"] = self._store_token(scopes, token_response, body)
        yield request
