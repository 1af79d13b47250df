"""What armirror reads from a manifest's fields, and how it reads a registry's answer.

Manifest bodies here are written out by hand with the media types spelled as registries
send them (not the module's constants), so a misspelt type in armirror would show.
The answers for bodies.py are real httpx responses over byte streams: these tests pin
the caps and messages; the integration suites read the same answers from registries.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from armirror.registry.bodies import answer_with, read_bounded, read_prefix
from armirror.registry.errors import DigestMismatch, MalformedAnswer, UnsupportedManifest
from armirror.registry.manifest import Descriptor, parse_manifest

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def raw(body: Any) -> bytes:
    return json.dumps(body).encode()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- media types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "media_type"),
    [
        # What the registry says, parameters and spaces aside.
        (OCI_INDEX, {"manifests": []}, OCI_INDEX),
        (DOCKER_LIST, {"manifests": []}, DOCKER_LIST),
        (OCI_MANIFEST, {"layers": []}, OCI_MANIFEST),
        (DOCKER_MANIFEST, {"layers": []}, DOCKER_MANIFEST),
        (f"  {DOCKER_MANIFEST} ;charset=utf-8", {}, DOCKER_MANIFEST),
        (f"{OCI_MANIFEST}; charset=utf-8; q=1", {}, OCI_MANIFEST),
        # A Content-Type that says nothing: the body's mediaType...
        ("", {"mediaType": DOCKER_LIST, "manifests": []}, DOCKER_LIST),
        (None, {"mediaType": DOCKER_MANIFEST}, DOCKER_MANIFEST),
        ("application/json", {"mediaType": OCI_INDEX}, OCI_INDEX),
        ("text/plain", {"mediaType": OCI_MANIFEST}, OCI_MANIFEST),
        ("application/octet-stream", {"mediaType": DOCKER_MANIFEST}, DOCKER_MANIFEST),
        ("binary/octet-stream", {"mediaType": DOCKER_LIST}, DOCKER_LIST),
        # ...or, without one, its shape: manifests make an index, even with a config.
        ("", {"schemaVersion": 2, "manifests": [], "config": {}}, OCI_INDEX),
        ("", {"schemaVersion": 2, "config": {}}, OCI_MANIFEST),
        ("", {"schemaVersion": 2, "manifests": []}, OCI_INDEX),
    ],
)
def test_media_type_from_header_or_body(
    content_type: str | None, body: dict[str, Any], media_type: str
) -> None:
    data = raw(body)
    manifest = parse_manifest(data, content_type, None)
    assert manifest.media_type == media_type
    assert manifest.digest == digest_of(data) and manifest.raw == data


@pytest.mark.parametrize(
    ("content_type", "body", "words"),
    [
        # A type that is precise is taken as said, and not guessed from the body.
        ("application/vnd.oci.image.config.v1+json", {"manifests": []}, "'application/vnd.oci"),
        ("text/html", {"mediaType": OCI_INDEX}, "unsupported manifest media type 'text/html'"),
        ("", {"schemaVersion": 2}, "unsupported manifest media type ''"),
        ("", {"schemaVersion": 2, "layers": []}, "unsupported manifest media type ''"),
        ("", ["not", "an", "object"], "unsupported manifest media type ''"),
        ("", {"mediaType": "", "schemaVersion": 1}, "Docker schema 1 manifests are not supported"),
        ("", {"schemaVersion": 1, "manifests": []}, "Docker schema 1"),
        ("application/vnd.docker.distribution.manifest.v1+json", {}, "Docker schema 1"),
        ("application/vnd.docker.distribution.manifest.v1+prettyjws", {}, "Docker schema 1"),
        (
            "",
            {"mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws"},
            "schema 1",
        ),
    ],
)
def test_media_types_refused(content_type: str, body: Any, words: str) -> None:
    with pytest.raises(UnsupportedManifest) as caught:
        parse_manifest(raw(body), content_type, None)
    assert words in str(caught.value)


def test_schema1_refusal_says_what_to_do() -> None:
    with pytest.raises(UnsupportedManifest) as caught:
        parse_manifest(b'{"schemaVersion": 1}', "application/json", None)
    assert str(caught.value) == (
        "Docker schema 1 manifests are not supported (deprecated since 2017, and "
        "their digests cannot be preserved); rebuild or re-push the image"
    )


def test_digest_checked_only_against_a_sha256_digest() -> None:
    data = raw({"layers": []})
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch) as caught:
        parse_manifest(data, OCI_MANIFEST, wrong)
    assert str(caught.value) == f"manifest content hashes to {digest_of(data)}, expected {wrong}"
    # A tag, or a digest of another algorithm, is nothing to compare the sha256 with.
    for named in ("latest", "sha512:" + "0" * 128, ""):
        assert parse_manifest(data, OCI_MANIFEST, named).digest == digest_of(data)
    assert parse_manifest(data, OCI_MANIFEST, digest_of(data)).digest == digest_of(data)


# -- what a manifest refers to -------------------------------------------------------------


def test_index_children_in_order_with_defaults() -> None:
    body = {
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": A, "size": 528, "platform": {"os": "linux"}},
            {"digest": B},  # no type, no size
            {"mediaType": DOCKER_MANIFEST, "digest": C, "size": "77"},
        ],
    }
    index = parse_manifest(raw(body), OCI_INDEX, None)
    assert index.is_index
    assert index.children() == [
        Descriptor(OCI_MANIFEST, A, 528),
        Descriptor("", B, 0),
        Descriptor(DOCKER_MANIFEST, C, 77),
    ]
    assert index.blobs() == []  # an index names manifests, never blobs


def test_docker_list_is_an_index_too() -> None:
    body = {"manifests": [{"mediaType": DOCKER_MANIFEST, "digest": A, "size": 1}]}
    listed = parse_manifest(raw(body), DOCKER_LIST, None)
    assert listed.is_index and listed.children() == [Descriptor(DOCKER_MANIFEST, A, 1)]


def test_image_blobs_config_first_without_foreign_layers() -> None:
    body = {
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": A, "size": 9},
        "layers": [
            {"mediaType": LAYER, "digest": B, "size": 100},
            {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
             "digest": "sha256:" + "1" * 64, "size": 5, "urls": ["https://example.com/l"]},
            {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar",
             "digest": "sha256:" + "2" * 64, "size": 5},
            {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
             "digest": "sha256:" + "3" * 64, "size": 5},
            {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
             "digest": "sha256:" + "4" * 64, "size": 5},
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": C,
             "size": 7},
        ],
    }  # fmt: skip
    image = parse_manifest(raw(body), DOCKER_MANIFEST, None)
    assert not image.is_index
    assert image.children() == []  # an image names blobs, never manifests
    assert image.blobs() == [
        Descriptor("application/vnd.oci.image.config.v1+json", A, 9),
        Descriptor(LAYER, B, 100),
        Descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", C, 7),
    ]


def test_image_without_config_or_layers() -> None:
    assert parse_manifest(raw({"layers": [{"digest": A}]}), OCI_MANIFEST, None).blobs() == [
        Descriptor("", A, 0)
    ]
    assert parse_manifest(
        raw({"config": {"digest": B, "size": 3}}), OCI_MANIFEST, None
    ).blobs() == [Descriptor("", B, 3)]
    assert parse_manifest(raw({}), OCI_MANIFEST, None).blobs() == []


@pytest.mark.parametrize(
    ("body", "subject"),
    [
        ({"layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": A, "size": 9}}, A),
        ({"layers": [], "subject": {"mediaType": OCI_MANIFEST}}, None),
        ({"layers": [], "subject": A}, None),  # not a descriptor
        ({"layers": [], "subject": None}, None),
        ({"layers": []}, None),
    ],
)
def test_subject_of_a_referrer(body: dict[str, Any], subject: str | None) -> None:
    assert parse_manifest(raw(body), OCI_MANIFEST, None).subject() == subject


def test_subject_of_an_index() -> None:
    body = {"manifests": [], "subject": {"digest": B}}
    assert parse_manifest(raw(body), OCI_INDEX, None).subject() == B


@pytest.mark.parametrize(
    ("content_type", "body", "call", "message"),
    [
        (OCI_MANIFEST, {"layers": None}, "blobs", "has a malformed 'layers' list"),
        (OCI_MANIFEST, {"layers": {"digest": A}}, "blobs", "has a malformed 'layers' list"),
        (OCI_INDEX, {"manifests": "x"}, "children", "has a malformed 'manifests' list"),
        (OCI_MANIFEST, {"config": "x"}, "blobs", "has a malformed descriptor"),
        (OCI_MANIFEST, {"layers": [{"size": 1}]}, "blobs", "has a malformed descriptor"),
        (OCI_MANIFEST, {"layers": [{"digest": A, "size": "big"}]}, "blobs", "malformed descriptor"),
        (OCI_MANIFEST, {"layers": [{"digest": A, "size": None}]}, "blobs", "malformed descriptor"),
        (OCI_INDEX, {"manifests": [7]}, "children", "has a malformed descriptor"),
        # A digest names URL paths: one that climbs out of /blobs/ is refused, as is a
        # sha256 of the wrong length and a negative size.
        (
            OCI_MANIFEST,
            {"layers": [{"digest": "sha256:../../../x/manifests/latest"}]},
            "blobs",
            "has a malformed descriptor",
        ),
        (
            OCI_MANIFEST,
            {"config": {"digest": "sha256:abc", "size": 1}},
            "blobs",
            "has a malformed descriptor",
        ),
        (OCI_MANIFEST, {"layers": [{"digest": A, "size": -1}]}, "blobs", "malformed descriptor"),
        (
            OCI_INDEX,
            {"manifests": [{"digest": "sha256:" + "0" * 64 + "/x"}]},
            "children",
            "has a malformed descriptor",
        ),
        (OCI_INDEX, [], "children", "is not a JSON object"),
        (OCI_MANIFEST, [], "blobs", "is not a JSON object"),
        (OCI_MANIFEST, "text", "subject", "is not a JSON object"),
    ],
)
def test_malformed_fields_are_clear_refusals(
    content_type: str, body: Any, call: str, message: str
) -> None:
    data = raw(body)
    manifest = parse_manifest(data, content_type, None)
    with pytest.raises(UnsupportedManifest) as caught:
        getattr(manifest, call)()
    assert str(caught.value).startswith(f"manifest {digest_of(data)} ")
    assert message in str(caught.value)


def test_precise_type_with_bytes_that_are_not_json() -> None:
    manifest = parse_manifest(b"<html>", OCI_MANIFEST, None)
    with pytest.raises(UnsupportedManifest) as caught:
        manifest.blobs()
    assert str(caught.value) == f"manifest {digest_of(b'<html>')} is not valid JSON"
    with pytest.raises(UnsupportedManifest) as nested:
        parse_manifest(b"[" * 100_000, "", None)
    assert str(nested.value) == "manifest is nested too deeply"


# -- reading answers with a cap (bodies.py) -----------------------------------------------


class Chunks(httpx.AsyncByteStream):
    """A body arriving in the given pieces; counts what was read and whether closed."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.read = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            self.read += 1
            yield piece

    async def aclose(self) -> None:
        self.closed = True


def answer(
    pieces: list[bytes], headers: dict[str, str] | None = None, host: str = "registry.test:5000"
) -> tuple[httpx.Response, Chunks]:
    stream = Chunks(pieces)
    request = httpx.Request("GET", f"https://{host}/v2/team/app/manifests/1?_state=secret")
    return httpx.Response(200, headers=headers or {}, stream=stream, request=request), stream


def test_read_bounded_keeps_a_body_up_to_its_limit() -> None:
    response, _ = answer([b"abc", b"de"])
    assert asyncio.run(read_bounded(response, 5)) == b"abcde"
    response, _ = answer([b"abc", b"de"], {"Content-Length": "5"})
    assert asyncio.run(read_bounded(response, 5)) == b"abcde"


def test_read_bounded_refuses_a_declared_length_over_the_limit_unread() -> None:
    response, stream = answer([b"x" * 10], {"Content-Length": "10"})
    with pytest.raises(MalformedAnswer) as caught:
        asyncio.run(read_bounded(response, 9))
    assert str(caught.value) == "registry.test:5000 answered 10 bytes, over 9"
    assert stream.read == 0 and stream.closed


def test_read_bounded_stops_at_the_first_byte_over_the_limit() -> None:
    # No Content-Length (chunked encoding), or one that understates the body.
    for headers in ({}, {"Content-Length": "4"}, {"Content-Length": "many"}):
        response, stream = answer([b"abcd", b"e", b"never read"], headers)
        with pytest.raises(MalformedAnswer) as caught:
            asyncio.run(read_bounded(response, 4))
        assert str(caught.value) == "registry.test:5000 answered more than 4 bytes"
        assert stream.read == 2 and stream.closed


def test_where_a_long_host_is_cut() -> None:
    host = "r" * 120 + ".test"
    response, _ = answer([], {"Content-Length": "10"}, host=host)
    with pytest.raises(MalformedAnswer) as caught:
        asyncio.run(read_bounded(response, 1))
    assert str(caught.value) == "r" * 99 + "… answered 10 bytes, over 1"


def test_read_prefix_reads_no_more_than_it_keeps() -> None:
    response, stream = answer([b"abc", b"defg", b"hij", b"never read"])
    assert asyncio.run(read_prefix(response, 6)) == b"abcdef"
    assert stream.read == 2 and stream.closed
    response, stream = answer([b"abc", b"def", b"never read"])
    assert asyncio.run(read_prefix(response, 6)) == b"abcdef"
    assert stream.read == 2
    response, stream = answer([b"ab", b"c"])
    assert asyncio.run(read_prefix(response, 6)) == b"abc"
    assert stream.closed


def test_answer_with_drops_wire_headers_but_a_heads_length() -> None:
    request = httpx.Request("HEAD", "https://registry.test/v2/a/manifests/1")
    wire = httpx.Response(
        200,
        headers=[
            ("Content-Length", "1234"),
            ("Content-Encoding", "gzip"),
            ("Transfer-Encoding", "chunked"),
            ("Docker-Content-Digest", A),
            ("Link", "<a>"),
            ("Link", "<b>"),
        ],
        request=request,
    )
    got = answer_with(wire, b"{}")
    assert got.status_code == 200 and got.content == b"{}" and got.request is request
    assert got.headers.get_list("Link") == ["<a>", "<b>"]
    assert got.headers["Docker-Content-Digest"] == A
    assert "content-encoding" not in got.headers and "transfer-encoding" not in got.headers
    assert got.headers["Content-Length"] == "2"  # the body kept, not the wire's
    head = answer_with(wire, b"", keep_length=True)
    assert head.headers.get_list("Content-Length") == ["1234"]
    assert "content-encoding" not in head.headers and "transfer-encoding" not in head.headers
