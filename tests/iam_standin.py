"""A local gRPC stand-in for the IAM policy reads armirror makes.

It serves, on 127.0.0.1, the two methods the permission check calls, with the real
generated protobuf types and the real full method names, so the real client libraries
(ArtifactRegistryClient, ProjectsClient) talk to it over an insecure channel:

- ``/google.devtools.artifactregistry.v1.ArtifactRegistry/GetIamPolicy``
- ``/google.cloud.resourcemanager.v3.Projects/GetIamPolicy``

Each resource name maps to a ``policy_pb2.Policy`` or to a ``grpc.StatusCode`` to fail
with; an unknown resource is NOT_FOUND.  Every request is recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent import futures
from types import TracebackType

import grpc
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.type import expr_pb2

AR_SERVICE = "google.devtools.artifactregistry.v1.ArtifactRegistry"
PROJECTS_SERVICE = "google.cloud.resourcemanager.v3.Projects"

type Answer = policy_pb2.Policy | grpc.StatusCode


def binding(role: str, *members: str, condition: str | None = None) -> policy_pb2.Binding:
    """A policy binding; ``condition`` is a CEL expression that also serves as its title."""
    result = policy_pb2.Binding(role=role, members=list(members))
    if condition is not None:
        result.condition.CopyFrom(expr_pb2.Expr(expression=condition, title=f"when {condition}"))
    return result


def policy(*bindings: policy_pb2.Binding) -> policy_pb2.Policy:
    """A version 3 policy (conditional bindings need it), as GetIamPolicy returns one."""
    return policy_pb2.Policy(version=3, bindings=list(bindings), etag=b"BwYk3Q4Xz0A=")


class IamStandin:
    """Serve ``repositories`` and ``projects`` answers until the context exits."""

    def __init__(
        self,
        repositories: Mapping[str, Answer],
        projects: Mapping[str, Answer],
    ) -> None:
        self.repositories = dict(repositories)
        self.projects = dict(projects)
        self.requests: list[tuple[str, iam_policy_pb2.GetIamPolicyRequest]] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers(
            (
                self._handler(AR_SERVICE, self.repositories),
                self._handler(PROJECTS_SERVICE, self.projects),
            )
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"127.0.0.1:{self.port}"

    def _handler(self, service: str, answers: Mapping[str, Answer]) -> grpc.GenericRpcHandler:
        def get_iam_policy(
            request: iam_policy_pb2.GetIamPolicyRequest, context: grpc.ServicerContext
        ) -> policy_pb2.Policy:
            with self._lock:
                self.requests.append((service, request))
            answer = answers.get(request.resource, grpc.StatusCode.NOT_FOUND)
            if isinstance(answer, grpc.StatusCode):
                context.abort(answer, f"{answer.name.lower()}: {request.resource}")
            return answer

        return grpc.method_handlers_generic_handler(
            service,
            {
                "GetIamPolicy": grpc.unary_unary_rpc_method_handler(
                    get_iam_policy,
                    request_deserializer=iam_policy_pb2.GetIamPolicyRequest.FromString,
                    response_serializer=policy_pb2.Policy.SerializeToString,
                )
            },
        )

    def __enter__(self) -> IamStandin:
        self._server.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.stop(grace=None)
