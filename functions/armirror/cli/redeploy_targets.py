"""What ``armirror redeploy`` works on, from its options: a GKE cluster, the Cloud Run
services of a project, or what an undo file names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from armirror.redeploy.run import Platform


def cluster(o: dict[str, Any], context: str | None) -> tuple[Platform, str, dict[str, str]]:
    """GKE through kubeconfig ``context``: (platform, target, identity for the undo file)."""
    from armirror.redeploy.gke import Gke, api_client

    if o["cloud_run"] or o["project"] or o["regions"]:
        raise click.UsageError("--project and --region belong to --cloud-run")
    try:
        client, chosen = api_client(context)
    except Exception as exc:  # kubeconfig problems surface as several exception types
        raise click.UsageError(f"cannot load a Kubernetes config: {exc}") from None
    platform = Gke(
        client, namespaces=tuple(o["namespaces"]), node_service_accounts=tuple(o["node_accounts"])
    )
    identity = {"server": platform.server, "context": chosen or ""}
    return platform, platform.server, identity


def cloud_run(o: dict[str, Any]) -> tuple[Platform, str, dict[str, str]]:
    """The Cloud Run services of --project in each --region, as :func:`cluster`."""
    from armirror.redeploy.cloudrun import CloudRun, services_client

    if o["namespaces"] or o["context"]:
        raise click.UsageError("--context and --namespace belong to --cluster")
    if not o["project"] or not o["regions"]:
        raise click.UsageError(
            "--cloud-run needs --project and at least one --region (the Cloud Run Admin "
            "API lists services one region at a time; see `gcloud run regions list`)"
        )
    number = o["project_number"]
    if number is not None and not str(number).isdigit():
        raise click.BadParameter(
            f"{number!r} is not a project number", param_hint="--project-number"
        )
    client = services_client(o["cloud_run_endpoint"])
    platform = CloudRun(
        client, project=o["project"], regions=tuple(o["regions"]), project_number=number
    )
    return platform, f"projects/{o['project']}", {"project": o["project"]}


def undo_platform(o: dict[str, Any], kind: str, target: dict[str, str]) -> tuple[Platform, str]:
    """Where an undo file of ``kind`` was written, refusing a context that points elsewhere."""
    if kind == "gke":
        platform, server, _ = cluster(o, o["context"] or target.get("context") or None)
        if target.get("server") and target["server"] != server:
            raise click.UsageError(
                f"the undo file was written for {target['server']}, but the context points "
                f"at {server}: choose the right one with --context"
            )
        return platform, server
    from armirror.redeploy.cloudrun import CloudRun, services_client

    client = services_client(o["cloud_run_endpoint"])
    project = target.get("project", "")
    return CloudRun(client, project=project, regions=()), f"projects/{project}"
