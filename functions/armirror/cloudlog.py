"""Log lines for Cloud Logging: one JSON object a line, with its severity.

A deployed function's stderr becomes its log, and a line that is a JSON object with
``severity`` and ``message`` becomes an entry of that severity (Cloud Logging's
structured logging).  functions-framework configures no Python logging, so without this
armirror's INFO lines (what each event led to, each copy, each message acknowledged as
garbage) were dropped in the cloud, and its warnings arrived as bare text without a
severity.  ``armirror serve`` and the CLI keep their own plain-text logging.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TextIO

#: Longest message written; a log line is read by people, and Cloud Logging caps entries.
MAX_MESSAGE = 16_000


class CloudLoggingFormatter(logging.Formatter):
    """A record as ``{"severity", "message", "logger"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:  # Error Reporting groups errors by the stack in the message
            message = f"{message}\n{self.formatException(record.exc_info)}"
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        entry = {"severity": record.levelname, "message": message, "logger": record.name}
        return json.dumps(entry, ensure_ascii=False)


def configure(stream: TextIO | None = None) -> None:
    """armirror's INFO and everyone's warnings, as structured lines on ``stream`` (stderr).

    Other libraries stay at WARNING: httpx logs every request's full URL at INFO, and a
    registry's upload URLs carry session state.  Calling it again replaces the handler.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler.formatter, CloudLoggingFormatter):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(CloudLoggingFormatter())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("armirror").setLevel(logging.INFO)
