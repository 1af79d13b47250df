"""OCI distribution client: authentication, transport, manifests and the copy engine."""

from armirror.registry.client import RegistryClient
from armirror.registry.copy import Copier, CopyResult, copy_images
from armirror.registry.errors import (
    NotFound,
    PermanentError,
    RateLimited,
    RegistryError,
    TransientError,
    Unauthorized,
)
from armirror.registry.retry import RetryPolicy

__all__ = [
    "Copier",
    "CopyResult",
    "NotFound",
    "PermanentError",
    "RateLimited",
    "RegistryClient",
    "RegistryError",
    "RetryPolicy",
    "TransientError",
    "Unauthorized",
    "copy_images",
]
