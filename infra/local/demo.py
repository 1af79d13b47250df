"""The demo behind `make demo`: everything starts on 127.0.0.1 and is stopped at the end.

1. Start a stand-in "Docker Hub" (seeded with sample images under docker.io names) and a
   stand-in "Artifact Registry", both real `docker-registry` servers.
2. Copy the images with `armirror copy`, mapping docker.io to the stand-in.
3. Show that every digest at the destination matches the source, then copy again and
   show that nothing moves.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra" / "local"))

from standins import images  # noqa: E402
from standins.registry import start_registry  # noqa: E402

ARMIRROR = str(ROOT / ".venv" / "bin" / "armirror")
BOLD, DIM, GREEN, RED, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m"


def step(text: str) -> None:
    print(f"\n{BOLD}== {text}{RESET}", flush=True)


def sample_images() -> list[images.Image]:
    """A small "Docker Hub": multi-arch, Docker and OCI, shared layers, a signature."""
    base = [images.generated_layer(42, 2_000_000)]
    return [
        images.sign(images.multi_arch_image("library/nginx", "1.27", seed=1, shared=base), seed=11),
        images.multi_arch_image(
            "library/redis", "7.4", seed=2, shared=base, oci=False, attestations=False
        ),
        images.single_image("library/busybox", "1.36", seed=3, oci=True),
        images.single_image("library/traefik", "v3.1", seed=4, shared=base, odd_whitespace=True),
        images.single_image("bitnami/postgresql", "16", seed=5, shared=base),
    ]


def armirror(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    print(f"{DIM}$ armirror {' '.join(args)}{RESET}", flush=True)
    return subprocess.run([ARMIRROR, *args], env=env, text=True, capture_output=True)


def raw_digest(host: str, reference: str) -> str:
    """The digest of the manifest bytes as skopeo (an independent client) sees them."""
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host}/{reference}"],
        capture_output=True,
        check=True,
    ).stdout
    return "sha256:" + hashlib.sha256(out).hexdigest()


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="armirror-demo-"))
    started = []
    try:
        step("1. Start the stand-ins: a 'Docker Hub' and an 'Artifact Registry' on 127.0.0.1")
        hub = start_registry(work / "docker-hub")
        started.append(hub)
        ar = start_registry(work / "artifact-registry")
        started.append(ar)
        prefix = f"{ar.host}/demo-project/mirror"
        print(f"  Docker Hub stand-in        {hub.url}")
        print(f"  Artifact Registry stand-in {ar.url}   (prefix {prefix})")
        samples = sample_images()
        for image in samples:
            images.push(hub.url, image)
            print(f"  seeded docker.io/{image.repository}:{image.tag}  {image.digest[:19]}")

        env = {**os.environ, "ARMIRROR_UPSTREAMS": f"docker.io={hub.url}"}
        names = [f"{image.repository.removeprefix('library/')}:{image.tag}" for image in samples]

        step("2. Copy them into the mirror")
        result = armirror("copy", *names, "--to", prefix, env=env)
        print(result.stdout, result.stderr, sep="", end="")
        if result.returncode:
            return 1

        step("3. Every digest at the destination matches the source (checked with skopeo)")
        ok = True
        for image in samples:
            src = raw_digest(hub.host, f"{image.repository}:{image.tag}")
            dst = raw_digest(
                ar.host, f"demo-project/mirror/docker.io/{image.repository}:{image.tag}"
            )
            same = src == dst == image.digest
            ok &= same
            mark = f"{GREEN}match{RESET}" if same else f"{RED}DIFFERENT{RESET}"
            name = f"{image.repository}:{image.tag}"
            print(f"  {name:28} {src[:19]}  {dst[:19]}  {mark}")

        step("4. Copy again: nothing moves, found with HEAD requests only")
        again = armirror("copy", *names, "--to", prefix, "--format", "json", env=env)
        statuses = [row["status"] for row in json.loads(again.stdout)]
        print(f"  statuses: {', '.join(statuses)}")
        ok &= again.returncode == 0 and set(statuses) == {"up-to-date"}

        print(f"\n{GREEN if ok else RED}{BOLD}demo {'passed' if ok else 'FAILED'}{RESET}")
        return 0 if ok else 1
    finally:
        for process in reversed(started):
            process.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
