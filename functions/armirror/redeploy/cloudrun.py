"""Cloud Run: change each service's template through the Cloud Run Admin API (v2).

The official client (``google-cloud-run``) lists services one region at a time (the v2
API has no "every region" wildcard), reads each service's template, and updates it: a new
template makes a new revision.  The update carries the ``etag`` that was read, so a
service changed in between is refused (ABORTED) rather than overwritten;
``validate_only`` is the dry run.  ``--wait`` follows the update's long-running
operation, which ends when the new revision is ready or has failed (an image its service
agent cannot pull fails here).

Images are pulled by the project's Cloud Run service agent,
``service-NUMBER@serverless-robot-prod.iam.gserviceaccount.com``: that is the identity
whose read access to the mirror is checked, when the project number is known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from armirror.google_clients import grpc_client
from armirror.redeploy.errors import ChangeError, Conflict, NotFound, Rejected, bounded
from armirror.redeploy.model import ContainerChange, Workload

if TYPE_CHECKING:
    from google.cloud.run_v2 import ServicesClient

#: Seconds one API call may take.
TIMEOUT = 60.0


def services_client(endpoint: str | None = None) -> ServicesClient:
    """The Cloud Run Admin API client: Google's with application default credentials, or
    one at a loopback ``endpoint`` (``127.0.0.1:PORT``, a local stand-in) over plain
    gRPC without credentials."""
    from google.cloud.run_v2 import ServicesClient
    from google.cloud.run_v2.services.services.transports import ServicesGrpcTransport

    return grpc_client(ServicesClient, ServicesGrpcTransport, endpoint=endpoint)


def service_agent(project_number: str) -> str:
    return f"serviceAccount:service-{project_number}@serverless-robot-prod.iam.gserviceaccount.com"


class CloudRun:
    """The services of one project in the given regions."""

    platform = "cloud-run"

    def __init__(
        self,
        client: ServicesClient,
        *,
        project: str,
        regions: tuple[str, ...],
        project_number: str | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.client = client
        self.project = project
        self.regions = regions
        self.project_number = project_number or (project if project.isdigit() else None)
        self.timeout = timeout
        self._operations: dict[str, Any] = {}

    def discover(self) -> list[Workload]:
        out = []
        for region in self.regions:
            parent = f"projects/{self.project}/locations/{region}"
            try:
                for service in self.client.list_services(parent=parent, timeout=self.timeout):
                    out.append(workload_of(service))
            except Exception as exc:
                raise _api_error(exc, f"listing services in {parent}") from None
        return out

    def consumers(self, workload: Workload) -> list[str]:
        return [service_agent(self.project_number)] if self.project_number else []

    def read(self, kind: str, namespace: str, name: str) -> Workload:
        if kind != "Service":
            raise ChangeError(f"{kind} is not a kind armirror changes on Cloud Run")
        project, _, region = namespace.partition("/")
        full = f"projects/{project}/locations/{region}/services/{name}"
        try:
            return workload_of(self.client.get_service(name=full, timeout=self.timeout))
        except Exception as exc:
            raise _api_error(exc, f"reading {full}") from None

    def send(
        self, workload: Workload, images: list[tuple[ContainerChange, str]], *, dry_run: bool
    ) -> Workload:
        from google.cloud.run_v2 import Service, UpdateServiceRequest

        service = Service(workload.raw)  # a copy: the one read stays as it was
        containers = service.template.containers
        for container, image in images:
            if (
                container.index >= len(containers)
                or containers[container.index].name != container.name
            ):
                raise Conflict(f"container {container.name or container.index} is no longer there")
            containers[container.index].image = image
        if service.template.revision:
            # A named revision exists already: the server must name the new one.
            service.template.revision = ""
            workload.notes.append(
                "the template named its revision; the new one is named by Cloud Run"
            )
        request = UpdateServiceRequest(service=service, validate_only=dry_run)
        try:
            operation = self.client.update_service(request=request, timeout=self.timeout)
            if dry_run:
                return workload_of(operation.result(timeout=self.timeout))
        except Exception as exc:
            raise _api_error(exc, f"updating {service.name}") from None
        self._operations[service.name] = operation
        metadata = operation.metadata
        if metadata is not None and getattr(metadata, "name", None):
            return workload_of(metadata)
        after = workload_of(service)
        after.generation = workload.generation + 1
        return after

    def wait(
        self, workload: Workload, images: set[str], *, timeout: float, poll: float = 2.0
    ) -> str | None:
        """Follow the update's operation until the new revision is ready or failed."""
        name = workload.raw.name if workload.raw is not None else ""
        operation = self._operations.get(name)
        if operation is None:
            return None
        try:
            service = operation.result(timeout=timeout)
        except Exception as exc:
            return bounded(_message(exc))
        from google.cloud.run_v2 import Condition

        condition = service.terminal_condition
        if condition.state != Condition.State.CONDITION_SUCCEEDED:
            return bounded(f"{condition.state.name}: {condition.message or condition.reason}")
        return None


def _message(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc)


def _api_error(exc: Exception, what: str) -> ChangeError:
    from google.api_core import exceptions as gexc

    message = f"{what}: {_message(exc)}"
    if isinstance(exc, gexc.Aborted | gexc.Conflict):
        return Conflict(f"changed since it was read: {message}")
    if isinstance(exc, gexc.FailedPrecondition) and "etag" in message.lower():
        return Conflict(f"changed since it was read: {message}")
    if isinstance(exc, gexc.NotFound):
        return NotFound(message)
    if isinstance(exc, gexc.InvalidArgument | gexc.PermissionDenied | gexc.FailedPrecondition):
        return Rejected(message)
    if isinstance(exc, gexc.GoogleAPIError) or type(exc).__module__.startswith(
        ("grpc", "google.auth")
    ):
        return ChangeError(message)
    raise exc


def workload_of(service: Any) -> Workload:
    """A Workload from a ``run_v2.Service``; ``namespace`` is ``PROJECT/REGION``."""
    parts = str(service.name).split("/")
    project, region, name = (
        (parts[1], parts[3], parts[5]) if len(parts) == 6 else ("", "", str(service.name))
    )
    containers = [
        ContainerChange("containers", index, container.name, container.image)
        for index, container in enumerate(service.template.containers)
        if container.image
    ]
    return Workload(
        platform="cloud-run",
        kind="Service",
        namespace=f"{project}/{region}",
        name=name,
        containers=containers,
        version=service.etag,
        generation=int(service.generation),
        labels=dict(service.labels),
        annotations=dict(service.annotations),
        raw=service,
    )
