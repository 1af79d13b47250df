"""Copy one image, all its platforms and signatures, registry to registry."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

CopyStatus = Literal["copied", "up-to-date", "failed"]


@dataclass
class CopyResult:
    """The outcome of copying one image; what ``copy --format json`` prints per image."""

    source: str
    destination: str
    status: CopyStatus
    digest: str | None = None
    bytes_copied: int = 0
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "finished_at"):
            value = data[key]
            data[key] = value.isoformat() if value else None
        return data
