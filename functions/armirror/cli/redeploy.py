"""``armirror redeploy``: move running GKE workloads and Cloud Run services onto the mirror."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from armirror.cli import (
    check_prefix,
    destination_option,
    format_option,
    mirror_checks,
    redeploy_targets,
    registry_options,
)
from armirror.cli.output import EXIT_FAILURE, EXIT_OK, emit_json, info
from armirror.cli.params import Duration

if TYPE_CHECKING:
    from armirror.redeploy import RedeployReport


@click.command()
@click.option("--cluster", is_flag=True, help="Redeploy the owners of what runs in a GKE cluster.")
@click.option("--context", metavar="CTX", help="kubeconfig context (default: the current one).")
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    metavar="NS",
    help="Only this namespace (repeatable; default: every namespace).",
)
@click.option("--cloud-run", is_flag=True, help="Redeploy the Cloud Run services of --project.")
@click.option("--project", metavar="PROJECT", help="Cloud Run: the project ID or number.")
@click.option(
    "--region",
    "regions",
    multiple=True,
    metavar="REGION",
    help="Cloud Run: a region to list services in (repeatable; at least one: the API "
    "lists one region at a time).",
)
@click.option(
    "--undo",
    "undo_path",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Put back the old images an earlier run recorded in FILE.",
)
@destination_option(
    "Destination prefix the images were copied to (env ARMIRROR_DESTINATION).", required=False
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Change nothing: show each workload's images before and after, and send "
    "server-side dry runs so admission webhooks and policies answer.",
)
@click.option(
    "--include-managed",
    is_flag=True,
    help="Also change workloads that Argo CD, Flux, Helm or another manager would put back.",
)
@click.option(
    "--undo-file",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    help="Where to write the undo file (default: ./armirror-undo-TIME.json; never overwritten).",
)
@click.option("--wait", is_flag=True, help="Follow each rollout until it is ready or has failed.")
@click.option(
    "--timeout",
    default="5m",
    show_default=True,
    type=Duration(),
    help="How long --wait follows each rollout.",
)
@click.option(
    "--gke-node-sa",
    "node_accounts",
    multiple=True,
    metavar="EMAIL",
    help="GKE: a node service account that pulls images; an image it cannot read from "
    "the mirror is left alone (repeatable).",
)
@click.option(
    "--project-number",
    metavar="NUMBER",
    help="Cloud Run: the project number, to check that its service agent can pull "
    "(implied when --project is a number).",
)
@click.option(
    "--store",
    "store_url",
    envvar="ARMIRROR_STORE",
    metavar="URL",
    help="Record the changes here: duckdb:///PATH (the default file) or "
    "bigquery://PROJECT/DATASET (env ARMIRROR_STORE).",
)
@click.option("-j", "--jobs", default=8, show_default=True, type=click.IntRange(1, 64))
@click.option("--cloud-run-endpoint", metavar="HOST:PORT", hidden=True)
@click.option("--iam-endpoint", metavar="HOST:PORT", hidden=True)
@click.option("--poll", default=2.0, type=click.FloatRange(0, 60), hidden=True)
@format_option
@registry_options
def redeploy(**options: Any) -> None:
    """Move running workloads onto the mirror: GKE owners and Cloud Run services.

    \b
      armirror redeploy --cluster [--context CTX] [-n NS]... --to PREFIX [--dry-run]
      armirror redeploy --cloud-run --project P --region R... --to PREFIX [--dry-run]
      armirror redeploy --undo FILE [--dry-run]
    \b
    GKE: the pod templates of Deployments, StatefulSets, DaemonSets and CronJobs change;
    running pods are traced to them. A bare pod, a Job without a CronJob and a pod of any
    other controller are listed and left alone. Cloud Run: each service's template
    changes, which makes a new revision.
    \b
    An image changes (same mapping as copy and rewrite) only when verify finds it ok in
    the mirror, and the puller (--gke-node-sa; the Cloud Run service agent) can read it
    when that can be checked. Everything else is listed with its reason. Workloads that
    Argo CD, Flux, Helm, Config Sync, Cloud Deploy or Terraform manage are refused:
    rewrite their source instead, or pass --include-managed.
    \b
    Each change is written to an undo file before it is sent, with the version it was
    based on: a workload changed in between is refused, not overwritten. --undo FILE
    restores, and refuses a workload changed since.
    \b
    Exit status 0 when every workload moved (or would, with --dry-run) or already runs
    from the mirror, 1 otherwise, 2 for bad input.
    """
    from armirror.redeploy import ChangeError, UndoFileError
    from armirror.store import StoreError

    try:
        report = _run(options)
    except UndoFileError as exc:
        raise click.UsageError(str(exc)) from None
    except (ChangeError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    if options["output_format"] == "json":
        emit_json(report.to_json())
    else:
        _print(report)
    sys.exit(EXIT_OK if report.ok else EXIT_FAILURE)


def _run(o: dict[str, Any]) -> RedeployReport:
    from armirror.redeploy import UndoLog, default_path, read_undo_file, redeploy, restore

    modes = [name for name in ("cluster", "cloud_run", "undo_path") if o[name]]
    if len(modes) != 1:
        raise click.UsageError("choose one of --cluster, --cloud-run or --undo FILE")
    wait = o["timeout"] if o["wait"] else None
    if o["undo_path"]:
        undo_file = read_undo_file(Path(o["undo_path"]))
        platform, target = redeploy_targets.undo_platform(o, undo_file.platform, undo_file.target)
        with _recording(o) as store:
            return restore(
                platform,
                undo_file,
                dry_run=o["dry_run"],
                wait=wait,
                poll=o["poll"],
                store=store,
                target=target,
            )
    if not o["prefix"]:
        raise click.UsageError("--to PREFIX is required (or set ARMIRROR_DESTINATION)")
    check_prefix(o["prefix"])
    if o["cluster"]:
        platform, target, identity = redeploy_targets.cluster(o, o["context"])
    else:
        platform, target, identity = redeploy_targets.cloud_run(o)
    undo = None
    if not o["dry_run"]:
        path = Path(o["undo_file"]) if o["undo_file"] else default_path()
        undo = UndoLog(path, platform.platform, identity)
        undo.check_writable()
    if o["cluster"] and not o["node_accounts"]:
        info("note: the nodes' read access to the mirror is not checked (see --gke-node-sa)")
    elif o["cloud_run"] and not (o["project_number"] or o["project"].isdigit()):
        info("note: the Cloud Run service agent's read access is not checked (--project-number)")
    check_images = partial(
        mirror_checks.check_images,
        upstreams=o["upstreams"],
        insecure=o["insecure"],
        jobs=o["jobs"],
    )
    check_readers = mirror_checks.reader_checker(o["prefix"], o["iam_endpoint"])
    with _recording(o) as store:
        return redeploy(
            platform,
            prefix=o["prefix"],
            check_images=check_images,
            check_readers=check_readers,
            dry_run=o["dry_run"],
            include_managed=o["include_managed"],
            undo=undo,
            wait=wait,
            poll=o["poll"],
            store=store,
            target=target,
        )


@contextmanager
def _recording(o: dict[str, Any]) -> Iterator[Any]:
    """The store that records the changes, closed when done; none for a dry run."""
    if o["dry_run"]:
        yield None
        return
    store = _open_store(o["store_url"])
    try:
        yield store
    finally:
        store.close()


def _open_store(url: str | None) -> Any:
    from armirror.store import StoreError, open_store

    try:
        return open_store(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--store") from None
    except (StoreError, OSError) as exc:
        raise click.ClickException(f"cannot open the store to record redeploys: {exc}") from None


# -- output ---------------------------------------------------------------------------------

_STYLES = {
    "moved": "green",
    "would-move": "cyan",
    "restored": "green",
    "would-restore": "cyan",
    "already": "blue",
}


def _print(report: RedeployReport) -> None:
    echo = click.echo
    arrow = "would become" if report.dry_run else "->"
    for workload in report.workloads:
        colour = _STYLES.get(workload.status, "red")
        head = f"{workload.title}  {click.style(workload.status, fg=colour, bold=True)}"
        if workload.manager and workload.status != "refused":
            head += f"  (managed by {workload.manager})"
        echo(head)
        if workload.reason:
            echo(f"    {workload.reason}")
        for c in workload.containers:
            label = f"{c.field}[{c.name}]" if c.field != "containers" else c.name or f"#{c.index}"
            if c.status == "move" and not workload.changeable:
                echo(f"    {label}: {c.before}  (in the mirror as {c.after})")
            elif c.status == "move":
                echo(f"    {label}: {c.before} {arrow} {c.after}")
            else:
                why = f": {c.reason}" if c.reason and c.status == "left" else ""
                echo(f"    {label}: {c.before}  ({c.status}{why})")
        if workload.rollout and workload.rollout != "ready":
            echo(f"    rollout: {workload.rollout}")
        for note in workload.notes:
            echo(f"    note: {note}")
    counts = ", ".join(f"{n} {status}" for status, n in report.counts().items())
    info(f"{len(report.workloads)} workloads: {counts or 'none found'}")
    if report.undo_file:  # shown even with -q: it is the way back
        echo(
            f"undo file: {report.undo_file} (armirror redeploy --undo {report.undo_file})", err=True
        )
    elif report.dry_run:
        info("dry run: nothing was changed")
