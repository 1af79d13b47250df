"""Finding a registry's credentials: credential files read as docker and skopeo read them,
credential helpers run as real programs, Google application default credentials through
the real google-auth library, and the "where armirror looked" text a refusal shows.

Helpers here are small executables written into the test's directory, each speaking the
docker-credential-helpers protocol with one quirk a real helper can have (an answer of
exactly the size limit, an answer written in pieces, a helper that answers but does not
exit).  Google's token endpoint is a local HTTP server that service-account credentials
are pointed at with their own ``token_uri``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from armirror.registry.credential_sources import (
    HELPER_MAX_OUTPUT,
    AuthFile,
    Credential,
    CredentialHelperError,
    helper_get,
)
from armirror.registry.credentials import CredentialStore, DockerConfig, GoogleCredentials

SECRET = "probe-secret-never-shown"

# A helper whose behaviour is read from $ARMIRROR_PROBE_CONFIG: {"mode": ..., ...}.
PROBE = """\
import fcntl, json, os, sys, termios, time
config = json.load(open(os.environ["ARMIRROR_PROBE_CONFIG"]))
server = sys.stdin.read().strip()
if "session_file" in config:
    with open(config["session_file"], "w") as handle:
        json.dump({"pid": os.getpid(), "sid": os.getsid(0)}, handle)
if config.get("stderr"):
    sys.stderr.write("helper says " + config["stderr"] + "\\n")
    sys.stderr.flush()
answer = json.dumps({"ServerURL": server, "Username": "probe", "Secret": config["secret"]})
mode = config.get("mode", "plain")
if mode == "raw":  # whatever JSON the test gives
    answer = json.dumps(config["answer"])
if mode == "text":  # whatever text the test gives
    answer = config["text"]
out = sys.stdout.buffer
if mode == "pad":  # exactly config["size"] bytes of valid JSON
    out.write(answer.encode().ljust(config["size"]))
elif mode == "split":  # half, then the rest once the reader has taken the first half
    data = answer.encode()
    out.write(data[: len(data) // 2])
    out.flush()
    for _ in range(2000):
        if int.from_bytes(fcntl.ioctl(1, termios.FIONREAD, b"\\0\\0\\0\\0"), "little") == 0:
            break
        time.sleep(0.005)
    out.write(data[len(data) // 2 :])
elif mode == "linger":  # answer, close stdout, exit only later
    out.write(answer.encode())
    out.flush()
    os.close(1)
    time.sleep(config["linger"])
    sys.exit(0)
else:
    out.write(answer.encode())
out.flush()
sys.exit(config.get("exit", 0))
"""


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """docker-credential-probe on PATH; returns its config file (write it per test)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "docker-credential-probe"
    program.write_text(f"#!{sys.executable}\n{PROBE}")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    broken = bin_dir / "docker-credential-nointerp"
    broken.write_text("#!/nonexistent/interpreter\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    config = tmp_path / "probe.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ARMIRROR_PROBE_CONFIG", str(config))
    return config


def _configure(config: Path, **settings: object) -> None:
    config.write_text(json.dumps({"secret": SECRET, **settings}))


# -- helpers as programs ------------------------------------------------------------------


def test_an_answer_of_exactly_the_limit_is_read_and_one_byte_more_is_not(probe: Path) -> None:
    _configure(probe, mode="pad", size=HELPER_MAX_OUTPUT)
    assert helper_get("probe", "quay.io") == ("probe", SECRET)
    _configure(probe, mode="pad", size=HELPER_MAX_OUTPUT + 1)
    with pytest.raises(CredentialHelperError, match="docker-credential-probe get printed more"):
        helper_get("probe", "quay.io")


def test_an_answer_written_in_pieces_is_joined_as_written(probe: Path) -> None:
    _configure(probe, mode="split")
    found = helper_get("probe", "quay.io")
    assert found == ("probe", SECRET)
    assert found is not None and found.source == "credential helper docker-credential-probe"


def test_a_helper_that_answers_but_does_not_exit_is_refused(probe: Path) -> None:
    """The time limit covers the whole run: closing stdout early buys no extra time."""
    _configure(probe, mode="linger", linger=20)
    with pytest.raises(CredentialHelperError) as refused:
        helper_get("probe", "quay.io", timeout=3)
    # "answer" only if the helper took all 3 s to start (a loaded machine).
    assert str(refused.value) in (
        "docker-credential-probe get did not exit within 3 s",
        "docker-credential-probe get did not answer within 3 s",
    )
    assert SECRET not in str(refused.value)


def test_a_short_time_limit_is_not_stretched(probe: Path) -> None:
    """Half a second means half a second, also for the wait for the exit."""
    _configure(probe, mode="linger", linger=0.8)
    with pytest.raises(
        CredentialHelperError, match=r"docker-credential-probe get did not (exit|answer) within 0 s"
    ):
        helper_get("probe", "quay.io", timeout=0.5)


def test_a_helper_that_never_answers_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = Path(__file__).resolve().parents[1] / "bin"
    store = tmp_path / "store.json"
    store.write_text(json.dumps({"quay.io": {"behaviour": "hang"}}))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ARMIRROR_TEST_HELPER_STORE", str(store))
    with pytest.raises(CredentialHelperError) as refused:
        helper_get("armirror-test", "quay.io", timeout=1)
    assert str(refused.value) == "docker-credential-armirror-test get did not answer within 1 s"


def test_a_helper_runs_in_its_own_session_and_its_stderr_is_never_shown(
    probe: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Its own session: no controlling terminal to prompt on, and no share of a Ctrl-C
    meant for armirror.  Its stderr may hold the secret, so it goes nowhere."""
    session = tmp_path / "session.json"
    _configure(probe, session_file=str(session), stderr=f"oops {SECRET}")
    assert helper_get("probe", "quay.io") == ("probe", SECRET)
    seen = json.loads(session.read_text())
    assert seen["sid"] == seen["pid"] != os.getsid(0)
    captured = capfd.readouterr()
    assert SECRET not in captured.err and SECRET not in captured.out


@pytest.mark.parametrize(
    ("answer", "found"),
    [
        ({"Username": "robot", "Secret": "s"}, ("robot", "s")),
        ({"Username": "", "Secret": "an-access-token"}, ("", "an-access-token")),
        ({"Username": "robot", "Secret": ""}, ("robot", "")),
        ({"Username": "", "Secret": ""}, None),  # some helpers' way of saying "none"
    ],
)
def test_what_a_helper_answer_means(
    probe: Path, answer: dict[str, object], found: tuple[str, str] | None
) -> None:
    _configure(probe, mode="raw", answer=answer)
    assert helper_get("probe", "quay.io") == found


@pytest.mark.parametrize(
    "answer",
    [
        {"Username": 5, "Secret": "s"},
        {"Username": "robot", "Secret": None},
        {"Username": ["robot"], "Secret": {"a": 1}},
        {"Secret": "s"},
        ["robot", "s"],
    ],
)
def test_an_answer_that_is_not_a_credential_is_refused(probe: Path, answer: object) -> None:
    _configure(probe, mode="raw", answer=answer)
    with pytest.raises(CredentialHelperError) as refused:
        helper_get("probe", "quay.io")
    assert str(refused.value) == (
        "docker-credential-probe get printed something that is not a credential"
    )


def test_an_identity_token_is_refused_with_what_to_do(probe: Path) -> None:
    _configure(probe, mode="raw", answer={"Username": "<token>", "Secret": SECRET})
    with pytest.raises(CredentialHelperError) as refused:
        helper_get("probe", "https://index.docker.io/v1/")
    assert str(refused.value) == (
        "docker-credential-probe holds an identity token for https://index.docker.io/v1/, "
        "which armirror cannot use; log in with a user name and password or access token "
        "instead"
    )


@pytest.mark.parametrize(
    ("text", "status", "outcome"),
    [
        ("Credentials Not Found in keychain", 1, None),
        ("credentials not found", 4, None),
        ("keychain locked", 1, "docker-credential-probe get failed (exit status 1)"),
        ("", 2, "docker-credential-probe get failed (exit status 2)"),
        ("credentials not found", 0, "docker-credential-probe get printed something that is not a credential"),
    ],
)  # fmt: skip
def test_a_helper_that_fails_or_has_nothing(
    probe: Path, text: str, status: int, outcome: str | None
) -> None:
    _configure(probe, mode="text", text=text, exit=status)
    if outcome is None:
        assert helper_get("probe", "quay.io") is None
    else:
        with pytest.raises(CredentialHelperError) as refused:
            helper_get("probe", "quay.io")
        assert str(refused.value) == outcome


@pytest.mark.parametrize(
    ("name", "plain"),
    [("a" * 64, True), ("ecr-login", True), ("x.y_Z9", True), ("a" * 65, False),
     ("-x", False), (".x", False), ("a/b", False), ("a b", False), ("", False)],
)  # fmt: skip
def test_only_plain_helper_names_are_run(name: str, plain: bool) -> None:
    with pytest.raises(CredentialHelperError) as refused:
        helper_get(name, "quay.io")
    if plain:
        assert str(refused.value) == f"docker-credential-{name} is not on PATH"
    else:
        assert str(refused.value) == f"credential helper name {name!r} is not a plain name"


def test_a_helper_that_cannot_start_is_named_with_the_reason(probe: Path) -> None:
    with pytest.raises(CredentialHelperError) as refused:
        helper_get("nointerp", "quay.io")
    assert str(refused.value) == (
        "docker-credential-nointerp could not be started: No such file or directory"
    )


# -- credential files ---------------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _load(tmp_path: Path, auths: dict[str, object], *, docker: bool) -> AuthFile:
    path = tmp_path / ("config.json" if docker else "auth.json")
    path.write_text(json.dumps({"auths": auths}))
    loaded = AuthFile.load(path, namespaces_are_hosts=docker)
    assert loaded is not None
    return loaded


@pytest.mark.parametrize(
    ("entry", "found"),
    [
        ({"auth": _b64("u:p")}, ("u", "p")),
        # Go's base64.StdEncoding (the Docker CLI's) refuses characters outside the
        # alphabet; dropping them would turn a damaged entry into a different password.
        ({"auth": "dT!pw"}, None),
        ({"auth": "dTpw\x00"}, None),
        ({"username": "u", "password": "p"}, ("u", "p")),
        ({"username": "", "password": "p"}, None),
        ({"username": "u", "password": ""}, None),
        ({"username": 5, "password": "p"}, None),
        ({"username": "u", "password": 5}, None),
        ({"password": "p"}, None),
    ],
)
def test_an_auths_entry_is_a_credential_only_when_whole(
    tmp_path: Path, entry: dict[str, object], found: tuple[str, str] | None
) -> None:
    config = _load(tmp_path, {"quay.io": entry}, docker=True)
    assert config.lookup("quay.io", []) == found


def test_an_auths_credential_says_which_file_it_came_from(tmp_path: Path) -> None:
    config = _load(tmp_path, {"quay.io": {"auth": _b64("u:p")}}, docker=True)
    found = config.lookup("quay.io", [])
    assert found is not None and found.source == f"auths in {config.path}"


@pytest.mark.parametrize(
    ("key", "registry"),
    [
        ("quay.io/org/team", "quay.io"),  # the Docker CLI reads a key's host
        ("localhost:5000/v2/", "localhost:5000"),
        ("registry-1.docker.io", "docker.io"),
        ("registry-1.docker.io", "index.docker.io"),
    ],
)
def test_docker_config_keys_name_hosts(tmp_path: Path, key: str, registry: str) -> None:
    config = _load(tmp_path, {key: {"auth": _b64("u:p")}}, docker=True)
    assert config.lookup(registry, []) == ("u", "p")


@pytest.mark.parametrize(
    ("key", "registry", "used"),
    [
        ("quay.io", "quay.io", True),
        ("quay.io/", "quay.io", True),  # a trailing slash still names the host
        ("https://index.docker.io/v1/", "docker.io", True),  # legacy form of a host
        ("http://localhost:5000/v2/", "localhost:5000", True),
        ("quay.io/org", "quay.io", False),  # one namespace: not the whole registry
        ("quay.io/X", "quay.io", False),
        ("/quay.io", "quay.io", False),
    ],
)
def test_containers_auth_file_keys(tmp_path: Path, key: str, registry: str, used: bool) -> None:
    config = _load(tmp_path, {key: {"auth": _b64("u:p")}}, docker=False)
    assert (config.lookup(registry, []) == ("u", "p")) is used


# -- the store: what a refusal says was searched -------------------------------------------


class _NoGoogle(GoogleCredentials):
    def token(self) -> str | None:
        return None


def _config_file(tmp_path: Path, name: str, body: dict[str, object]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(body))
    return path


def test_searched_names_every_file_and_what_went_wrong(tmp_path: Path) -> None:
    first = _config_file(tmp_path, "auth.json", {"credHelpers": {"quay.io": "absent"}})
    second = _config_file(tmp_path, "config.json", {"auths": {}})
    store = CredentialStore(
        files=[DockerConfig(first, hosts_only=False), DockerConfig(second)], google=_NoGoogle()
    )
    assert store.lookup("QUAY.IO") is None
    problem = f"docker-credential-absent is not on PATH (named in {first})"
    assert store.searched("quay.io") == f"looked in {first}, {second}; {problem}"
    assert store.searched("Quay.Io") == f"looked in {first}, {second}; {problem}"
    # An upstream endpoint of quay.io: its problems are recorded under both names.
    assert store.lookup("127.0.0.1:5000", "quay.io") is None
    assert store.searched("127.0.0.1:5000", "QUAY.IO") == (
        f"looked in {first}, {second}; {problem}"
    )
    # The endpoint on its own is another question, with nothing wrong.
    assert store.searched("127.0.0.1:5000") == f"looked in {first}, {second}"
    # Nothing looked up yet: only the places.
    assert store.searched("ghcr.io") == f"looked in {first}, {second}"


def test_searched_lists_each_problem(tmp_path: Path) -> None:
    first = _config_file(tmp_path, "auth.json", {"credHelpers": {"quay.io": "absent"}})
    second = _config_file(tmp_path, "config.json", {"credsStore": "also-absent"})
    store = CredentialStore(
        files=[DockerConfig(first, hosts_only=False), DockerConfig(second)], google=_NoGoogle()
    )
    assert store.lookup("quay.io") is None
    assert store.searched("quay.io") == (
        f"looked in {first}, {second}; "
        f"docker-credential-absent is not on PATH (named in {first}); "
        f"docker-credential-also-absent is not on PATH (named in {second})"
    )


def test_searched_mentions_google_only_where_google_is_asked(tmp_path: Path) -> None:
    store = CredentialStore(files=[], google=_NoGoogle())
    assert store.searched("quay.io") == "looked in no credential files"
    google = "looked in no credential files and Google application default credentials"
    assert store.searched("us-docker.pkg.dev") == google
    assert store.searched("127.0.0.1:5000", "us-docker.pkg.dev") == google
    assert store.searched("127.0.0.1:5000", "quay.io") == "looked in no credential files"
    assert store.lookup("127.0.0.1:5000", "us-docker.pkg.dev") is None


# -- Google application default credentials -------------------------------------------------

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


class _TokenEndpoint:
    """Google's OAuth token endpoint for service accounts (RFC 7523 JWT bearer grant), on
    127.0.0.1: it records each assertion's claims and hands out numbered tokens."""

    def __init__(self, expires_in: int) -> None:
        self.expires_in = expires_in
        self.claims: list[dict[str, object]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
                payload = form["assertion"][0].split(".")[1]
                endpoint.claims.append(json.loads(base64.urlsafe_b64decode(payload + "==")))
                body = json.dumps(
                    {
                        "access_token": f"ya29.local-{len(endpoint.claims)}",
                        "expires_in": endpoint.expires_in,
                        "token_type": "Bearer",
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _service_account(tmp_path: Path, token_uri: str) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = tmp_path / "adc.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "armirror-test",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "armirror@armirror-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    return path


@pytest.fixture
def token_endpoint(request: pytest.FixtureRequest) -> Iterator[_TokenEndpoint]:
    endpoint = _TokenEndpoint(expires_in=getattr(request, "param", 3600))
    yield endpoint
    endpoint.close()


def test_artifact_registry_gets_a_google_access_token_once_per_lifetime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token_endpoint: _TokenEndpoint
) -> None:
    monkeypatch.setenv(
        "GOOGLE_APPLICATION_CREDENTIALS", str(_service_account(tmp_path, token_endpoint.url))
    )
    store = CredentialStore(files=[])
    found = store.lookup("us-docker.pkg.dev")
    assert found == ("oauth2accesstoken", "ya29.local-1")
    assert found is not None and found.source == "Google application default credentials"
    google = store.google
    assert google.token() == "ya29.local-1"  # still valid: not asked again
    assert len(token_endpoint.claims) == 1
    assert token_endpoint.claims[0]["scope"] == CLOUD_PLATFORM
    assert store.lookup("quay.io") is None  # third-party registries never get it
    assert len(token_endpoint.claims) == 1


@pytest.mark.parametrize("token_endpoint", [60], indirect=True)
def test_an_expiring_google_token_is_refreshed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token_endpoint: _TokenEndpoint
) -> None:
    """google-auth counts a token with less than a few minutes left as expired."""
    monkeypatch.setenv(
        "GOOGLE_APPLICATION_CREDENTIALS", str(_service_account(tmp_path, token_endpoint.url))
    )
    google = GoogleCredentials()
    assert google.token() == "ya29.local-1"
    assert google.token() == "ya29.local-2"
    assert [claims["scope"] for claims in token_endpoint.claims] == [CLOUD_PLATFORM] * 2


def test_without_google_credentials_none_and_not_asked_again(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    token_endpoint: _TokenEndpoint,
) -> None:
    """Looking for them can mean probing a metadata server: once per process is enough."""
    adc = tmp_path / "adc.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    caplog.set_level(logging.INFO, logger="armirror.registry.credentials")
    google = GoogleCredentials()
    assert google.token() is None
    assert [
        r.getMessage() for r in caplog.records if r.name == "armirror.registry.credentials"
    ] == ["no Google application default credentials: DefaultCredentialsError"]
    assert _service_account(tmp_path, token_endpoint.url) == adc  # now they exist
    assert google.token() is None
    assert token_endpoint.claims == []
    assert GoogleCredentials().token() == "ya29.local-1"  # a new process would find them


def test_credential_repr_never_shows_the_secret() -> None:
    credential = Credential("u", SECRET, "auths in /x")
    assert SECRET not in repr(credential) and SECRET not in str(credential)
    assert credential == ("u", SECRET) and credential.username == "u"


# -- the store: sources in order, endpoints, and how long an answer is kept ----------------

BIN = Path(__file__).resolve().parents[1] / "bin"


@pytest.fixture
def test_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """tests/bin/docker-credential-armirror-test on PATH, with its store and request log."""
    paths = {"store": tmp_path / "helper-store.json", "log": tmp_path / "helper.log"}
    paths["store"].write_text("{}")
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ARMIRROR_TEST_HELPER_STORE", str(paths["store"]))
    monkeypatch.setenv("ARMIRROR_TEST_HELPER_LOG", str(paths["log"]))
    return paths


def _helper_asked(paths: dict[str, Path]) -> list[str]:
    if not paths["log"].exists():
        return []
    return [json.loads(line)["server"] for line in paths["log"].read_text().splitlines()]


class _Clock:
    """time.monotonic for credentials.py only, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_an_answer_is_reused_for_five_minutes_then_asked_again(
    tmp_path: Path,
    test_helper: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = _Clock()
    monkeypatch.setattr("armirror.registry.credentials.time", clock)
    test_helper["store"].write_text(json.dumps({"quay.io": {"Username": "r", "Secret": "s1"}}))
    config = _config_file(
        tmp_path,
        "config.json",
        {"credHelpers": {"quay.io": "armirror-test", "ghcr.io": "absent"}},
    )
    store = CredentialStore(files=[DockerConfig(config)], google=_NoGoogle())
    assert store.lookup("QUAY.IO") == ("r", "s1")
    test_helper["store"].write_text(json.dumps({"quay.io": {"Username": "r", "Secret": "s2"}}))
    clock.now += 299
    assert store.lookup("quay.io") == ("r", "s1")  # one helper run per registry and run
    assert _helper_asked(test_helper) == ["quay.io"]
    clock.now += 1  # 300 s after the first answer it is stale
    assert store.lookup("quay.io") == ("r", "s2")
    assert _helper_asked(test_helper) == ["quay.io", "quay.io"]
    # "None" is remembered too, and its problem logged once, naming the registry.
    caplog.set_level(logging.WARNING, logger="armirror.registry.credentials")
    assert store.lookup("127.0.0.1:5000", "ghcr.io") is None
    assert store.lookup("127.0.0.1:5000", "GHCR.IO") is None
    assert [r.getMessage() for r in caplog.records] == [
        f"credentials for ghcr.io: docker-credential-absent is not on PATH (named in {config})"
    ]
    caplog.clear()
    assert store.lookup("ghcr.io") is None
    assert [r.getMessage() for r in caplog.records] == [
        f"credentials for ghcr.io: docker-credential-absent is not on PATH (named in {config})"
    ]


def test_explicit_credentials_win_and_follow_the_registry_to_its_own_endpoints(
    tmp_path: Path,
) -> None:
    config = _config_file(
        tmp_path,
        "config.json",
        {
            "auths": {
                "registry-1.docker.io": {"auth": _b64("file:1")},
                "quay.io": {"auth": _b64("q:1")},
            }
        },
    )
    store = CredentialStore(
        files=[DockerConfig(config)],
        google=_NoGoogle(),
        explicit={"Docker.IO": ("hub", "pw"), "127.0.0.1:5000": ("local", "pw")},
    )
    for endpoint in ("registry-1.docker.io", "INDEX.DOCKER.IO", "localhost:5001", "[::1]:5000"):
        found = store.lookup(endpoint, "docker.io")
        assert found == ("hub", "pw"), endpoint
        assert found is not None and found.source == "explicit credentials"
    assert store.lookup("docker.io") == ("hub", "pw")
    # A mirror is not Docker Hub: neither the explicit nor the file's credential goes there.
    assert store.lookup("mirror.example.com", "docker.io") is None
    assert store.lookup("quay.example.com", "quay.io") is None
    # The endpoint's own credential comes before its registry's.
    assert store.lookup("127.0.0.1:5000", "quay.io") == ("local", "pw")
    assert store.lookup("127.0.0.2:5000", "quay.io") == ("q", "1")


def test_files_are_read_in_order_and_each_for_the_endpoint_then_the_registry(
    tmp_path: Path,
) -> None:
    first = _config_file(tmp_path, "first.json", {"auths": {"quay.io": {"auth": _b64("first:1")}}})
    second = _config_file(
        tmp_path,
        "second.json",
        {"auths": {"127.0.0.1:5000": {"auth": _b64("second:2")}, "ghcr.io": {"auth": _b64("g:2")}}},
    )
    store = CredentialStore(files=[DockerConfig(first), DockerConfig(second)], google=_NoGoogle())
    # The first file with any answer wins, even if a later one names the endpoint itself.
    found = store.lookup("127.0.0.1:5000", "quay.io")
    assert found == ("first", "1") and found.source == f"auths in {first}"
    assert store.lookup("127.0.0.1:5000", "ghcr.io") == ("second", "2")
    assert store.lookup("ghcr.io") == ("g", "2")
    both = _config_file(
        tmp_path,
        "both.json",
        {"auths": {"quay.io": {"auth": _b64("reg:1")}, "127.0.0.1:5000": {"auth": _b64("ep:1")}}},
    )
    store = CredentialStore(files=[DockerConfig(both)], google=_NoGoogle())
    assert store.lookup("127.0.0.1:5000", "quay.io") == ("ep", "1")


def test_google_is_the_last_source_and_only_for_google_registries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token_endpoint: _TokenEndpoint
) -> None:
    monkeypatch.setenv(
        "GOOGLE_APPLICATION_CREDENTIALS", str(_service_account(tmp_path, token_endpoint.url))
    )
    config = _config_file(
        tmp_path, "config.json", {"auths": {"eu.gcr.io": {"auth": _b64("_json_key:k")}}}
    )
    store = CredentialStore(files=[DockerConfig(config)])
    assert store.lookup("eu.gcr.io") == ("_json_key", "k")
    assert token_endpoint.claims == []
    assert store.lookup("quay.io") is None
    assert store.lookup("127.0.0.1:5000") is None
    assert store.lookup("127.0.0.1:5000", "quay.io") is None
    assert token_endpoint.claims == []
    # A local stand-in for Artifact Registry gets the Google token, as the registry would.
    assert store.lookup("127.0.0.1:5000", "europe-docker.pkg.dev") == (
        "oauth2accesstoken",
        "ya29.local-1",
    )
    assert store.lookup("gcr.io") == ("oauth2accesstoken", "ya29.local-1")
    assert len(token_endpoint.claims) == 1


def test_an_empty_google_token_is_no_credential(tmp_path: Path) -> None:
    class EmptyToken(GoogleCredentials):
        def token(self) -> str | None:
            return ""

    assert CredentialStore(files=[], google=EmptyToken()).lookup("us-docker.pkg.dev") is None


def test_the_default_files_follow_the_environment(tmp_path: Path) -> None:
    auth_file = _config_file(
        tmp_path, "auth.json", {"auths": {"quay.io/org": {"auth": _b64("ns:1")}}}
    )
    docker_dir = tmp_path / "docker"
    docker_dir.mkdir()
    _config_file(docker_dir, "config.json", {"auths": {"quay.io/org": {"auth": _b64("dk:1")}}})
    env = {
        "HOME": str(tmp_path / "home"),
        "REGISTRY_AUTH_FILE": str(auth_file),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "DOCKER_CONFIG": str(docker_dir),
    }
    store = CredentialStore(env=env, google=_NoGoogle())
    assert [config.path for config in store.files] == [
        auth_file,
        tmp_path / "xdg" / "containers" / "auth.json",
        docker_dir / "config.json",
    ]
    # The containers file's namespace key is skipped; the Docker config reads it as a host.
    found = store.lookup("quay.io")
    assert found == ("dk", "1")
    assert store.searched("quay.io") == (
        f"looked in {auth_file}, {tmp_path / 'xdg' / 'containers' / 'auth.json'}, "
        f"{docker_dir / 'config.json'}"
    )


def test_docker_config_reads_either_format_and_reports_problems(tmp_path: Path) -> None:
    path = _config_file(
        tmp_path,
        "auth.json",
        {"auths": {"quay.io/org": {"auth": _b64("ns:1")}}, "credHelpers": {"ghcr.io": "absent"}},
    )
    assert DockerConfig(path).lookup("quay.io") == ("ns", "1")
    assert DockerConfig(path, hosts_only=False).lookup("quay.io") is None
    errors: list[str] = []
    assert DockerConfig(path).lookup("ghcr.io", errors) is None
    assert errors == [f"docker-credential-absent is not on PATH (named in {path})"]
    assert DockerConfig(path).lookup("ghcr.io") is None  # no list given: still no error


# -- reading a credential file ----------------------------------------------------------------


def test_a_file_of_exactly_one_mebibyte_is_read_and_a_larger_one_is_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from armirror.registry.credential_sources import MAX_AUTH_FILE_BYTES

    body = json.dumps({"auths": {"quay.io": {"auth": _b64("u:p")}}}).encode()
    path = tmp_path / "config.json"
    path.write_bytes(body.ljust(MAX_AUTH_FILE_BYTES))
    loaded = AuthFile.load(path, namespaces_are_hosts=True)
    assert loaded is not None and loaded.lookup("quay.io", []) == ("u", "p")
    path.write_bytes(body.ljust(MAX_AUTH_FILE_BYTES + 1))
    assert AuthFile.load(path, namespaces_are_hosts=True) is None
    assert [r.getMessage() for r in caplog.records] == [
        f"ignoring credential file {path}: larger than 1 MiB"
    ]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "JSONDecodeError"),
        (b'{"auths": "\xff"}', "UnicodeDecodeError"),
        ("[]", None),
        ('"auths"', None),
    ],
)
def test_an_unreadable_file_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str | bytes, why: str | None
) -> None:
    path = tmp_path / "config.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    assert AuthFile.load(path, namespaces_are_hosts=True) is None
    expected = (
        f"ignoring unreadable credential file {path}: {why}"
        if why
        else f"ignoring credential file {path}: not a JSON object"
    )
    assert [r.getMessage() for r in caplog.records] == [expected]
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_a_directory_or_missing_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert AuthFile.load(tmp_path / "absent.json", namespaces_are_hosts=True) is None
    assert caplog.records == []  # no file is the usual case: nothing to say
    assert AuthFile.load(tmp_path, namespaces_are_hosts=True) is None
    assert [r.getMessage() for r in caplog.records] == [
        f"ignoring unreadable credential file {tmp_path}: IsADirectoryError"
    ]


def test_the_first_spelling_of_a_host_in_a_file_wins(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": _b64("legacy:1")},
                    "index.docker.io": {"auth": _b64("plain:2")},
                },
                "credHelpers": {"https://quay.io": "first", "quay.io": "second"},
            }
        )
    )
    loaded = AuthFile.load(path, namespaces_are_hosts=True)
    assert loaded is not None
    assert loaded.lookup("docker.io", []) == ("legacy", "1")
    assert loaded.cred_helpers == {"quay.io": "first"}


@pytest.mark.parametrize(
    "sections",
    [
        {"credsStore": ""},
        {"credsStore": 7},
        {"credHelpers": {"quay.io": ""}},
        {"credHelpers": {"quay.io": None}},
        {"credHelpers": ["quay.io"]},
    ],
)
def test_empty_or_odd_helper_names_are_no_helper(
    tmp_path: Path, sections: dict[str, object]
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"quay.io": {"auth": _b64("u:p")}}, **sections}))
    loaded = AuthFile.load(path, namespaces_are_hosts=True)
    assert loaded is not None
    errors: list[str] = []
    assert loaded.lookup("quay.io", errors) == ("u", "p")
    assert errors == []
    assert loaded.creds_store is None and loaded.cred_helpers == {}


def test_a_creds_store_is_kept_by_name(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps({"credsStore": "desktop", "auths": {"quay.io": {"auth": _b64("u:p")}}})
    )
    loaded = AuthFile.load(path, namespaces_are_hosts=True)
    assert loaded is not None and loaded.creds_store == "desktop"
    errors: list[str] = []
    assert loaded.lookup("quay.io", errors) is None  # the store hides auths, as in docker
    assert errors == [f"docker-credential-desktop is not on PATH (named in {path})"]
