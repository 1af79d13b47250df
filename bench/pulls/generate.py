"""Write N realistic kubelet LogEntries as JSON lines, deterministically (seeded).

About 2,000 distinct images across Docker Hub (short and long forms), quay.io, ghcr.io,
registry.k8s.io, gcr.io and Artifact Registry; every message form the parser knows
(Pulling, both "Successfully pulled" texts, already present, failed, both rate-limit
texts, Error: ErrImagePull, image back-off, crash-loop back-off), k8s_pod and
k8s_cluster resources, Cloud Run audit entries, and about 5% exact duplicates (the
exporter writing an entry again) plus a few broken lines.

    python bench/pulls/generate.py OUT.jsonl [--entries 500000] [--seed 4]
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import UTC, datetime, timedelta

REGISTRIES = [
    ("", 0.45),
    ("docker.io/", 0.1),
    ("quay.io/", 0.12),
    ("ghcr.io/", 0.1),
    ("registry.k8s.io/", 0.08),
    ("gcr.io/", 0.05),
    ("europe-docker.pkg.dev/platform/mirror/", 0.1),
]
WORDS = [
    "api",
    "web",
    "worker",
    "cache",
    "proxy",
    "db",
    "queue",
    "auth",
    "search",
    "metrics",
    "logs",
    "gateway",
    "billing",
    "payments",
    "users",
    "orders",
    "stream",
    "batch",
    "cron",
    "ingest",
    "export",
    "sync",
    "notify",
    "mail",
    "render",
]


def images(rng: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        prefix = rng.choices([r for r, _ in REGISTRIES], [w for _, w in REGISTRIES])[0]
        a, b = rng.choice(WORDS), rng.choice(WORDS)
        repo = a if (prefix == "" and rng.random() < 0.4) else f"{a}/{b}-{rng.randint(1, 40)}"
        tag = rng.choice(["", f":{rng.randint(1, 9)}.{rng.randint(0, 30)}", ":latest", ":v1"])
        names.add(f"{prefix}{repo}{tag}")
    return sorted(names)


def kubelet_entry(
    rng: random.Random, n: int, when: datetime, image: str, cluster_type: bool
) -> dict[str, object]:
    pod = f"{rng.choice(WORDS)}-{rng.randrange(16**6):06x}"
    namespace = rng.choice(WORDS)
    cluster = f"cluster-{rng.randint(1, 12)}"
    kind = rng.random()
    if kind < 0.30:
        reason, message = "Pulling", f'Pulling image "{image}"'
    elif kind < 0.45:
        secs = rng.uniform(0.2, 40)
        reason = "Pulled"
        message = (
            f'Successfully pulled image "{image}" in {secs:.3f}s ({secs + 0.1:.3f}s including '
            f"waiting). Image size: {rng.randint(10**6, 10**9)} bytes."
        )
    elif kind < 0.52:
        reason = "Pulled"
        message = f'Successfully pulled image "{image}" in {rng.uniform(1, 9):.1f}s'
    elif kind < 0.80:
        reason, message = "Pulled", f'Container image "{image}" already present on machine'
    elif kind < 0.84:
        reason = "Failed"
        message = (
            f'Failed to pull image "{image}": rpc error: code = Unknown desc = failed to pull and '
            f'unpack image "docker.io/{image}": failed to copy: httpReadSeeker: failed open: '
            "unexpected status code https://registry-1.docker.io/v2/library/x/manifests/sha256:"
            "aa11: 429 Too Many Requests - Server message: toomanyrequests: You have reached "
            "your pull rate limit."
        )
    elif kind < 0.86:
        reason = "Failed"
        message = (
            f'Failed to pull image "{image}": rpc error: code = Unknown desc = Error response '
            "from daemon: toomanyrequests: You have reached your pull rate limit. You may "
            "increase the limit by authenticating and upgrading: https://www.docker.com/"
            "increase-rate-limit"
        )
    elif kind < 0.89:
        reason = "Failed"
        message = (
            f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull '
            f'and unpack image "{image}": not found'
        )
    elif kind < 0.92:
        reason, message = "Failed", rng.choice(["Error: ErrImagePull", "Error: ImagePullBackOff"])
    elif kind < 0.96:
        reason, message = "BackOff", f'Back-off pulling image "{image}"'
    else:
        reason = "BackOff"
        message = f"Back-off restarting failed container app in pod {pod}_{namespace}(0b1c)"
    labels = {"project_id": "example-prod", "location": "europe-west1", "cluster_name": cluster}
    if not cluster_type:
        labels |= {"namespace_name": namespace, "pod_name": pod}
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "insertId": f"{n:08x}{rng.randrange(16**6):06x}",
        "logName": "projects/example-prod/logs/events",
        "resource": {"type": "k8s_cluster" if cluster_type else "k8s_pod", "labels": labels},
        "timestamp": stamp,
        "receiveTimestamp": stamp,
        "severity": "WARNING" if reason in ("Failed", "BackOff") else "INFO",
        "jsonPayload": {
            "apiVersion": "v1",
            "kind": "Event",
            "reason": reason,
            "type": "Warning" if reason in ("Failed", "BackOff") else "Normal",
            "message": message,
            "source": {"component": "kubelet", "host": f"gke-{cluster}-pool-{rng.randint(1, 30)}"},
            "involvedObject": {
                "kind": "Pod",
                "name": pod,
                "namespace": namespace,
                "fieldPath": "spec.containers{app}",
            },
            "metadata": {"name": f"{pod}.{n:x}", "namespace": namespace},
        },
    }


def cloud_run_entry(rng: random.Random, n: int, when: datetime, image: str) -> dict[str, object]:
    service = rng.choice(WORDS)
    return {
        "insertId": f"run{n:08x}",
        "logName": "projects/example-prod/logs/cloudaudit.googleapis.com%2Factivity",
        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "resource": {
            "type": "cloud_run_revision",
            "labels": {
                "project_id": "example-prod",
                "location": "europe-west1",
                "service_name": service,
            },
        },
        "protoPayload": {
            "serviceName": "run.googleapis.com",
            "methodName": "google.cloud.run.v1.Services.ReplaceService",
            "resourceName": f"namespaces/example-prod/services/{service}",
            "request": {
                "service": {"spec": {"template": {"spec": {"containers": [{"image": image}]}}}}
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--entries", type=int, default=500_000)
    parser.add_argument("--images", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    pool = images(rng, args.images)
    weights = [1 / (i + 1) ** 0.8 for i in range(len(pool))]  # a few images dominate
    start = datetime(2026, 10, 1, tzinfo=UTC)
    span = 30 * 86400
    recent: list[str] = []
    with open(args.out, "w", encoding="utf-8") as out:
        for n in range(args.entries):
            roll = rng.random()
            if roll < 0.05 and recent:
                out.write(rng.choice(recent))  # the exporter wrote it again
                continue
            if roll < 0.0502:
                out.write('{"insertId": "broken", "resource": {"type": "k8s_po\n')
                continue
            when = start + timedelta(seconds=span * n / args.entries + rng.random())
            image = rng.choices(pool, weights)[0]
            if roll < 0.06:
                entry = cloud_run_entry(rng, n, when, image)
            else:
                entry = kubelet_entry(rng, n, when, image, cluster_type=roll < 0.10)
            line = json.dumps(entry) + "\n"
            out.write(line)
            recent.append(line)
            if len(recent) > 200:
                recent.pop(0)


if __name__ == "__main__":
    main()
