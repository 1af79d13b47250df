"""infra/sink-filter.txt, the organisation sink's filter, evaluated against sample entries.

A small evaluator for the part of the Logging query language the filter uses (AND, OR,
NOT, parentheses, ``log_id()``, ``=`` and the case-insensitive substring ``:``), so the
filter is checked on the fixtures the code is tested with, not only read."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILTER = ROOT / "infra" / "sink-filter.txt"
FIXTURES = ROOT / "tests" / "fixtures"

Entry = dict[str, Any]
Predicate = Callable[[Entry], bool]

TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<punct>[()=:])|(?P<word>[\w.]+))')


def strip_comments(text: str) -> str:
    """What Terraform sends: the file without its ``--`` comment lines (same regex)."""
    return re.sub(r"(?m)^[ \t]*--.*$", "", text).strip()


def tokenize(text: str) -> list[str]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = TOKEN.match(text, position)
        assert match and match.end() > position, f"cannot read filter at: {text[position:]!r}"
        tokens.append(match.group(match.lastgroup or 0))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return tokens


def lookup(entry: Entry, path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        assert token is not None, "filter ends early"
        assert expected is None or token == expected, f"expected {expected}, got {token}"
        self.index += 1
        return token

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        assert self.peek() is None, f"unexpected {self.peek()}"
        return predicate

    def disjunction(self) -> Predicate:
        terms = [self.conjunction()]
        while self.peek() == "OR":
            self.take()
            terms.append(self.conjunction())
        return lambda e: any(t(e) for t in terms)

    def conjunction(self) -> Predicate:
        factors = [self.factor()]
        while self.peek() == "AND":
            self.take()
            factors.append(self.factor())
        return lambda e: all(f(e) for f in factors)

    def factor(self) -> Predicate:
        token = self.take()
        if token == "NOT":
            inner = self.factor()
            return lambda e: not inner(e)
        if token == "(":
            inner = self.disjunction()
            self.take(")")
            return inner
        if token == "log_id":
            self.take("(")
            log = json.loads(self.take())
            self.take(")")
            suffix = "/logs/" + urllib.parse.quote(log, safe="")
            return lambda e: str(e.get("logName", "")).endswith(suffix)
        assert re.fullmatch(r"[A-Za-z_][\w.]*", token), f"not a field: {token}"
        operator = self.take()
        assert operator in {"=", ":"}, f"unsupported operator {operator}"
        values = self.values()

        def compare(entry: Entry, field: str = token) -> bool:
            actual = lookup(entry, field)
            if not isinstance(actual, str):
                return False
            if operator == "=":
                return actual in values
            return any(v.lower() in actual.lower() for v in values)

        return compare

    def values(self) -> list[str]:
        if self.peek() != "(":
            return [json.loads(self.take())]
        self.take("(")
        found = [json.loads(self.take())]
        while self.peek() == "OR":
            self.take()
            found.append(json.loads(self.take()))
        self.take(")")
        return found


@pytest.fixture(scope="module")
def matches() -> Predicate:
    return Parser(strip_comments(FILTER.read_text())).parse()


def gke_events() -> list[Entry]:
    lines = (FIXTURES / "gke-pull-events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_filter_without_comments_is_a_well_formed_query() -> None:
    text = strip_comments(FILTER.read_text())
    assert "--" not in text
    assert text.count("(") == text.count(")")
    assert text.count('"') % 2 == 0
    Parser(text).parse()


def test_image_events_are_selected_and_crash_loops_are_not(matches: Predicate) -> None:
    events = gke_events()
    image_events, noise = events[:9], events[9]
    for event in image_events:
        assert matches(event), event["jsonPayload"]["message"]
    assert not matches(noise), noise["jsonPayload"]["message"]


def test_selects_every_kubelet_reason_of_the_design(matches: Predicate) -> None:
    base = gke_events()[0]
    for reason in ("Pulling", "Pulled", "Failed", "BackOff"):
        entry = json.loads(json.dumps(base))
        entry["jsonPayload"]["reason"] = reason
        assert matches(entry), reason
    for reason in ("Created", "Started", "Killing", "Scheduled"):
        entry = json.loads(json.dumps(base))
        entry["jsonPayload"]["reason"] = reason
        assert not matches(entry), reason


def test_node_and_cluster_events_and_other_logs_are_not_selected(matches: Predicate) -> None:
    base = gke_events()[0]
    for resource_type in ("k8s_node", "k8s_cluster"):
        entry = json.loads(json.dumps(base))
        entry["resource"]["type"] = resource_type
        assert not matches(entry), resource_type
    entry = json.loads(json.dumps(base))
    entry["logName"] = "projects/example-prod/logs/stdout"
    assert not matches(entry)


def test_cloud_run_deployments_are_selected(matches: Predicate) -> None:
    audit = json.loads((FIXTURES / "cloudrun-audit-replace-service.json").read_text())
    assert matches(audit)
    for method in (
        "google.cloud.run.v1.Services.CreateService",
        "google.cloud.run.v2.Services.CreateService",
        "google.cloud.run.v2.Services.UpdateService",
    ):
        entry = json.loads(json.dumps(audit))
        entry["protoPayload"]["methodName"] = method
        assert matches(entry), method
    for method in (
        "google.cloud.run.v1.Services.DeleteService",
        "google.cloud.run.v1.Services.GetService",
    ):
        entry = json.loads(json.dumps(audit))
        entry["protoPayload"]["methodName"] = method
        assert not matches(entry), method
    entry = json.loads(json.dumps(audit))
    entry["logName"] = "projects/example-prod/logs/cloudaudit.googleapis.com%2Fdata_access"
    assert not matches(entry), "only Admin Activity entries"


def test_pubsub_fixture_carries_an_entry_the_filter_selects(matches: Predicate) -> None:
    import base64

    event = json.loads((FIXTURES / "pubsub-cloudevent.json").read_text())
    message = event.get("data", {}).get("message", {})
    entry = json.loads(base64.b64decode(message["data"]))
    assert matches(entry)
