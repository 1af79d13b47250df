"""How a change can be refused, named for what the caller should do next."""

from __future__ import annotations

#: Messages from a platform are cut to this many characters before they are shown.
MESSAGE_LIMIT = 400


def bounded(message: object) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


class ChangeError(Exception):
    """A change was not made; ``status`` is the workload status it leads to."""

    status = "failed"

    def __init__(self, message: object) -> None:
        super().__init__(bounded(message))


class Conflict(ChangeError):
    """Someone changed the workload after it was read: read it again and re-run."""

    status = "conflict"


class Rejected(ChangeError):
    """The platform refused the change: an admission webhook, a policy, validation."""

    status = "rejected"


class NotFound(ChangeError):
    """The workload is gone."""

    status = "failed"
