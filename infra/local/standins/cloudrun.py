"""A Cloud Run Admin API (v2) stand-in on 127.0.0.1, for the real ``google-cloud-run`` client.

A live Cloud Run cannot run here.  This serves, over plain gRPC with the real generated
message types and full method names, what ``armirror redeploy --cloud-run`` calls:

- ``google.cloud.run.v2.Services/ListServices``, ``GetService``, ``UpdateService``;
- ``google.longrunning.Operations/GetOperation``, which the client polls to follow an
  update's long-running operation.

An update whose ``etag`` is not the service's current one is refused with ABORTED (the
service changed since it was read); ``validate_only`` answers with a finished operation
and stores nothing.  A real update raises ``generation``, names a new revision and
returns an operation that finishes on the next poll: ready, or failed when an image is in
``unpullable`` (as Cloud Run fails a revision whose image cannot be pulled).  ``deny``
may refuse any update (INVALID_ARGUMENT, as an organisation policy does).  Every request
is recorded in ``requests``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import Any

import grpc
from google.cloud import run_v2
from google.longrunning import operations_pb2
from google.protobuf import any_pb2
from google.rpc import code_pb2, status_pb2

SERVICES = "google.cloud.run.v2.Services"
OPERATIONS = "google.longrunning.Operations"


def service(
    project: str,
    region: str,
    name: str,
    images: Iterable[tuple[str, str]],
    *,
    labels: dict[str, str] | None = None,
    revision: str = "",
) -> run_v2.Service:
    """A ready service whose template runs ``images`` (``(container, image)`` pairs)."""
    full = f"projects/{project}/locations/{region}/services/{name}"
    created = f"{name}-00001-abc"
    return run_v2.Service(
        name=full,
        uid=str(uuid.uuid5(uuid.NAMESPACE_URL, full)),
        generation=1,
        observed_generation=1,
        labels=labels or {},
        etag='"gen-1"',
        template=run_v2.RevisionTemplate(
            revision=revision,
            service_account=f"runner@{project}.iam.gserviceaccount.com",
            containers=[run_v2.Container(name=c, image=i) for c, i in images],
        ),
        latest_created_revision=f"{full.rsplit('/services/', 1)[0]}/revisions/{created}",
        latest_ready_revision=f"{full.rsplit('/services/', 1)[0]}/revisions/{created}",
        terminal_condition=run_v2.Condition(
            type_="Ready", state=run_v2.Condition.State.CONDITION_SUCCEEDED
        ),
        uri=f"https://{name}-abc.a.run.app",
    )


class CloudRunStandin:
    """Serve ``services`` until the context exits; ``endpoint`` is ``127.0.0.1:PORT``."""

    def __init__(self, services: Iterable[run_v2.Service] = ()) -> None:
        self.services: dict[str, run_v2.Service] = {s.name: s for s in services}
        self.requests: list[tuple[str, Any]] = []
        self.unpullable: set[str] = set()
        self.deny: Callable[[run_v2.Service], str | None] | None = None
        self.before_update: Callable[[], None] | None = None  # runs once, then is cleared
        self._operations: dict[str, tuple[str, run_v2.Service]] = {}  # name -> (service, result)
        self._lock = threading.RLock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((self._services(), self._operations_handler()))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"127.0.0.1:{self.port}"

    # -- state ---------------------------------------------------------------------------

    def edit(self, name: str, change: Callable[[run_v2.Service], None]) -> None:
        """Someone else updates a service: a new generation and etag."""
        with self._lock:
            updated = run_v2.Service(self.services[name])
            change(updated)
            self._bump(updated, self.services[name])

    def _bump(self, updated: run_v2.Service, before: run_v2.Service) -> None:
        updated.generation = before.generation + 1
        updated.etag = f'"gen-{updated.generation}-{uuid.uuid4().hex[:6]}"'
        self.services[updated.name] = updated

    # -- handlers ------------------------------------------------------------------------

    def _services(self) -> grpc.GenericRpcHandler:
        def unary(request_type: Any, response_type: Any, method: Callable[..., Any]) -> Any:
            return grpc.unary_unary_rpc_method_handler(
                method,
                request_deserializer=request_type.deserialize,
                response_serializer=response_type.serialize,
            )

        return grpc.method_handlers_generic_handler(
            SERVICES,
            {
                "ListServices": unary(
                    run_v2.ListServicesRequest, run_v2.ListServicesResponse, self._list
                ),
                "GetService": unary(run_v2.GetServiceRequest, run_v2.Service, self._get),
                "UpdateService": grpc.unary_unary_rpc_method_handler(
                    self._update,
                    request_deserializer=run_v2.UpdateServiceRequest.deserialize,
                    response_serializer=operations_pb2.Operation.SerializeToString,
                ),
            },
        )

    def _operations_handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            OPERATIONS,
            {
                "GetOperation": grpc.unary_unary_rpc_method_handler(
                    self._get_operation,
                    request_deserializer=operations_pb2.GetOperationRequest.FromString,
                    response_serializer=operations_pb2.Operation.SerializeToString,
                )
            },
        )

    def _record(self, method: str, request: Any) -> None:
        with self._lock:
            self.requests.append((method, request))

    def _list(self, request: Any, context: grpc.ServicerContext) -> run_v2.ListServicesResponse:
        self._record("ListServices", request)
        with self._lock:
            found = [
                s
                for name, s in sorted(self.services.items())
                if name.startswith(f"{request.parent}/services/")
            ]
        return run_v2.ListServicesResponse(services=found)

    def _get(self, request: Any, context: grpc.ServicerContext) -> run_v2.Service:
        self._record("GetService", request)
        with self._lock:
            found = self.services.get(request.name)
        if found is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Resource '{request.name}' was not found")
        return found

    def _update(self, request: Any, context: grpc.ServicerContext) -> operations_pb2.Operation:
        self._record("UpdateService", request)
        if self.before_update is not None:
            hook, self.before_update = self.before_update, None
            hook()
        with self._lock:
            wanted = request.service
            current = self.services.get(wanted.name)
            if current is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Resource '{wanted.name}' was not found")
            if wanted.etag and wanted.etag != current.etag:
                context.abort(
                    grpc.StatusCode.ABORTED,
                    f"etag {wanted.etag} does not match the service's current etag",
                )
            if self.deny is not None:
                denied = self.deny(wanted)
                if denied:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, denied)
            updated = run_v2.Service(current)
            updated.template = wanted.template
            name = f"{wanted.name.split('/services/')[0]}/operations/{uuid.uuid4()}"
            if request.validate_only:
                return _operation(name, updated, done=True)
            self._bump(updated, current)
            updated.reconciling = True
            revision = f"{updated.name.rsplit('/', 1)[1]}-{updated.generation:05d}-new"
            updated.latest_created_revision = (
                f"{updated.name.split('/services/')[0]}/revisions/{revision}"
            )
            self._operations[name] = (updated.name, updated)
            return _operation(name, updated, done=False)

    def _get_operation(
        self, request: Any, context: grpc.ServicerContext
    ) -> operations_pb2.Operation:
        self._record("GetOperation", request)
        with self._lock:
            if request.name not in self._operations:
                context.abort(grpc.StatusCode.NOT_FOUND, f"operation {request.name} not found")
            service_name, _ = self._operations[request.name]
            current = self.services[service_name]
            stuck = [c.image for c in current.template.containers if c.image in self.unpullable]
            current.reconciling = False
            current.observed_generation = current.generation
            if stuck:
                message = (
                    f"Revision '{current.latest_created_revision.rsplit('/', 1)[1]}' is not "
                    f"ready and cannot serve traffic. Image '{stuck[0]}' not found."
                )
                current.terminal_condition = run_v2.Condition(
                    type_="Ready", state=run_v2.Condition.State.CONDITION_FAILED, message=message
                )
                operation = _operation(request.name, current, done=True)
                operation.error.CopyFrom(
                    status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message=message)
                )
                operation.ClearField("response")
                return operation
            current.latest_ready_revision = current.latest_created_revision
            current.terminal_condition = run_v2.Condition(
                type_="Ready", state=run_v2.Condition.State.CONDITION_SUCCEEDED
            )
            return _operation(request.name, current, done=True)

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> CloudRunStandin:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)


def _operation(name: str, result: run_v2.Service, *, done: bool) -> operations_pb2.Operation:
    packed = any_pb2.Any()
    packed.Pack(run_v2.Service.pb(result))
    operation = operations_pb2.Operation(name=name, done=done, metadata=packed)
    if done:
        operation.response.CopyFrom(packed)
    return operation
