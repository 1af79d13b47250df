"""The demo's last step: `armirror redeploy --cluster --dry-run` on a stand-in cluster.

The stand-in (standins.kube) runs the sample images the way a GKE cluster would: owners
with their pods, a Helm release, a bare pod, and one image nobody mirrored.  The dry run
shows each workload's images before and after, sends server-side dry runs, and changes
nothing; the demo checks both.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from standins.kube import KubeStandin
from standins.kube_objects import HELM, HELM_ANNOTATIONS, cronjob, pod, replicaset, workload

type Run = Callable[..., subprocess.CompletedProcess[str]]


def cluster() -> KubeStandin:
    return KubeStandin(
        [
            workload("Deployment", "shop", "web", [("web", "nginx:1.27"), ("cache", "redis:7.4")]),
            replicaset("shop", "web-6c9f", "web", [("web", "nginx:1.27")]),
            pod("shop", "web-6c9f-a1", [("web", "nginx:1.27")], owner=("ReplicaSet", "web-6c9f")),
            workload("StatefulSet", "shop", "db", [("db", "bitnami/postgresql:16")]),
            cronjob("ops", "cleanup", [("cleanup", "busybox:1.36")]),
            workload(
                "Deployment",
                "edge",
                "ingress",
                [("traefik", "traefik:v3.1")],
                labels=HELM,
                annotations=HELM_ANNOTATIONS,
            ),
            workload("Deployment", "edge", "sessions", [("memcached", "memcached:1.6")]),
            pod("ops", "debug", [("shell", "busybox:1.36")]),
        ]
    )


EXPECTED = {
    "Deployment shop/web": "would-move",
    "StatefulSet shop/db": "would-move",
    "CronJob ops/cleanup": "would-move",
    "Deployment edge/ingress": "refused",
    "Deployment edge/sessions": "left-alone",
    "Pod ops/debug": "not-changeable",
}


def redeploy_dry_run(prefix: str, env: dict[str, str], work: Path, run: Run) -> bool:
    """Run the dry run twice (table, then JSON to check it); True when it behaved."""
    with cluster() as server:
        before = json.dumps(sorted(map(str, server.objects.items())))
        env = {**env, "KUBECONFIG": str(server.write_kubeconfig(work / "kubeconfig"))}
        run("redeploy", "--cluster", "--to", prefix, "--dry-run", env=env)
        json_args = ("--dry-run", "--format", "json")
        result = run("redeploy", "--cluster", "--to", prefix, *json_args, env=env, show=False)
        got = {
            f"{w['kind']} {w['namespace']}/{w['name']}": w["status"]
            for w in json.loads(result.stdout)["workloads"]
        }
        dry = all(r.query.get("dryRun") == ["All"] for r in server.requests if r.method == "PATCH")
        unchanged = before == json.dumps(sorted(map(str, server.objects.items())))
    print(
        "  exit status 1: memcached was never mirrored, the ingress belongs to Helm (rewrite its "
        "chart), and a bare pod has no owner to change"
    )
    print(f"  every patch was a server-side dry run: {dry}; the cluster is unchanged: {unchanged}")
    return got == EXPECTED and dry and unchanged and result.returncode == 1
