"""A corporate forward proxy on 127.0.0.1 that records what it was asked.

It speaks both forms an HTTP proxy takes, as squid and tinyproxy do: ``CONNECT
host:port`` opens a tunnel (how https:// requests pass), and an absolute-form request
(``GET http://host:port/path``) is forwarded (how http:// requests pass).

Like a proxy in a corporate network it resolves names itself, from ``hosts`` (names
that do not resolve on this machine, so a test shows which side resolved them).  It
never reaches beyond this machine: a target that is not, or does not map to, a loopback
address is answered 502 without a connection, and recorded all the same.  With
``credentials``, a request without the matching Proxy-Authorization is answered 407.
``tls`` (certificate, key) makes it an https:// proxy.

    with ForwardProxy(hosts={"registry.proxy.test": "127.0.0.1"}) as proxy:
        env["HTTPS_PROXY"] = proxy.url
        ...
        proxy.targets()   # every host:port it was asked for, in order
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import select
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authorization", "proxy-authenticate", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade",
}  # fmt: skip
#: A tunnel that carries nothing for this long is closed (every loop here is bounded).
IDLE_SECONDS = 60.0


@dataclass(frozen=True)
class Asked:
    """One request the proxy received: CONNECT and its host:port, or a forwarded URL."""

    method: str
    target: str  # host:port for CONNECT, the absolute URL otherwise
    proxy_authorization: str

    @property
    def host_port(self) -> str:
        if self.method == "CONNECT":
            return self.target
        url = urllib.parse.urlsplit(self.target)
        return f"{url.hostname}:{url.port or 80}"


class ForwardProxy:
    def __init__(
        self,
        *,
        hosts: Mapping[str, str] | None = None,
        credentials: tuple[str, str] | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.hosts = {name.lower(): address for name, address in (hosts or {}).items()}
        self.credentials = credentials
        self.asked: list[Asked] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.port = self._server.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url_with(self, user: str, password: str) -> str:
        """The proxy URL with credentials in it, as HTTPS_PROXY carries them."""
        quote = urllib.parse.quote
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"

    def targets(self) -> list[str]:
        with self._lock:
            return [asked.host_port for asked in self.asked]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ForwardProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the handler asks of the proxy ------------------------------------------

    def _record(self, asked: Asked) -> None:
        with self._lock:
            self.asked.append(asked)

    def _authorized(self, header: str) -> bool:
        if self.credentials is None:
            return True
        expected = base64.b64encode(":".join(self.credentials).encode()).decode()
        return header == f"Basic {expected}"

    def _address(self, host: str) -> str | None:
        """Where ``host`` is, by the proxy's own table; None unless it is loopback."""
        address = self.hosts.get(host.lower().strip("[]"), host.strip("[]"))
        try:
            return address if ipaddress.ip_address(address).is_loopback else None
        except ValueError:
            return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _refuse(self, status: int, reason: str, **headers: str) -> None:
                self.send_response(status, reason)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _admit(self, target: str) -> bool:
                header = self.headers.get("Proxy-Authorization", "")
                proxy._record(Asked(self.command, target, header))
                if proxy._authorized(header):
                    return True
                self._refuse(407, "Proxy Authentication Required",
                             **{"Proxy-Authenticate": 'Basic realm="standin"'})  # fmt: skip
                return False

            def do_CONNECT(self) -> None:
                if not self._admit(self.path):
                    return
                host, _, port = self.path.rpartition(":")
                address = proxy._address(host)
                if address is None or not port.isdigit():
                    self._refuse(502, "Bad Gateway")
                    return
                try:
                    upstream = socket.create_connection((address, int(port)), timeout=10)
                except OSError:
                    self._refuse(502, "Bad Gateway")
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                with upstream:
                    _pipe(self.connection, upstream)
                self.close_connection = True

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.scheme != "http" or not url.hostname:
                    self._refuse(400, "Bad Request")
                    return
                if not self._admit(self.path):
                    self._discard_body()
                    return
                address = proxy._address(url.hostname)
                body = self._body()
                if address is None:
                    self._refuse(502, "Bad Gateway")
                    return
                self._forward(address, url, body)

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    return b"".join(_chunks(self.rfile))
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _discard_body(self) -> None:
                self._body()

            def _forward(self, address: str, url: urllib.parse.SplitResult, body: bytes) -> None:
                path = urllib.parse.urlunsplit(("", "", url.path or "/", url.query, ""))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                connection = http.client.HTTPConnection(address, url.port or 80, timeout=30)
                try:
                    connection.request(self.command, path, body=body, headers=headers)
                    answer = connection.getresponse()
                    content = answer.read()
                except OSError:
                    self._refuse(502, "Bad Gateway")
                    return
                finally:
                    connection.close()
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                length = answer.getheader("Content-Length")
                self.send_header("Content-Length", length if self.command == "HEAD" and length
                                 else str(len(content)))  # fmt: skip
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)

        return Handler


def _chunks(stream: object) -> Iterator[bytes]:
    read = stream.readline  # type: ignore[attr-defined]
    while True:
        size = int(read().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while read().strip():  # trailers
                pass
            return
        yield stream.read(size)  # type: ignore[attr-defined]
        read()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until one side closes or both are idle too long."""
    sockets = [a, b]
    while True:
        # TLS to an https:// proxy may hold decrypted bytes select() does not see.
        ready = [s for s in sockets if isinstance(s, ssl.SSLSocket) and s.pending()]
        if not ready:
            ready, _, _ = select.select(sockets, [], [], IDLE_SECONDS)
        if not ready:
            return
        for source in ready:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            (b if source is a else a).sendall(data)
