"""The demo behind `make demo`: the whole story on 127.0.0.1, stopped at the end.

1. Start a stand-in "Docker Hub" (real `docker-registry`, seeded with sample images under
   docker.io names, reached through ARMIRROR_UPSTREAMS) and a stand-in "Artifact Registry".
2. Run `armirror serve`: the four Cloud Functions in one process, with the embedded
   DuckDB store and the in-process queue.
3. Replay GKE kubelet pull log entries as Pub/Sub CloudEvents, with duplicates and a
   Docker Hub rate-limit failure among them.  The queue copies each newly seen image.
4. Print the pull ranking.
5. Scan and rewrite the sample manifests, showing the diff.
6. Show that every digest matches (checked with skopeo) and `armirror verify` says ok.
7. A second round of pulls, now from the mirror: the HTML report shows the third-party
   share dropping.
8. `armirror redeploy --cluster --dry-run` on a stand-in GKE cluster: each workload's
   images before and after, server-side dry runs, nothing changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra" / "local"))

from demo_redeploy import redeploy_dry_run  # noqa: E402
from standins import images  # noqa: E402
from standins.logentries import cloud_event, kubelet_entry  # noqa: E402
from standins.registry import Registry, free_port, start_registry  # noqa: E402

ARMIRROR = str(ROOT / ".venv" / "bin" / "armirror")
MANIFESTS = ROOT / "infra" / "local" / "demo" / "manifests"
# ARMIRROR_DEMO_DIR: where the report goes (tests point it at a temporary directory).
REPORT = Path(os.environ.get("ARMIRROR_DEMO_DIR") or ROOT / ".demo") / "report.html"
# Colour only on a terminal, and never with NO_COLOR (https://no-color.org), like armirror.
_COLOUR = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
BOLD, DIM, GREEN, RED, RESET = (
    ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if _COLOUR else ("",) * 5
)


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


def familiar(image: images.Image) -> str:
    return f"{image.repository.removeprefix('library/')}:{image.tag}"


def run(*args: str, env: dict[str, str], show: bool = True) -> subprocess.CompletedProcess[str]:
    if show:
        print(f"{DIM}$ armirror {' '.join(args)}{RESET}", flush=True)
    result = subprocess.run([ARMIRROR, *args], env=env, text=True, capture_output=True)
    if show:
        print(result.stdout, end="")
        if result.stderr.strip():
            print(f"{DIM}{result.stderr.rstrip()}{RESET}")
    return result


def entry(n: int, when: datetime, kind: str, image: str, cluster: str) -> dict[str, Any]:
    return kubelet_entry(f"demo-{n:05d}", when, kind, image, cluster=cluster, pod=f"api-{n % 7}")


def first_round(samples: list[images.Image], today: datetime) -> list[dict[str, Any]]:
    """Four days of pulls straight from "Docker Hub", and one first-party image."""
    entries: list[dict[str, Any]] = []
    for day in range(6, 2, -1):
        when = today - timedelta(days=day)
        for i, image in enumerate(samples):
            cluster = ("blue", "green")[i % 2]
            for reason in ("Pulling", "Pulled"):
                entries.append(entry(len(entries), when, reason, familiar(image), cluster))
        entries.append(entry(len(entries), when, "Present", "nginx:1.27", "blue"))
        first_party = "us-docker.pkg.dev/example-prod/apps/api:2.4.1"
        entries.append(entry(len(entries), when, "Pulling", first_party, "blue"))
    when = today - timedelta(days=3)
    entries.append(entry(len(entries), when, "Failed", "redis:7.4", "green"))
    return entries


def second_round(samples: list[images.Image], prefix: str, today: datetime) -> list[dict[str, Any]]:
    """After the rewrite: the same workloads now pull from the mirror."""
    entries: list[dict[str, Any]] = []
    for day in range(2, -1, -1):
        when = today - timedelta(days=day)
        for i, image in enumerate(samples):
            mirrored = f"{prefix}/docker.io/{image.repository}:{image.tag}"
            cluster = ("blue", "green")[i % 2]
            entries.append(entry(10_000 + len(entries), when, "Pulling", mirrored, cluster))
        if day == 2:  # one straggler still on Docker Hub
            entries.append(entry(10_000 + len(entries), when, "Pulling", "redis:7.4", "green"))
    return entries


class Serve:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        self.process = subprocess.Popen(
            [ARMIRROR, "serve", "--port", port], env=env, stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"armirror serve did not start:\n{log.read_text()}")
            time.sleep(0.1)

    def send(self, entries: list[dict[str, Any]], *, duplicates: int = 0) -> list[int]:
        statuses = []
        replay = entries + entries[:duplicates]  # Pub/Sub delivers at least once
        with httpx.Client(timeout=60) as client:
            for n, entry in enumerate(replay):
                response = client.post(
                    f"{self.url}/on_pull_event",
                    json=cloud_event(entry, str(n)),
                    headers={"Content-Type": "application/cloudevents+json"},
                )
                statuses.append(response.status_code)
        return statuses

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


def raw_digest(host: str, reference: str) -> str | None:
    """The digest of the manifest bytes as skopeo (an independent client) sees them."""
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host}/{reference}"],
        capture_output=True,
    )
    return "sha256:" + hashlib.sha256(out.stdout).hexdigest() if out.returncode == 0 else None


def wait_for_mirror(ar: Registry, prefix_path: str, samples: list[images.Image]) -> bool:
    deadline = time.monotonic() + 60
    pending = {f"{prefix_path}/docker.io/{i.repository}:{i.tag}": i.digest for i in samples}
    while pending and time.monotonic() < deadline:
        for reference, digest in list(pending.items()):
            name, tag = reference.rsplit(":", 1)
            response = httpx.head(
                f"{ar.url}/v2/{name}/manifests/{tag}",
                headers={"Accept": "application/vnd.oci.image.index.v1+json, "
                         "application/vnd.docker.distribution.manifest.list.v2+json, "
                         "application/vnd.oci.image.manifest.v1+json, "
                         "application/vnd.docker.distribution.manifest.v2+json"},
            )  # fmt: skip
            if response.headers.get("Docker-Content-Digest") == digest:
                del pending[reference]
        time.sleep(0.2)
    return not pending


def main() -> int:
    started_at = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="armirror-demo-"))
    registries: list[Registry] = []
    serve: Serve | None = None
    ok = True
    try:
        step("1. Stand-ins: a 'Docker Hub' and an 'Artifact Registry' on 127.0.0.1")
        hub = start_registry(work / "docker-hub")
        registries.append(hub)
        ar = start_registry(work / "artifact-registry")
        registries.append(ar)
        # The mirror keeps its real name; ARMIRROR_UPSTREAMS sends its requests to the
        # stand-in, as it does docker.io's.
        ar_host = "europe-docker.pkg.dev"
        prefix_path = "example-prod/mirror"
        prefix = f"{ar_host}/{prefix_path}"
        samples = sample_images()
        for image in samples:
            images.push(hub.url, image)
            name = f"docker.io/{image.repository}:{image.tag}"
            print(f"  {name:34} {image.digest[:19]}  (seeded)")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARMIRROR_")}
        env.update(
            {
                "ARMIRROR_UPSTREAMS": f"docker.io={hub.url},{ar_host}={ar.url}",
                "ARMIRROR_DESTINATION": prefix,
                "ARMIRROR_STORE": f"duckdb:///{work / 'armirror.duckdb'}",
                "NO_COLOR": "1",
                "COLUMNS": "110",
            }
        )
        print(f"  docker.io -> {hub.url}, {ar_host} -> {ar.url}  (ARMIRROR_UPSTREAMS)")
        print(f"  mirror prefix {prefix}")

        step("2. armirror serve: on_pull_event, copy_image, request_copy, refresh")
        serve = Serve(env, work / "serve.log")
        print(f"  serving on {serve.url} (DuckDB store, in-process queue)")

        step("3. Replay GKE pull events as Pub/Sub CloudEvents (with redeliveries)")
        today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
        entries = first_round(samples, today)
        statuses = serve.send(entries, duplicates=8)
        print(f"  {len(statuses)} deliveries of {len(entries)} log entries, answers: "
              f"{sorted(set(statuses))} (acknowledged)")  # fmt: skip
        print("  the queue copies each newly seen third-party image in the background ...")
        copied = wait_for_mirror(ar, prefix_path, samples)
        ok &= copied
        serve.stop()
        queued = [
            line for line in (work / "serve.log").read_text().splitlines() if " queued " in line
        ]
        print(f"  {len(queued)} copy jobs queued for {len(samples)} images "
              f"({'all copied' if copied else 'NOT all copied'})")  # fmt: skip
        for line in queued:
            print(f"  {DIM}{line.split(' queued ', 1)[1]}{RESET}")

        step("4. Which images are pulled most, and which are rate limited")
        run("pulls", "--third-party-only", "--top", "10", env=env)

        step("5. Scan the sample manifests and rewrite them to the mirror")
        tree = work / "manifests"
        shutil.copytree(MANIFESTS, tree)
        run("scan", str(tree), env=env)
        run("rewrite", str(tree), "--to", prefix, "--dry-run", env=env)
        run("rewrite", str(tree), "--to", prefix, env=env)
        rescan = run("scan", str(tree), "--format", "json", env=env, show=False)
        left = [f for f in json.loads(rescan.stdout) if f.get("third_party")]
        print(f"  after the rewrite, third-party references left: {len(left)}")
        ok &= not left

        step("6. Every digest matches (skopeo), and armirror verify agrees")
        for image in samples:
            src = raw_digest(hub.host, f"{image.repository}:{image.tag}")
            dst = raw_digest(ar.host, f"{prefix_path}/docker.io/{image.repository}:{image.tag}")
            same = src == dst == image.digest
            ok &= same
            mark = f"{GREEN}match{RESET}" if same else f"{RED}DIFFERENT{RESET}"
            name = f"{image.repository}:{image.tag}"
            print(f"  {name:26} {(src or '-')[:19]}  {(dst or '-')[:19]}  {mark}")
        # the rewritten files name the mirror: verify maps them back to their upstreams
        verified = run("verify", str(tree), "--to", prefix, env=env)
        ok &= verified.returncode == 0

        step("7. A second round of pulls, now from the mirror; the report")
        second = second_round(samples, prefix, today)
        serve = Serve(env, work / "serve2.log")
        serve.send(second)
        serve.stop()
        REPORT.parent.mkdir(exist_ok=True)
        since = (today - timedelta(days=6)).date().isoformat()
        reported = run("report", "--since", since, "--html", str(REPORT), env=env)
        ok &= reported.returncode == 0

        step("8. Redeploy what runs: a dry run on a stand-in GKE cluster")
        ok &= redeploy_dry_run(prefix, env, work, run)

        seconds = time.monotonic() - started_at
        verdict = f"{GREEN}{BOLD}demo passed" if ok else f"{RED}{BOLD}demo FAILED"
        shown = REPORT.relative_to(ROOT) if REPORT.is_relative_to(ROOT) else REPORT
        print(f"\n{verdict}{RESET} in {seconds:.0f} s; open {shown} in a browser")
        return 0 if ok else 1
    finally:
        if serve is not None:
            serve.stop()
        for registry in reversed(registries):
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
