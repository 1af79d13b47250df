"""A small Docker registry token server for ``docker-registry``'s token auth.

It answers ``GET /token?service=…&scope=…`` with an ES256 JWT whose ``kid`` is the
libtrust key ID of its certificate, which is how distribution 2.8 finds the key in its
``rootcertbundle``.  Valid basic credentials get pull and push; anonymous callers get
pull only when ``anonymous_pull`` is set.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The key ID distribution derives: base32 of SHA-256(SPKI DER)[:30] in groups of 4."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


class TokenServer:
    """Issue registry bearer tokens on 127.0.0.1 until :meth:`stop`."""

    def __init__(
        self,
        directory: Path,
        *,
        username: str = "armirror",
        password: str = "s3cret",
        anonymous_pull: bool = False,
        service: str = "armirror-test-registry",
        issuer: str = "armirror-test-issuer",
        lifetime: int = 300,
    ) -> None:
        self.lifetime = lifetime
        self.username, self.password = username, password
        self.anonymous_pull = anonymous_pull
        self.service, self.issuer = service, issuer
        self.requests: list[dict[str, list[str]]] = []
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "armirror test token")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self._key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.cert_path = directory / "token-cert.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._kid = libtrust_key_id(self._key.public_key())
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.realm = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _grant(self, scopes: list[str], authenticated: bool) -> list[dict[str, object]]:
        access = []
        for scope in scopes:
            for item in scope.split(" "):
                parts = item.split(":")
                if len(parts) < 3:
                    continue
                kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
                allowed = (
                    actions
                    if authenticated
                    else [a for a in actions if a == "pull" and self.anonymous_pull]
                )
                access.append({"type": kind, "name": name, "actions": allowed})
        return access

    def issue(self, scopes: list[str], authenticated: bool, account: str = "") -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": account,
            "aud": self.service,
            "exp": now + self.lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": self._grant(scopes, authenticated),
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self._kid})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                server.requests.append(query)
                authenticated = False
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if (user, password) != (server.username, server.password):
                        self.send_response(401)
                        self.send_header("Content-Type", "application/json")
                        self.end_headers()
                        self.wfile.write(b'{"details":"invalid credentials"}')
                        return
                    authenticated = True
                token = server.issue(query.get("scope", []), authenticated)
                body = json.dumps(
                    {"token": token, "access_token": token, "expires_in": server.lifetime}
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

        return Handler

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
