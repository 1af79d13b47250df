"""upstream_for: references under the mirror prefix map back to where they came from."""

from __future__ import annotations

import pytest
from armirror.reference import Reference, destination_for, parse, upstream_for
from hypothesis import given
from hypothesis import strategies as st

SHA = "sha256:" + "ab" * 32
PREFIX = "us-docker.pkg.dev/proj/mirror"


@pytest.mark.parametrize(
    ("mirrored", "prefix", "upstream"),
    [
        (f"{PREFIX}/docker.io/library/nginx:1.27", PREFIX, "docker.io/library/nginx:1.27"),
        (f"{PREFIX}/docker.io/bitnami/redis:7", PREFIX + "/", "docker.io/bitnami/redis:7"),
        (f"{PREFIX}/quay.io/a/b@{SHA}", PREFIX, f"quay.io/a/b@{SHA}"),
        (f"{PREFIX}/ghcr.io/o/r:v1@{SHA}", PREFIX, f"ghcr.io/o/r:v1@{SHA}"),
        # a port became "_PORT" on the way in, and comes back as ":PORT"
        (
            "localhost:5000/m/localhost_5001/team/app:2",
            "localhost:5000/m",
            "localhost:5001/team/app:2",
        ),
        ("localhost:5000/m/localhost/x", "localhost:5000/m", "localhost/x:latest"),
        # a host with a port needs no dot to be a host
        (f"{PREFIX}/myhost_5000/team/app:1", PREFIX, "myhost:5000/team/app:1"),
        # the prefix's host is compared as parse leaves it: lowercase
        (f"{PREFIX.upper().split('/')[0]}/proj/mirror/quay.io/a/b:1", PREFIX, "quay.io/a/b:1"),
    ],
)
def test_maps_back_to_the_upstream(mirrored: str, prefix: str, upstream: str) -> None:
    assert upstream_for(parse(mirrored), prefix) == parse(upstream)


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ("docker.io/library/nginx:1.27", PREFIX),  # not under the prefix at all
        ("us-docker.pkg.dev/proj/other/docker.io/library/nginx:1", PREFIX),  # another repository
        # the prefix's path on another registry
        ("europe-docker.pkg.dev/proj/mirror/docker.io/library/nginx:1", PREFIX),
        ("us-docker.pkg.dev/proj/mirrored/docker.io/library/nginx:1", PREFIX),  # prefix of a name
        (f"{PREFIX}/app:1", PREFIX),  # the mirror's own image, no host after the prefix
        (f"{PREFIX}/team/app:1", PREFIX),  # "team" is not a host
        (f"{PREFIX}/docker.io:1", PREFIX),  # a host with no repository
        # docker.io/nginx would have been mirrored at docker.io/library/nginx
        (f"{PREFIX}/docker.io/nginx:1", PREFIX),
    ],
)
def test_anything_else_is_not_a_mirror_reference(text: str, prefix: str) -> None:
    assert upstream_for(parse(text), prefix) is None


_component = st.from_regex(r"[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8}){0,2}", fullmatch=True)
_host = st.one_of(
    st.sampled_from(["docker.io", "quay.io", "ghcr.io", "registry.k8s.io", "localhost"]),
    st.tuples(st.sampled_from(["localhost", "r.example.com"]), st.integers(1, 65535)).map(
        lambda t: f"{t[0]}:{t[1]}"
    ),
)


@given(
    host=_host,
    path=st.lists(_component, min_size=1, max_size=3).map("/".join),
    tag=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)),
    digest=st.one_of(st.none(), st.just(SHA)),
    prefix=st.sampled_from([PREFIX, "localhost:5000/m", "europe-docker.pkg.dev/p/r/sub"]),
)
def test_inverse_of_destination_for(
    host: str, path: str, tag: str | None, digest: str | None, prefix: str
) -> None:
    source = parse(f"{host}/{path}")
    source = Reference(source.registry, source.repository, tag, digest)
    assert upstream_for(destination_for(source, prefix), prefix) == source
