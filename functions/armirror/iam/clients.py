"""The two policy readers: Artifact Registry (repositories) and Resource Manager (projects),
and what their failures mean for the person running the check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from armirror.google_clients import grpc_client

if TYPE_CHECKING:
    import grpc
    from google.cloud.artifactregistry_v1 import ArtifactRegistryClient
    from google.cloud.resourcemanager_v3 import ProjectsClient


def artifact_registry_client(
    *, endpoint: str | None = None, channel: grpc.Channel | None = None
) -> ArtifactRegistryClient:
    """An ArtifactRegistryClient: Google's by default, or one at ``endpoint`` / on ``channel``.

    A loopback ``endpoint`` (``127.0.0.1:PORT``) is spoken to over plain gRPC without
    credentials (a local stand-in); any other endpoint uses TLS and application default
    credentials.
    """
    from google.cloud.artifactregistry_v1 import ArtifactRegistryClient
    from google.cloud.artifactregistry_v1.services.artifact_registry.transports import (
        ArtifactRegistryGrpcTransport,
    )

    return grpc_client(
        ArtifactRegistryClient, ArtifactRegistryGrpcTransport, endpoint=endpoint, channel=channel
    )


def projects_client(
    *, endpoint: str | None = None, channel: grpc.Channel | None = None
) -> ProjectsClient:
    """A Resource Manager ProjectsClient, like :func:`artifact_registry_client`."""
    from google.cloud.resourcemanager_v3 import ProjectsClient
    from google.cloud.resourcemanager_v3.services.projects.transports import (
        ProjectsGrpcTransport,
    )

    return grpc_client(ProjectsClient, ProjectsGrpcTransport, endpoint=endpoint, channel=channel)


def policy_request(resource: str) -> Any:
    """GetIamPolicy at version 3, so conditional bindings are returned as such."""
    from google.iam.v1 import iam_policy_pb2, options_pb2

    return iam_policy_pb2.GetIamPolicyRequest(
        resource=resource, options=options_pb2.GetPolicyOptions(requested_policy_version=3)
    )


def explain_failure(exc: Exception, what: str, needs: str) -> str:
    """Why the policy of ``what`` could not be read, and what the caller ``needs``."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return (
            f"cannot read the IAM policy of {what}: no Google credentials"
            " (gcloud auth application-default login)"
        )
    if isinstance(exc, gexc.NotFound):
        return f"{what} does not exist"
    if isinstance(exc, gexc.PermissionDenied):
        return (
            f"permission denied reading the IAM policy of {what}: the caller needs {needs}"
            " (Google also answers this way when it does not exist)"
        )
    if isinstance(exc, gexc.Unauthenticated):
        return f"cannot read the IAM policy of {what}: the credentials were refused"
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"cannot read the IAM policy of {what}: {message}"


def recoverable_errors() -> tuple[type[Exception], ...]:
    """The failures a check reports as an ``error`` finding instead of raising."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    return (gexc.GoogleAPICallError, gexc.RetryError, auth_exc.GoogleAuthError)
