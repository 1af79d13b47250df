"""parse_manifest as a table, and Hypothesis against it: any bytes a registry sends end
in a Manifest or an UnsupportedManifest/DigestMismatch, never another exception."""

from __future__ import annotations

import json

import pytest
from armirror.registry.errors import DigestMismatch, RegistryError, UnsupportedManifest
from armirror.registry.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    parse_manifest,
    sha256_digest,
)
from hypothesis import given, settings
from hypothesis import strategies as st

D = "sha256:" + "a" * 64
IMAGE = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D, "size": 2},
        "layers": [],
    }
).encode()
INDEX = json.dumps(
    {"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": D, "size": 9}]}
).encode()


@pytest.mark.parametrize(
    ("raw", "content_type", "expected", "media_type", "error", "words"),
    [
        (IMAGE, OCI_MANIFEST, None, OCI_MANIFEST, None, ""),
        (IMAGE, f"{OCI_MANIFEST}; charset=utf-8", None, OCI_MANIFEST, None, ""),
        (IMAGE, DOCKER_MANIFEST, None, DOCKER_MANIFEST, None, ""),
        (IMAGE, "application/json", None, OCI_MANIFEST, None, ""),  # typed from the body
        (INDEX, None, None, OCI_INDEX, None, ""),
        (INDEX, DOCKER_LIST, None, DOCKER_LIST, None, ""),
        (INDEX, "application/octet-stream", None, OCI_INDEX, None, ""),
        (IMAGE, OCI_MANIFEST, sha256_digest(IMAGE), OCI_MANIFEST, None, ""),
        (IMAGE, OCI_MANIFEST, D, None, DigestMismatch, "expected " + D),
        (b'{"schemaVersion": 1}', "", None, None, UnsupportedManifest, "schema 1"),
        (IMAGE, "text/html", None, None, UnsupportedManifest, "'text/html'"),
        (b"<html>", "", None, None, UnsupportedManifest, "not valid JSON"),
        (b"[1]", "", None, None, UnsupportedManifest, "unsupported manifest media type"),
        (b"[" * 100_000, "", None, None, UnsupportedManifest, "nested too deeply"),
        (b"[" * 5000 + b"]" * 5000, "", None, None, UnsupportedManifest, "nested too deeply"),
        (b'{"mediaType": 5}', "", None, None, UnsupportedManifest, "'5'"),
    ],
)
def test_parse_manifest(
    raw: bytes,
    content_type: str | None,
    expected: str | None,
    media_type: str | None,
    error: type[RegistryError] | None,
    words: str,
) -> None:
    if error is None:
        manifest = parse_manifest(raw, content_type, expected)
        assert manifest.media_type == media_type
        assert manifest.raw == raw and manifest.digest == sha256_digest(raw)
    else:
        with pytest.raises(error) as caught:
            parse_manifest(raw, content_type, expected)
        assert words in str(caught.value)
        assert len(str(caught.value)) < 500


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["mediaType", "manifests", "layers", "config", "digest", "size", "x"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(
    body=JSON,
    content_type=st.sampled_from(["", OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, "application/json"]),
)
def test_any_json_is_a_manifest_or_a_clear_refusal(body: object, content_type: str) -> None:
    raw = json.dumps(body).encode()
    try:
        manifest = parse_manifest(raw, content_type, None)
        manifest.children()
        manifest.blobs()
        manifest.subject()
    except UnsupportedManifest as exc:
        assert str(exc)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=300))
def test_any_bytes_are_a_manifest_or_a_clear_refusal(raw: bytes) -> None:
    try:
        manifest = parse_manifest(raw, "", None)
        manifest.children()
        manifest.blobs()
    except UnsupportedManifest:
        pass
