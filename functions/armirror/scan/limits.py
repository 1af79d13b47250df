"""Caps that keep a hostile file from exhausting the scanner (issue 12 §6).

Repository files are written by anyone.  Three small files were enough to take a scan
down: 31 lines of ``ARG An=${An-1}${An-1}`` double a value per line (24 GB before the
kernel killed it), and a 1 KB YAML alias bomb multiplies the nodes a walk visits by ten
per level.  So every file is scanned under a :class:`Budget`:

- an expanded value (an ``ARG``, a ``${VAR:-default}``) is at most
  :data:`MAX_EXPANDED_LENGTH` characters;
- aliases may add at most :data:`MAX_ALIAS_NODES` nodes to a file's YAML documents
  when they are expanded (a file without aliases is never refused for its size: the
  10 MB file cap bounds it);
- a file takes at most :data:`MAX_SECONDS_PER_FILE` seconds of CPU time, checked in
  every loop whose length depends on the file;
- a file holds at most :data:`MAX_FINDINGS_PER_FILE` references.

A file over a cap raises :class:`Refused`; the scan reports the file by name and goes on.
CPU time (not wall time) is measured, so a busy machine does not refuse good files.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_EXPANDED_LENGTH = 64 * 1024
MAX_ALIAS_NODES = 1_000_000
MAX_SECONDS_PER_FILE = 10.0
MAX_FINDINGS_PER_FILE = 100_000


class Refused(Exception):
    """A file the scanner will not finish because it exceeds a cap; says which."""


class Budget:
    """The CPU time one file may take, and what its YAML aliases have added so far."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.thread_time() + seconds
        self.alias_nodes = 0
        self.ticks = 0

    def check(self) -> None:
        """Called in every file-sized loop; reads the clock on the first call and every
        64th after it (a loop step is microseconds; the clock is not free)."""
        self.ticks += 1
        if self.ticks & 63 != 1:
            return
        if time.thread_time() >= self.deadline:
            raise Refused(f"took more than {self.seconds:g} s of CPU time")


_current: ContextVar[Budget | None] = ContextVar("armirror_scan_budget", default=None)


@contextmanager
def budget(seconds: float = MAX_SECONDS_PER_FILE) -> Iterator[Budget]:
    """Scan one file under a fresh budget."""
    token = _current.set(Budget(seconds))
    try:
        yield _current.get()  # type: ignore[misc]
    finally:
        _current.reset(token)


def check_time() -> None:
    """Raise :class:`Refused` when the current file is over its time (no-op outside one)."""
    current = _current.get()
    if current is not None:
        current.check()


def check_length(length: int) -> None:
    if length > MAX_EXPANDED_LENGTH:
        raise Refused(f"an expanded value is longer than {MAX_EXPANDED_LENGTH} characters")


def check_findings(count: int) -> None:
    if count > MAX_FINDINGS_PER_FILE:
        raise Refused(f"more than {MAX_FINDINGS_PER_FILE} image references")


def count_alias_nodes(root: Node) -> None:
    """Add the nodes aliases contribute to ``root`` (expanded minus distinct) to the
    current budget; :class:`Refused` over :data:`MAX_ALIAS_NODES`, or for a recursive
    alias (a node inside itself), which no walk could finish.

    Linear in the distinct nodes: each node's expanded size is computed once,
    iteratively (a document may be nested a thousand deep).
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        children = _children(node)
        if finished:
            active.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            continue
        if key in sizes:
            continue
        if key in active:
            raise Refused("a YAML alias refers to a node that contains it")
        active.add(key)
        stack.append((node, True))
        for child in children:
            child_key = id(child)
            if child_key in sizes:
                continue
            if child_key in active:
                raise Refused("a YAML alias refers to a node that contains it")
            if isinstance(child, ScalarNode):
                sizes[child_key] = 1  # a leaf: no need to visit it
            else:
                stack.append((child, False))
    added = sizes[id(root)] - len(sizes)
    current = _current.get()
    total = added + (current.alias_nodes if current is not None else 0)
    if current is not None:
        current.alias_nodes = total
    if total > MAX_ALIAS_NODES:
        raise Refused(f"YAML aliases expand to more than {MAX_ALIAS_NODES} extra nodes")


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []
