"""Policy cannot be bypassed by spelling (issue 12 §3), through `armirror serve`.

A host in another case, and a tag with a digest, are the same image as the plain
spelling: the deny list refuses them all, and one image gets one job.
"""

from __future__ import annotations

import pytest
from serve_process import Serve

SHA = "sha256:" + "5e" * 32
DENY = "docker.io/team/*,docker.io/library/*:latest"


@pytest.fixture
def serve_settings() -> dict[str, str]:
    return {"ARMIRROR_DENY": DENY}


@pytest.mark.parametrize(
    "image",
    [
        "docker.io/team/list:3",
        "DOCKER.IO/team/list:3",
        "Docker.Io/team/list:3",
        "INDEX.DOCKER.IO/team/list:3",
        f"nginx:latest@{SHA}",
        f"DOCKER.IO/library/nginx:latest@{SHA}",
        "nginx",
    ],
)
def test_every_spelling_of_a_denied_image_is_refused(serve: Serve, image: str) -> None:
    response = serve.post("request_copy", json={"images": [image]})
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == [{"image": image, "error": "denied by ARMIRROR_DENY"}]


def test_a_pinned_tag_that_is_not_denied_is_accepted(serve: Serve) -> None:
    response = serve.post("request_copy", json={"images": [f"nginx:1.27@{SHA}"]})
    assert response.status_code == 202, response.text
    [job] = response.json()["jobs"]
    assert job["source"] == f"docker.io/library/nginx:1.27@{SHA}"


def test_one_image_spelled_three_ways_is_one_job_with_one_destination(serve: Serve) -> None:
    spellings = ["docker.io/org/app:2", "DOCKER.IO/org/app:2", "Index.Docker.Io/org/app:2"]
    response = serve.post("request_copy", json={"images": spellings})
    assert response.status_code == 202, response.text
    [job] = response.json()["jobs"]
    prefix = serve.prefix  # type: ignore[attr-defined]
    assert job["source"] == "docker.io/org/app:2"
    assert job["destination"] == f"{prefix}/docker.io/org/app:2"
    # A later request in another spelling is the same job: not queued again.
    again = serve.post("request_copy", json={"images": ["dOcKeR.iO/org/app:2"]})
    assert again.status_code == 202, again.text
    [second] = again.json()["jobs"]
    assert second["job_id"] == job["job_id"] and second["queued"] is False
