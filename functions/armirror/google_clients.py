"""Clients of Google Cloud APIs: Google's by default, or a local stand-in's on loopback.

Every Google API client armirror builds (Artifact Registry and Resource Manager for IAM
policies, Cloud Run Admin for redeploy) takes the same ``endpoint``: none for Google's
own with application default credentials; a loopback ``HOST:PORT`` (a local stand-in)
over plain gRPC without credentials; any other endpoint over TLS with application
default credentials.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc


def is_loopback(endpoint: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``[::1]``, with or without a port."""
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def grpc_client[C](
    client_class: Callable[..., C],
    transport_class: Callable[..., Any],
    *,
    endpoint: str | None = None,
    channel: grpc.Channel | None = None,
) -> C:
    """``client_class`` on ``channel``, at ``endpoint`` (see the module docstring), or
    Google's own."""
    if channel is None and endpoint is not None and is_loopback(endpoint):
        import grpc

        channel = grpc.insecure_channel(endpoint)
    if channel is not None:
        return client_class(transport=transport_class(channel=channel))
    if endpoint is not None:
        return client_class(client_options={"api_endpoint": endpoint})
    return client_class()
