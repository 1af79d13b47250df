"""Migration progress: are new pulls coming from Artifact Registry yet?

:func:`gather` reads a :class:`~armirror.store.PullStore` into a :class:`Progress`
(``model``); :func:`terminal_summary` renders it for a terminal (``text``) and
:func:`html_report` as one self-contained HTML file (``html``, charts in ``charts``):
inline SVG, inline CSS, no scripts, fonts or network, so it can be attached to a
ticket and read anywhere.
"""

from armirror.report.html import SECTIONS, html_report
from armirror.report.model import (
    CLASS_COLOURS,
    CLASS_LABELS,
    CLASSES,
    Progress,
    class_of,
    day_range,
    gather,
)
from armirror.report.text import sparkline, terminal_summary

__all__ = [
    "CLASSES",
    "CLASS_COLOURS",
    "CLASS_LABELS",
    "SECTIONS",
    "Progress",
    "class_of",
    "day_range",
    "gather",
    "html_report",
    "sparkline",
    "terminal_summary",
]
