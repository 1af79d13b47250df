"""Cloud Logging entries -> :class:`PullEvent`: what a node (or Cloud Run) did with an image.

Inputs, all of which end in :func:`parse_log_entry`:

- a LogEntry as a dict, or its JSON text (:func:`parse_log_entry`, :func:`parse_json`);
- a Pub/Sub CloudEvent from an Eventarc trigger, whose ``data.message.data`` is the base64
  of the LogEntry JSON (:func:`from_cloud_event`);
- exported files: ``gcloud logging read --format=json`` (one JSON array), JSON lines, and
  newline-delimited exports of a BigQuery sink table, whose column names are lower-cased
  (``jsonPayload.involvedobject``) and whose timestamps read ``2026-10-01 08:00:01 UTC``
  (:func:`read_entries` streams them).

Nothing here raises on bad input.  Every entry that yields no event says why in a
:class:`Skip` whose ``code`` is one of :data:`SKIP_CODES`, so skips can be counted: a
Pub/Sub message that can never be parsed must be acknowledged, not redelivered for a day.

One module per concern:

- :mod:`.model`: PullEvent, Skip, ParseResult and the skip codes;
- :mod:`.columns`: the bounds of each column, which every extracted value must fit;
- :mod:`.timestamps`: the timestamp forms of entries and their exports;
- :mod:`.messages`: kubelet message texts;
- :mod:`.fields`: reading a LogEntry's fields whatever their shape;
- :mod:`.kubelet`, :mod:`.cloudrun`: the two kinds of entry that carry events;
- :mod:`.logentry`: which of them an entry is;
- :mod:`.pubsub`: JSON text and Pub/Sub CloudEvents;
- :mod:`.files`: exported files, streamed.
"""

from __future__ import annotations

from armirror.events.columns import (
    MAX_CLOUD_RUN_IMAGES,
    MAX_IMAGE_CHARS,
    MAX_INSERT_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_PULL_SECONDS,
    fit_event,
)
from armirror.events.files import (
    MalformedInput,
    TextReader,
    decode_line,
    line_blocks,
    read_entries,
)
from armirror.events.logentry import parse_log_entry
from armirror.events.messages import MAX_MESSAGE_CHARS, MessageInfo, parse_message
from armirror.events.model import (
    MAX_ENTRY_BYTES,
    REASONS,
    SKIP_CODES,
    ParseResult,
    PullEvent,
    Reason,
    Skip,
    first_by_insert_id,
)
from armirror.events.pubsub import from_cloud_event, parse_json
from armirror.events.timestamps import parse_timestamp

__all__ = [
    "MAX_CLOUD_RUN_IMAGES",
    "MAX_ENTRY_BYTES",
    "MAX_IMAGE_CHARS",
    "MAX_INSERT_ID_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_NAME_CHARS",
    "MAX_PULL_SECONDS",
    "REASONS",
    "SKIP_CODES",
    "MalformedInput",
    "MessageInfo",
    "ParseResult",
    "PullEvent",
    "Reason",
    "Skip",
    "TextReader",
    "decode_line",
    "fit_event",
    "first_by_insert_id",
    "from_cloud_event",
    "line_blocks",
    "parse_json",
    "parse_log_entry",
    "parse_message",
    "parse_timestamp",
    "read_entries",
]
