"""Run the Debian ``docker-registry`` (distribution 2.8) on 127.0.0.1.

Three flavours, as the tests need them: anonymous, htpasswd (basic auth over plain
HTTP) and token auth behind :mod:`standins.token_server`.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from standins.ports import wait_for_ports
from standins.processes import stop_process


def free_port() -> int:
    """A port free now; for servers that cannot bind port 0 (prefer port 0 where they can)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Registry:
    """A running registry: its base URL and how to stop it."""

    url: str
    host: str
    root: Path
    process: subprocess.Popen[bytes]
    username: str | None = None
    password: str | None = None
    extras: list[object] = field(default_factory=list)

    def stop(self) -> None:
        stop_process(self.process, timeout=10)
        for extra in self.extras:
            stop = getattr(extra, "stop", None)
            if stop:
                stop()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _htpasswd_line(username: str, password: str) -> str:
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    return f"{username}:{hashed}\n"


def start_registry(
    root: Path,
    *,
    auth: str | None = None,
    username: str = "armirror",
    password: str = "s3cret",
    port: int | None = None,
    token_server: object | None = None,
    tls: tuple[Path, Path] | None = None,
) -> Registry:
    """Start ``docker-registry serve`` with filesystem storage under ``root``.

    ``auth`` is None, ``"htpasswd"`` or ``"token"`` (then ``token_server`` supplies
    realm, service, issuer and the root certificate bundle).  ``tls`` is a
    (certificate, key) pair to serve HTTPS with; clients then need its CA.
    """
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError(
            "docker-registry is not installed; run infra/local/install-system-packages.sh"
        )
    root.mkdir(parents=True, exist_ok=True)
    storage = root / "storage"
    storage.mkdir(exist_ok=True)
    # Port 0 lets the kernel choose; the chosen port is read back from /proc, so no other
    # process can take it between a check and the bind (see standins.ports).
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        f"  addr: 127.0.0.1:{port or 0}",
        f"  secret: armirror-local-{secrets.token_hex(8)}",
    ]
    if tls is not None:
        lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
    if auth == "htpasswd":
        htpasswd = root / "htpasswd"
        htpasswd.write_text(_htpasswd_line(username, password))
        lines += ["auth:", "  htpasswd:", "    realm: armirror-local", f"    path: {htpasswd}"]
    elif auth == "token":
        if token_server is None:
            raise ValueError("token auth needs a token_server")
        ts = token_server
        lines += [
            "auth:",
            "  token:",
            f"    realm: {ts.realm}",  # type: ignore[attr-defined]
            f"    service: {ts.service}",  # type: ignore[attr-defined]
            f"    issuer: {ts.issuer}",  # type: ignore[attr-defined]
            f"    rootcertbundle: {ts.cert_path}",  # type: ignore[attr-defined]
        ]
    elif auth is not None:
        raise ValueError(f"unknown auth {auth!r}")
    config = root / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = (root / "registry.log").open("ab")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        (port,) = wait_for_ports(
            process.pid, 1, alive=lambda: process.poll() is None, timeout=15, what="docker-registry"
        )
    except RuntimeError as exc:
        process.kill()
        process.wait()
        raise RuntimeError(f"{exc}: {(root / 'registry.log').read_text()[-2000:]}") from None
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"docker-registry exited: {(root / 'registry.log').read_text()[-2000:]}"
            )
        try:
            httpx.get(f"{url}/v2/", timeout=1, verify=False)  # up, whatever its certificate
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"docker-registry did not start on {url}") from None
            time.sleep(0.05)
    registry = Registry(
        url=url,
        host=f"127.0.0.1:{port}",
        root=root,
        process=process,
        username=username if auth else None,
        password=password if auth else None,
    )
    if token_server is not None:
        registry.extras.append(token_server)
    return registry
