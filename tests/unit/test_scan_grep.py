"""armirror scan against the grep pipeline people run today, on the corpus.

Lists what grep gets wrong: the test fails if grep stops making a mistake the corpus
was built to show (then the corpus no longer demonstrates it) or if armirror makes any.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "scan"))
import accuracy

pytestmark = pytest.mark.skipif(shutil.which("grep") is None, reason="needs grep")


def test_armirror_precision_and_recall_are_one() -> None:
    assert accuracy.score(accuracy.armirror_hits(), accuracy.truth()) == (1.0, 1.0)


def test_what_grep_gets_wrong() -> None:
    false, missed = accuracy.grep_mistakes()
    false_lines = {f"{file}:{line}" for file, line in false}
    # comments, heredoc bodies, stage names, first-party images, ignored files,
    # templates, unrelated keys, a ConfigMap's data and a block of text
    assert {
        "app/Dockerfile:4",
        "app/Dockerfile:13",
        "app/Dockerfile:17",
        "app/Dockerfile:21",
        "win/Dockerfile.windows:7",
        "ignored/Dockerfile:1",
        "k8s/skip.generated.yaml:6",
        "k8s/workloads.yaml:1",
        "k8s/workloads.yaml:19",
        "k8s/workloads.yaml:35",
        "k8s/workloads.yaml:37",
        "k8s/workloads.yaml:94",
        "config/app-settings.yaml:3",
        "charts/web/values.yaml:26",
        "charts/web/templates/deployment.yaml:10",
    } <= false_lines
    # ARG-built names, Cloud Build steps, JSON, kustomize, *.Dockerfile, syntax directives
    assert {
        ("app/Dockerfile", 1),
        ("tools/builder.Dockerfile", 4),
        ("cloudbuild.yaml", 5),
        ("k8s/debug-pod.json", 10),
        ("overlays/prod/kustomization.yaml", 8),
    } <= set(missed)
    precision, recall = accuracy.score(set(accuracy.grep_hits()), accuracy.truth())
    assert precision < 0.6 and recall < 0.8
