"""Image references: normalisation, validation messages, classification, destinations."""

from __future__ import annotations

import pytest
from armirror.reference import (
    InvalidReference,
    Reference,
    RegistryClass,
    classify_registry,
    destination_for,
    host_path_component,
    matches,
    parse,
    parse_prefix,
    try_parse,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SHA = "sha256:" + "ab" * 32
SHA512 = "sha512:" + "cd" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", "latest", None),
        ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
        ("library/nginx", "docker.io", "library/nginx", "latest", None),
        ("docker.io/nginx", "docker.io", "library/nginx", "latest", None),
        ("docker.io/library/nginx:1", "docker.io", "library/nginx", "1", None),
        ("index.docker.io/nginx", "docker.io", "library/nginx", "latest", None),
        ("index.docker.io/bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
        ("registry-1.docker.io/grafana/grafana", "docker.io", "grafana/grafana", "latest", None),
        ("bitnami/redis", "docker.io", "bitnami/redis", "latest", None),
        ("a/b/c", "docker.io", "a/b/c", "latest", None),
        ("localhost/x", "localhost", "x", "latest", None),
        ("localhost:5000/x", "localhost:5000", "x", "latest", None),
        ("localhost:5000/x:v1", "localhost:5000", "x", "v1", None),
        ("127.0.0.1:5000/team/app:1", "127.0.0.1:5000", "team/app", "1", None),
        (
            "quay.io/prometheus/node-exporter:v1.8.0",
            "quay.io",
            "prometheus/node-exporter",
            "v1.8.0",
            None,
        ),
        ("ghcr.io/o/r__x.y-z:T_1.0-rc", "ghcr.io", "o/r__x.y-z", "T_1.0-rc", None),
        # The registry host is the only place uppercase is allowed; it is lowercased.
        ("Quay.IO/a/b:1", "quay.io", "a/b", "1", None),
        ("MyHost:5000/x", "myhost:5000", "x", "latest", None),
        ("DOCKER.IO/team/list:3", "docker.io", "team/list", "3", None),
        ("Docker.Io/team/list:3", "docker.io", "team/list", "3", None),
        ("DOCKER.IO/nginx", "docker.io", "library/nginx", "latest", None),
        ("Index.Docker.IO/nginx:1", "docker.io", "library/nginx", "1", None),
        ("LOCALHOST/x", "localhost", "x", "latest", None),
        ("LocalHost:5000/x:T", "localhost:5000", "x", "T", None),
        # A 64-hex name is refused alone, not with a host or a tag (as Docker does).
        ("docker.io/" + "1a3f" * 16, "docker.io", "library/" + "1a3f" * 16, "latest", None),
        ("1a3f" * 16 + ":1", "docker.io", "library/" + "1a3f" * 16, "1", None),
        ("1a3f" * 15 + "1a3", "docker.io", "library/" + "1a3f" * 15 + "1a3", "latest", None),
        ("1a3f" * 16 + "0", "docker.io", "library/" + "1a3f" * 16 + "0", "latest", None),
        # A lone "host:port" has no "/": Docker reads it as repository "localhost", tag "5000".
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),
        # tag and digest are both kept; a digest alone gets no tag.
        (f"nginx:1.25@{SHA}", "docker.io", "library/nginx", "1.25", SHA),
        (f"nginx@{SHA}", "docker.io", "library/nginx", None, SHA),
        (f"localhost:5000/x@{SHA}", "localhost:5000", "x", None, SHA),
        (f"gcr.io/p/i:t@{SHA512}", "gcr.io", "p/i", "t", SHA512),
    ],
)
def test_normalisation(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse(text)
    assert ref == Reference(registry, repository, tag, digest)
    assert parse(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "familiar"),
    [
        ("nginx", "nginx:latest"),
        ("docker.io/library/foo", "foo:latest"),
        ("docker.io/foo:1", "foo:1"),
        # library/ goes only from a one-component name, or it names another repository
        ("docker.io/library/foo/bar", "library/foo/bar:latest"),
        ("library/foo/bar:2", "library/foo/bar:2"),
        ("docker.io/store/foo/bar", "store/foo/bar:latest"),
        ("fooo/bar", "fooo/bar:latest"),
        ("other/library", "other/library:latest"),
        ("quay.io/library/foo", "quay.io/library/foo:latest"),
        ("127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase:latest"),
        ("Example.com:8000/private/moonbase", "example.com:8000/private/moonbase:latest"),
        (f"busybox@{SHA}", f"busybox@{SHA}"),
        (f"a/b:t@{SHA}", f"a/b:t@{SHA}"),
    ],
)
def test_familiar(text: str, familiar: str) -> None:
    ref = parse(text)
    assert ref.familiar() == familiar
    assert parse(familiar) == ref


def test_str_is_fully_qualified_and_familiar_is_short() -> None:
    ref = parse(f"nginx:1.25@{SHA}")
    assert str(ref) == f"docker.io/library/nginx:1.25@{SHA}"
    assert ref.familiar() == f"nginx:1.25@{SHA}"
    assert ref.name == "docker.io/library/nginx"
    assert ref.identifier == SHA
    assert parse("nginx:1.25").identifier == "1.25"
    assert str(parse("localhost:5000/x")) == "localhost:5000/x:latest"


_IMAGE_ID = "a 64-digit hex string is an image ID, not an image name"
_LOWERCASE = "repository name must be lowercase"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty reference"),
        ("1a3f" * 16, _IMAGE_ID),
        ("0123456789abcdef" * 4, _IMAGE_ID),
        ("FOO/bar", _LOWERCASE),
        ("Docker/docker", _LOWERCASE),
        (" nginx", "contains whitespace"),
        ("nginx\n", "contains whitespace"),
        ("ngi nx", "contains whitespace"),
        ("NGINX", _LOWERCASE),
        ("quay.io/Prometheus/x", _LOWERCASE),
        ("docker.io/Library/nginx", _LOWERCASE),
        ("nginx:", "malformed tag ''"),
        ("nginx:-x", "malformed tag '-x'"),
        ("nginx:.x", "malformed tag '.x'"),
        ("nginx:a/b", "malformed registry host 'nginx:a'"),
        # a ':' followed by '/' is a port separator, never the start of a tag
        ("localhost:/x", "malformed registry host 'localhost:'"),
        # a tag starts right after the last ':', whatever comes before it
        ("team/app/:1", "malformed path component ''"),
        (":tag", "missing repository name"),
        ("quay.io/", "missing repository path after the registry"),
        ("a//b", "malformed path component ''"),
        ("-a", "malformed path component '-a'"),
        ("a-", "malformed path component 'a-'"),
        ("a___b", "malformed path component 'a___b'"),
        ("a..b/c", "malformed registry host 'a..b'"),
        ("host:port/x", "malformed registry host 'host:port'"),
        ("-bad.io/x", "malformed registry host '-bad.io'"),
        ("[::1]:5000/x", "IPv6 registry addresses are not supported"),
        ("nginx@", "malformed digest ''"),
        ("nginx@sha256", "malformed digest 'sha256'"),
        ("nginx@sha256:abc", "malformed digest 'sha256:abc'"),
        ("nginx@sha256:" + "g" * 64, "malformed digest 'sha256:" + "g" * 64 + "'"),
        ("nginx@sha256:" + "A" * 64, "a sha256 digest needs exactly 64 lowercase hex digits"),
        ("nginx@sha256:" + "a" * 65, "a sha256 digest needs exactly 64 lowercase hex digits"),
        ("nginx@sha512:" + "a" * 64, "a sha512 digest needs exactly 128 lowercase hex digits"),
        ("nginx@" + "a" * 64, "malformed digest '" + "a" * 64 + "'"),
        (f"nginx@{SHA}@{SHA}", f"malformed digest '{SHA}@{SHA}'"),
    ],
)
def test_malformed_input_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse(text)
    assert info.value.problem == problem
    assert str(info.value) == f"invalid image reference {text!r}: {problem}"
    assert info.value.reference == text
    assert isinstance(info.value, ValueError)


def test_non_string_input_is_an_invalid_reference() -> None:
    for value in (None, 42, b"nginx"):
        with pytest.raises(InvalidReference) as info:
            parse(value)  # type: ignore[arg-type]
        assert info.value.reference == value
        assert info.value.problem == "a reference must be a string"


def test_tag_length_limit() -> None:
    assert parse("x:" + "t" * 128).tag == "t" * 128
    with pytest.raises(InvalidReference, match="tag longer than 128 characters"):
        parse("x:" + "t" * 129)
    # 128 characters is not too long: a bad first character is what is wrong
    with pytest.raises(InvalidReference) as info:
        parse("x:." + "t" * 127)
    assert info.value.problem == "malformed tag '." + "t" * 127 + "'"


def test_name_length_limit_counts_the_normalised_name() -> None:
    # "docker.io/" is 10 characters: a 245 character repository is exactly 255.
    path = "o/" + "a" * 243
    assert len(parse(path).name) == 255
    with pytest.raises(InvalidReference, match="name longer than 255 characters"):
        parse(path + "a")
    # Normalisation adds "docker.io/library/" (18): a short-looking name may be too long.
    assert len(parse("a" * 237).name) == 255
    with pytest.raises(InvalidReference) as info:
        parse("a" * 238)
    assert (info.value.reference, info.value.problem) == (
        "a" * 238,
        "name longer than 255 characters",
    )
    with pytest.raises(InvalidReference, match="name longer than 255 characters"):
        parse("quay.io/" + "a" * 300 + ":tag")
    # as written: 255 characters is the limit, not over it
    assert parse("quay.io/" + "a" * 247) == Reference("quay.io", "a" * 247, "latest")
    too_long = "quay.io/" + "a" * 248 + ":1"
    with pytest.raises(InvalidReference) as info:
        parse(too_long)
    assert (info.value.reference, info.value.problem) == (
        too_long,
        "name longer than 255 characters",
    )


@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        ("us-docker.pkg.dev", RegistryClass.ARTIFACT_REGISTRY),
        ("europe-west1-docker.pkg.dev", RegistryClass.ARTIFACT_REGISTRY),
        ("docker.pkg.dev", RegistryClass.ARTIFACT_REGISTRY),
        ("Docker.Pkg.Dev:443", RegistryClass.ARTIFACT_REGISTRY),
        ("US-Docker.PKG.dev", RegistryClass.ARTIFACT_REGISTRY),
        ("gcr.io", RegistryClass.CONTAINER_REGISTRY),
        ("eu.gcr.io", RegistryClass.CONTAINER_REGISTRY),
        ("us.gcr.io:443", RegistryClass.CONTAINER_REGISTRY),
        ("docker.io", RegistryClass.THIRD_PARTY),
        ("quay.io", RegistryClass.THIRD_PARTY),
        ("ghcr.io", RegistryClass.THIRD_PARTY),
        ("registry.k8s.io", RegistryClass.THIRD_PARTY),
        ("localhost:5000", RegistryClass.THIRD_PARTY),
        ("notgcr.io", RegistryClass.THIRD_PARTY),
        ("docker.pkg.dev.example.com", RegistryClass.THIRD_PARTY),
        ("mirror.gcr.io.evil.com", RegistryClass.THIRD_PARTY),
    ],
)
def test_classify(registry: str, expected: RegistryClass) -> None:
    assert classify_registry(registry) is expected


def test_reference_classification() -> None:
    assert parse("nginx").third_party
    assert not parse("us-docker.pkg.dev/p/r/i:1").third_party
    assert parse("us-docker.pkg.dev/p/r/i:1").registry_class is RegistryClass.ARTIFACT_REGISTRY
    assert parse("gcr.io/p/i").registry_class is RegistryClass.CONTAINER_REGISTRY


@pytest.mark.parametrize(
    ("source", "prefix", "expected"),
    [
        (
            "nginx:1.14.2",
            "us-docker.pkg.dev/p/mirror",
            "us-docker.pkg.dev/p/mirror/docker.io/library/nginx:1.14.2",
        ),
        (
            "nginx:1.14.2",
            "us-docker.pkg.dev/p/mirror/",
            "us-docker.pkg.dev/p/mirror/docker.io/library/nginx:1.14.2",
        ),
        (
            f"quay.io/a/b:1@{SHA}",
            "us-docker.pkg.dev/p/mirror",
            f"us-docker.pkg.dev/p/mirror/quay.io/a/b:1@{SHA}",
        ),
        (
            f"ghcr.io/o/r@{SHA}",
            "localhost:5000/m",
            f"localhost:5000/m/ghcr.io/o/r@{SHA}",
        ),
        # host:port -> host_port, and the host is lowercased: a valid path component.
        ("localhost:5000/x:1", "us-docker.pkg.dev/p/m", "us-docker.pkg.dev/p/m/localhost_5000/x:1"),
        (
            "127.0.0.1:5000/t/a",
            "us-docker.pkg.dev/p/m",
            "us-docker.pkg.dev/p/m/127.0.0.1_5000/t/a:latest",
        ),
        ("Quay.IO:443/a", "us-docker.pkg.dev/p/m", "us-docker.pkg.dev/p/m/quay.io_443/a:latest"),
    ],
)
def test_destination_for(source: str, prefix: str, expected: str) -> None:
    destination = destination_for(parse(source), prefix)
    assert str(destination) == expected
    assert parse(expected) == destination


def test_host_with_port_never_collides_with_a_host() -> None:
    assert host_path_component("localhost:5000") == "localhost_5000"
    assert host_path_component("localhost:5000") != host_path_component("localhost")
    a = destination_for(parse("localhost:5000/x"), "gcr.io/p")
    b = destination_for(parse("localhost/x"), "gcr.io/p")
    assert a != b


def test_destination_too_long() -> None:
    source = parse("quay.io/" + "a" * 240)
    with pytest.raises(InvalidReference) as info:
        destination_for(source, "us-docker.pkg.dev/project/repository")
    # the error names the destination that would have been too long
    assert info.value.reference == "us-docker.pkg.dev/project/repository/quay.io/" + "a" * 240
    assert info.value.problem == "destination name longer than 255 characters"


_NO_HOST = "a destination prefix needs a registry host and a path"
_NO_TAG = "a destination prefix takes no tag or digest"


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        ("mirror", _NO_HOST),
        ("us-docker.pkg.dev", _NO_HOST),
        ("us-docker.pkg.dev/", _NO_HOST),
        # the host is the first component: a dot further on does not make one
        ("mirror/team.example/images", _NO_HOST),
        ("us-docker.pkg.dev/p:1", _NO_TAG),
        (f"us-docker.pkg.dev/p@{SHA}", _NO_TAG),
        # an "@" says the same, even with no ":" after it to give it away
        ("us-docker.pkg.dev/p@latest", _NO_TAG),
        ("us-docker.pkg.dev/P/x", _LOWERCASE),
        # nothing is trimmed from a prefix but trailing slashes
        ("us-docker.pkg.dev/p/mirrorX", _LOWERCASE),
    ],
)
def test_bad_prefix(prefix: str, problem: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_prefix(prefix)
    assert (info.value.reference, info.value.problem) == (prefix, problem)
    with pytest.raises(InvalidReference) as info:
        destination_for(parse("nginx"), prefix)
    assert info.value.problem == problem


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        ("docker.io/team/list:3", "docker.io/team/*", True),
        ("DOCKER.IO/team/list:3", "docker.io/team/*", True),
        ("Docker.Io/team/list:3", "docker.io/team/*", True),
        ("docker.io/team/list:3", "DOCKER.IO/team/*", True),
        ("docker.io/team/list:3", "index.docker.io/team/*", True),
        ("team/list:3", "Registry-1.Docker.io/team/list:3", True),
        ("docker.io/team/list:3", "docker.io/other/*", False),
        # a bare host names the whole registry, in any case
        ("quay.io/a/b:1", "quay.io", True),
        ("Quay.IO/a/b:1", "QUAY.IO", True),
        ("quay.io/a/b:1", "quay.i", False),
        ("quay.io/a/b:1", "ghcr.io", False),
        ("localhost:5000/x", "LOCALHOST:5000", True),
        ("localhost:5000/x", "localhost", False),
        # name, name:tag, name@digest and name:tag@digest are all tried
        ("nginx:latest", "docker.io/library/*:latest", True),
        ("nginx", "docker.io/library/*:latest", True),
        (f"nginx:latest@{SHA}", "docker.io/library/*:latest", True),
        (f"nginx:1.25@{SHA}", "docker.io/library/*:latest", False),
        (f"nginx@{SHA}", "docker.io/library/*:latest", False),
        (f"nginx:latest@{SHA}", f"docker.io/library/nginx@{SHA}", True),
        (f"nginx@{SHA}", f"docker.io/library/nginx@{SHA}", True),
        (f"nginx:1@{SHA}", f"docker.io/library/nginx:1@{SHA}", True),
        (f"nginx:1@{SHA}", f"docker.io/library/nginx:2@{SHA}", False),
        (f"nginx:1@{SHA}", "docker.io/library/nginx", True),
        (f"nginx:1@{SHA}", "docker.io/library/nginx:1", True),
        ("nginx:1", "docker.io/library/nginx:2", False),
        ("nginx:1", "docker.io/library/ngin", False),
        # globs are case-sensitive beyond the host: tags keep their case
        ("nginx:Alpha", "docker.io/library/nginx:alpha", False),
        ("nginx:Alpha", "docker.io/library/nginx:Alpha", True),
    ],
)
def test_matches(text: str, pattern: str, expected: bool) -> None:
    assert matches(parse(text), [pattern]) is expected
    assert matches(parse(text), ("ghcr.io/none", pattern)) is expected
    assert matches(parse(text), []) is False


def test_one_image_has_one_destination_however_its_host_is_spelled() -> None:
    spellings = ["docker.io/team/list:3", "DOCKER.IO/team/list:3", "Docker.Io/team/list:3"]
    destinations = {str(destination_for(parse(s), "us-docker.pkg.dev/p/m")) for s in spellings}
    assert destinations == {"us-docker.pkg.dev/p/m/docker.io/team/list:3"}
    assert parse_prefix("US-Docker.PKG.dev/p/m") == Reference("us-docker.pkg.dev", "p/m")


# -- properties --------------------------------------------------------------------------

REFERENCE_ALPHABET = "abcxyzABZ0129:/@._-_[] \t\u00e9\u0131"


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.text(REFERENCE_ALPHABET, max_size=80)))
def test_parse_returns_or_raises_invalid_reference(text: str) -> None:
    try:
        ref = parse(text)
    except InvalidReference as exc:
        assert str(exc)
        return
    assert isinstance(ref, Reference)
    assert parse(str(ref)) == ref


_SEPARATOR = st.sampled_from([".", "_", "__", "-", "--"])
_ALNUM = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)


@st.composite
def components(draw: st.DrawFn, *, dots: bool = True) -> str:
    parts = [draw(_ALNUM)]
    for _ in range(draw(st.integers(0, 2))):
        separator = draw(_SEPARATOR)
        if separator == "." and not dots:
            separator = "-"
        parts += [separator, draw(_ALNUM)]
    return "".join(parts)


_LABEL = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
_HOSTS = st.one_of(
    st.just("localhost"),
    st.sampled_from(["docker.io", "index.docker.io", "quay.io", "ghcr.io", "us-docker.pkg.dev"]),
    st.lists(_LABEL, min_size=2, max_size=3).map(".".join),
    _LABEL.filter(lambda s: s != "localhost").map(lambda s: s + ":1"),
)
_PORTS = st.one_of(st.none(), st.integers(1, 65535).map(str))
_TAGS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_DIGESTS = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex()),
    st.binary(min_size=64, max_size=64).map(lambda b: "sha512:" + b.hex()),
)


@st.composite
def valid_references(draw: st.DrawFn) -> str:
    host = draw(st.one_of(st.none(), _HOSTS))
    if host is not None and ":" not in host:
        port = draw(_PORTS)
        host = f"{host}:{port}" if port else host
    path = [draw(components(dots=host is not None)) for _ in range(draw(st.integers(1, 3)))]
    text = "/".join(path) if host is None else f"{host}/{'/'.join(path)}"
    tag, digest = draw(st.one_of(st.none(), _TAGS)), draw(st.one_of(st.none(), _DIGESTS))
    if tag:
        text += f":{tag}"
    if digest:
        text += f"@{digest}"
    return text


@settings(max_examples=400)
@given(valid_references())
def test_valid_references_round_trip(text: str) -> None:
    ref = parse(text)
    again = parse(str(ref))
    assert again == ref
    assert str(again) == str(ref)
    # The parts survive normalisation.
    if "@" in text:
        assert ref.digest == text.rsplit("@", 1)[1]
    assert ref.tag or ref.digest
    assert ref.repository.split("/")[-1] in text


@settings(max_examples=200)
@given(valid_references(), st.sampled_from(["us-docker.pkg.dev/p/mirror", "localhost:5000/m/n"]))
def test_destinations_are_valid_references(text: str, prefix: str) -> None:
    source = parse(text)
    try:
        destination = destination_for(source, prefix)
    except InvalidReference as exc:
        assert "longer than 255" in str(exc)
        return
    assert parse(str(destination)) == destination
    assert (destination.tag, destination.digest) == (source.tag, source.digest)


# -- the small parts, pinned (issue 18 mutates them) ------------------------------------


def test_identifier_tag_and_digest_helpers() -> None:
    bare = Reference("quay.io", "a/b")
    assert bare.identifier == "latest"
    assert str(bare) == "quay.io/a/b" and bare.familiar() == "quay.io/a/b"
    tagged = bare.with_tag("1")
    assert tagged == Reference("quay.io", "a/b", "1", None) and tagged.identifier == "1"
    pinned = tagged.with_digest(SHA)
    assert pinned == Reference("quay.io", "a/b", "1", SHA) and pinned.identifier == SHA
    assert str(pinned) == f"quay.io/a/b:1@{SHA}"
    assert str(pinned.with_tag(None)) == f"quay.io/a/b@{SHA}"
    assert pinned.with_digest(None) == tagged
    assert pinned.name == "quay.io/a/b"


def test_invalid_reference_carries_the_input_and_the_problem() -> None:
    with pytest.raises(InvalidReference) as info:
        parse("a//b")
    assert info.value.reference == "a//b"
    assert info.value.problem == "malformed path component ''"
    assert str(info.value) == "invalid image reference 'a//b': malformed path component ''"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # any registered algorithm with 32+ hex digits is kept as written
        ("x@blake3:" + "c" * 64, Reference("docker.io", "library/x", None, "blake3:" + "c" * 64)),
        ("x@sha256:" + "0" * 64, Reference("docker.io", "library/x", None, "sha256:" + "0" * 64)),
        ("LOCALHOST/x:1", Reference("localhost", "x", "1")),
        ("Registry-1.Docker.IO/a/b", Reference("docker.io", "a/b", "latest")),
        ("registry.hub.docker.com/x", Reference("docker.io", "library/x", "latest")),
        ("quay.io:443/a/b", Reference("quay.io:443", "a/b", "latest")),
        ("a" * 64 + "g", Reference("docker.io", "library/" + "a" * 64 + "g", "latest")),
    ],
)
def test_more_normalisation(text: str, expected: Reference) -> None:
    assert parse(text) == expected
    assert parse(str(expected)) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("nginx@md5:" + "a" * 31, "malformed digest"),
        ("nginx@1sha:" + "a" * 64, "malformed digest"),
        ("\tnginx", "contains whitespace"),
        ("nginx ", "contains whitespace"),
        ("A" * 64, "must be lowercase"),
        ("quay.io/" + "a" * 248, "name longer than 255 characters"),
    ],
)
def test_more_refusals(text: str, problem: str) -> None:
    with pytest.raises(InvalidReference, match=problem):
        parse(text)


def test_try_parse_and_host_path_component() -> None:
    assert try_parse("nginx") == Reference("docker.io", "library/nginx", "latest")
    assert try_parse("NGINX") is None
    assert try_parse(None) is None  # type: ignore[arg-type]
    assert host_path_component("Quay.IO") == "quay.io"
    assert host_path_component("a.io:5000") == "a.io_5000"
    assert host_path_component("a.io") == "a.io"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("us-docker.pkg.dev/p/r", Reference("us-docker.pkg.dev", "p/r")),
        ("us-docker.pkg.dev/p/r//", Reference("us-docker.pkg.dev", "p/r")),
        ("localhost:5000/m", Reference("localhost:5000", "m")),
        ("localhost/m", Reference("localhost", "m")),
        ("Mirror.Example.com/a/b/c", Reference("mirror.example.com", "a/b/c")),
    ],
)
def test_parse_prefix(prefix: str, expected: Reference) -> None:
    assert parse_prefix(prefix) == expected


def test_a_destination_at_the_length_limit() -> None:
    prefix = "us-docker.pkg.dev/p"  # 19 characters, then "/docker.io/" (11)
    source = Reference("docker.io", "a/" + "b" * (255 - 19 - 11 - 2), "1")
    destination = destination_for(source, prefix)
    assert len(destination.name) == 255
    with pytest.raises(InvalidReference, match="destination name longer than 255"):
        destination_for(Reference("docker.io", "a/" + "b" * (255 - 19 - 11 - 1), "1"), prefix)
