"""The README's migration walk-through, run line by line on the demo's stand-ins.

The commands are read from the README's walk-through block and run as written, with
bash, in a copy of the demo's sample project (issue 15: "a run of that walk-through,
start to finish on the demo's stand-ins, is a test").  Only the surroundings are stand-ins:

- "Docker Hub" and "Artifact Registry" are local docker-registry servers, reached
  through ARMIRROR_UPSTREAMS while references keep their real names;
- the `gcloud logging read` line writes the demo's kubelet log entries instead;
- KUBECONFIG points at a stand-in GKE API server running the sample workloads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from registry_checks import ROOT

sys.path.insert(0, str(ROOT / "infra" / "local"))

from demo import MANIFESTS, first_round, sample_images
from standins import images
from standins.kube import KubeStandin
from standins.kube_objects import cronjob, workload
from standins.registry import start_registry

README = ROOT / "README.md"
MARKER = "<!-- walkthrough:"
MIRROR_HOST = "us-docker.pkg.dev"


def walkthrough_lines() -> list[str]:
    """The command lines of the README's walk-through block, comments stripped."""
    text = README.read_text(encoding="utf-8")
    after = text[text.index(MARKER) :]
    block = re.search(r"```sh\n(.*?)```", after, re.S)
    assert block, "the README's walk-through block is missing"
    lines = []
    for line in block.group(1).splitlines():
        command = re.sub(r"\s+#.*$", "", line).strip()
        if command:
            lines.append(command)
    return lines


def cluster() -> KubeStandin:
    """What runs: the sample project's images, in workloads redeploy may change."""
    return KubeStandin(
        [
            workload("Deployment", "shop", "web", [("web", "nginx:1.27")]),
            workload("StatefulSet", "shop", "db", [("db", "bitnami/postgresql:16")]),
            cronjob("ops", "cleanup", [("cleanup", "busybox:1.36")]),
        ]
    )


@pytest.mark.timeout(900)
def test_the_readme_walkthrough_runs_start_to_finish(tmp_path: Path) -> None:
    lines = walkthrough_lines()
    assert lines[0].startswith("export ARMIRROR_DESTINATION=")
    prefix = lines[0].split("=", 1)[1]
    assert prefix.startswith(MIRROR_HOST + "/")
    project = tmp_path / "project"
    shutil.copytree(MANIFESTS, project)
    hub = start_registry(tmp_path / "docker-hub")
    ar = start_registry(tmp_path / "artifact-registry")
    samples = sample_images()
    transcript: list[str] = []
    try:
        for image in samples:
            images.push(hub.url, image)
        with cluster() as server:
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("ARMIRROR_", "GOOGLE_", "KUBECONFIG"))
            }
            env.update(
                PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
                ARMIRROR_UPSTREAMS=f"docker.io={hub.url},{MIRROR_HOST}={ar.url}",
                XDG_DATA_HOME=str(tmp_path / "data"),
                KUBECONFIG=str(server.write_kubeconfig(tmp_path / "kubeconfig")),
                COLUMNS="100",
                NO_COLOR="1",
            )
            today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
            for line in lines:
                if line.startswith("export "):
                    name, _, value = line.removeprefix("export ").partition("=")
                    env[name] = value
                    continue
                if line.startswith("gcloud logging read"):
                    target = project / line.rsplit(">", 1)[1].strip()
                    target.write_text(
                        "\n".join(json.dumps(e) for e in first_round(samples, today)) + "\n"
                    )
                    continue
                result = subprocess.run(
                    ["bash", "-c", line], cwd=project, env=env, capture_output=True,
                    text=True, timeout=300,
                )  # fmt: skip
                transcript.append(f"$ {line}\n{result.stdout}{result.stderr}")
                assert result.returncode == 0, "\n".join(transcript)
                assert "Traceback" not in result.stderr, "\n".join(transcript)
            moved = [obj for obj in server.objects.values() if obj.get("kind") in ("Deployment",)]
    finally:
        ar.stop()
        hub.stop()
    log = "\n".join(transcript)

    # 1-3: the scan found the project's images, the dry run planned, the copy copied.
    listed = (project / "images.txt").read_text().split()
    assert "docker.io/library/nginx:1.27" in listed and "docker.io/library/busybox:1.36" in listed
    assert "would copy" in log and "copied" in log
    # 4-6: verified before and after the rewrite; the files now name the mirror.
    assert f"FROM {prefix}/docker.io/library/nginx:1.27" in (project / "app/Dockerfile").read_text()
    after_rewrite = log.split("$ armirror verify .\n")[1].split("$ ")[0]
    assert re.search(r"\d+ ok", after_rewrite) and "missing" not in after_rewrite
    # 7: what runs was moved onto the mirror.
    web = next(o for o in moved if o["metadata"]["name"] == "web")
    image = web["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"{prefix}/docker.io/library/nginx:1.27"
    assert list(project.glob("armirror-undo-*.json"))
    # 8: the report counts the copies and shows the pulls the logs recorded.
    page = (project / "report.html").read_text()
    assert 'id="pulls-chart"' in page and "images copied" in page
    assert re.search(r"copies: \d+ copied", log)
