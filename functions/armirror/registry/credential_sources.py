"""Where docker, skopeo and crane keep registry credentials, read the way they read them.

Two kinds of file hold them: the Docker config (``$DOCKER_CONFIG/config.json``, else
``~/.docker/config.json``) and the containers auth file that podman and skopeo write
(``$REGISTRY_AUTH_FILE``, else ``$XDG_RUNTIME_DIR/containers/auth.json``, and
``$XDG_CONFIG_HOME/containers/auth.json``).  Both have the same three sections:

- ``credHelpers``: registry -> helper NAME; ask ``docker-credential-NAME get``;
- ``credsStore``: one helper for every registry without a ``credHelpers`` entry;
- ``auths``: registry -> base64 ``user:password`` (or ``username`` and ``password``).

Within a file a ``credHelpers`` entry wins, then ``credsStore``, then ``auths``: the
Docker CLI's rule (docs/reference/commandline/login.md, "Credential helpers": "The
default credential store will not be used for operations concerning credentials of the
specified registries"; its cli/config/credentials/native_store.go never falls back from
a credsStore to ``auths``).  The files are read in containers-auth.json(5)'s order until
one yields a credential: the primary containers file, the XDG config one, then the
Docker config (see :func:`auth_file_paths`).

A helper is a program speaking the docker-credential-helpers protocol: the server on
stdin, ``{"Username": …, "Secret": …}`` on stdout, or "credentials not found" and a
non-zero exit.  It is run with a time limit and its output is read up to a size limit;
what it prints is never logged or put in an error, since it may be a secret.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

#: Docker Hub's names in credential files; ``docker login`` writes the first.
DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io")
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
#: What a helper is asked for Docker Hub (what the Docker CLI sends).
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
HELPER_TIMEOUT_SECONDS = 10.0
HELPER_MAX_OUTPUT = 64 * 1024
MAX_AUTH_FILE_BYTES = 1024 * 1024
_HELPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Credential(tuple[str, str]):
    """A (user name, secret) pair that also says where it came from (for messages).

    It compares equal to the plain pair; its repr and str never show the secret.
    """

    source: str

    def __new__(
        cls, username: str, secret: str, source: str = "explicit credentials"
    ) -> Credential:
        self = super().__new__(cls, (username, secret))
        self.source = source
        return self

    @property
    def username(self) -> str:
        return self[0]

    @property
    def secret(self) -> str:
        return self[1]

    def __repr__(self) -> str:  # a credential in a traceback or a log shows no secret
        return f"Credential(username={self.username!r}, source={self.source!r})"

    def __str__(self) -> str:
        return self.__repr__()


class CredentialHelperError(Exception):
    """A helper is missing, failed, timed out or answered nonsense.  The message names
    the helper and what went wrong, never what it printed."""


def helper_get(
    name: str, server: str, *, timeout: float = HELPER_TIMEOUT_SECONDS
) -> Credential | None:
    """``docker-credential-NAME get`` for ``server``: a credential, or None when the helper
    has none for it.  Raises :class:`CredentialHelperError` for anything else."""
    program = f"docker-credential-{name}"
    if not _HELPER_NAME.match(name):
        raise CredentialHelperError(f"credential helper name {name!r} is not a plain name")
    executable = shutil.which(program)
    if executable is None:
        raise CredentialHelperError(f"{program} is not on PATH")
    try:
        process = subprocess.Popen(
            [executable, "get"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # may echo secrets; never read
            start_new_session=True,
        )
    except OSError as exc:
        raise CredentialHelperError(f"{program} could not be started: {exc.strerror}") from None
    try:
        output = _bounded_output(process, server.encode(), timeout, program)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    if process.returncode != 0:
        if b"credentials not found" in output.lower():
            return None
        raise CredentialHelperError(f"{program} get failed (exit status {process.returncode})")
    try:
        answer = json.loads(output)
        username, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError):
        raise CredentialHelperError(
            f"{program} get printed something that is not a credential"
        ) from None
    if not isinstance(username, str) or not isinstance(secret, str):
        raise CredentialHelperError(f"{program} get printed something that is not a credential")
    if username == "<token>":
        # An identity token, for an OAuth2 refresh-token exchange armirror does not do.
        raise CredentialHelperError(
            f"{program} holds an identity token for {server}, which armirror cannot use; "
            "log in with a user name and password or access token instead"
        )
    if not username and not secret:
        return None
    return Credential(username, secret, f"credential helper {program}")


def _bounded_output(
    process: subprocess.Popen[bytes], stdin: bytes, timeout: float, program: str
) -> bytes:
    """Write ``stdin``, then read stdout until EOF, at most HELPER_MAX_OUTPUT bytes and
    ``timeout`` seconds; a helper that goes past either is killed."""
    assert process.stdin is not None and process.stdout is not None
    deadline = time.monotonic() + timeout
    try:
        process.stdin.write(stdin)
        process.stdin.close()
    except (BrokenPipeError, OSError):
        pass  # a helper that does not read its input still gets its exit status read
    chunks: list[bytes] = []
    size = 0
    fd = process.stdout.fileno()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise CredentialHelperError(f"{program} get did not answer within {timeout:.0f} s")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        size += len(chunk)
        if size > HELPER_MAX_OUTPUT:
            raise CredentialHelperError(
                f"{program} get printed more than {HELPER_MAX_OUTPUT // 1024} KiB"
            )
        chunks.append(chunk)
    left = max(0.0, deadline - time.monotonic())
    try:
        process.wait(timeout=left)
    except subprocess.TimeoutExpired:
        raise CredentialHelperError(f"{program} get did not exit within {timeout:.0f} s") from None
    return b"".join(chunks)


def host_key(key: str) -> str:
    """A credential file's key as a host: ``https://index.docker.io/v1/`` -> index.docker.io."""
    if "://" in key:
        key = urlsplit(key).netloc
    return key.split("/", 1)[0].lower()


def lookup_keys(registry: str) -> list[str]:
    """The keys a file may use for ``registry``: Docker Hub has several names."""
    registry = registry.lower()
    if registry in DOCKER_HUB_HOSTS:
        return [*DOCKER_HUB_KEYS, "registry-1.docker.io"]
    return [registry]


def helper_server(registry: str) -> str:
    """The server string a helper is asked about, as the Docker CLI asks it."""
    return DOCKER_HUB_SERVER if registry.lower() in DOCKER_HUB_HOSTS else registry.lower()


def _decode_auth(entry: object) -> tuple[str, str] | None:
    if not isinstance(entry, dict):
        return None
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            user, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return (user, secret) if user else None
    username, password = entry.get("username"), entry.get("password")
    if isinstance(username, str) and isinstance(password, str) and username and password:
        return username, password
    return None


@dataclass
class AuthFile:
    """One credential file's sections, keyed by host."""

    path: Path
    auths: dict[str, tuple[str, str]] = field(default_factory=dict)
    cred_helpers: dict[str, str] = field(default_factory=dict)
    creds_store: str | None = None

    @classmethod
    def load(cls, path: Path, *, namespaces_are_hosts: bool) -> AuthFile | None:
        """The file's sections, or None when it is absent or unreadable (logged).

        The containers format allows keys with a path (``quay.io/org``) that apply to
        one namespace; armirror authenticates per registry, so those are skipped.  The
        Docker CLI reads such a key as its host, and so does this with
        ``namespaces_are_hosts``.
        """
        try:
            if path.stat().st_size > MAX_AUTH_FILE_BYTES:
                log.warning("ignoring credential file %s: larger than 1 MiB", path)
                return None
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable credential file %s: %s", path, type(exc).__name__)
            return None
        if not isinstance(data, dict):
            log.warning("ignoring credential file %s: not a JSON object", path)
            return None
        found = cls(path)
        for key, entry in _mapping(data.get("auths")).items():
            if not namespaces_are_hosts and _is_namespace_key(key):
                continue
            credential = _decode_auth(entry)
            if credential:
                found.auths.setdefault(host_key(key), credential)
        for key, name in _mapping(data.get("credHelpers")).items():
            if isinstance(name, str) and name:
                found.cred_helpers.setdefault(host_key(key), name)
        store = data.get("credsStore")
        if isinstance(store, str) and store:
            found.creds_store = store
        return found

    def lookup(self, registry: str, errors: list[str]) -> Credential | None:
        """This file's credential for ``registry``; helper failures go to ``errors``."""
        keys = [host_key(k) for k in lookup_keys(registry)]
        helper = next((self.cred_helpers[k] for k in keys if k in self.cred_helpers), None)
        if helper is None:
            helper = self.creds_store
        if helper is not None:
            try:
                return helper_get(helper, helper_server(registry))
            except CredentialHelperError as exc:
                errors.append(f"{exc} (named in {self.path})")
                return None
        for key in keys:
            if key in self.auths:
                user, secret = self.auths[key]
                return Credential(user, secret, f"auths in {self.path}")
        return None


def _is_namespace_key(key: str) -> bool:
    """``quay.io/org`` names a namespace; ``https://index.docker.io/v1/`` is a legacy
    way of naming a host, which containers/image also reads as one."""
    return "://" not in key and "/" in key.rstrip("/")


def _mapping(value: object) -> dict[str, object]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def auth_file_paths(env: Mapping[str, str] | None = None) -> list[tuple[Path, bool]]:
    """Credential files in the order they are searched, each with whether its keys are
    read as hosts (the Docker config) or may name namespaces (the containers files).

    containers-auth.json(5): "first reading the primary (read/write) file, or the
    explicit override", ``${XDG_RUNTIME_DIR}/containers/auth.json`` (skopeo falls back
    to ``/run/containers/$UID/auth.json`` without XDG_RUNTIME_DIR), then
    ``${XDG_CONFIG_HOME}/containers/auth.json`` and the Docker config (containers/image
    honours DOCKER_CONFIG there).  The legacy ``~/.dockercfg`` is not read.
    """
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home())
    paths: list[tuple[Path, bool]] = []
    if env.get("REGISTRY_AUTH_FILE"):
        paths.append((Path(env["REGISTRY_AUTH_FILE"]), False))
    elif env.get("XDG_RUNTIME_DIR"):
        paths.append((Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json", False))
    else:
        paths.append((Path(f"/run/containers/{os.getuid()}/auth.json"), False))
    config_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    paths.append((config_home / "containers" / "auth.json", False))
    docker_dir = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else home / ".docker"
    paths.append((docker_dir / "config.json", True))
    return paths
