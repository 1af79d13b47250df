"""Images in YAML and JSON files: which scanner reads each document.

The file name gives a hint (``compose``, ``cloudbuild``, ``kustomize``, ``skaffold``,
``helm`` values, or a kustomize patch a kustomization names); without one, each
document's own shape decides.  Only documents of a known shape are read: an ``image:``
key in a ConfigMap, a CRD schema or an unrelated settings file is not an image.
"""

from __future__ import annotations

import re

import yaml
from yaml.nodes import MappingNode

from .cloudbuild import cloudbuild, looks_like_cloudbuild
from .compose import compose
from .dotenv import DotEnv
from .finding import Finding, Scanned
from .helm import scan_chart_template, values
from .kustomize import kustomization
from .kustomize_patches import patch_document
from .limits import check_findings, check_time, count_alias_nodes
from .skaffold import is_skaffold, skaffold
from .walk import KUSTOMIZE_PATCH
from .workloads import kubernetes
from .yamldoc import YamlDoc, documents, get, text_of, yaml_message

__all__ = ["scan_chart_template", "scan_yaml", "scan_yaml_file"]

#: an anchor (``&name``) where a node can start; text with none holds no alias
_ANCHOR = re.compile(r"(?:^|[\s:,\[\]{}-])&[^\s,\[\]{}]")


def scan_yaml_file(
    text: str,
    file: str,
    hint: str | None = None,
    app_version: str | None = None,
    dotenv: DotEnv | None = None,
) -> Scanned:
    """Findings, links and facts of a YAML or JSON file, and the parser's message if it
    is not valid (the findings of the documents before an invalid one are kept).

    A file that does not parse but holds ``{{`` is a Go template (outside a chart or
    not): its ``image:`` lines are read as a chart template's are, and it is no error.
    """
    document = YamlDoc(text, file)
    aliases = _ANCHOR.search(text) is not None  # no anchor, no alias: most files have none
    try:
        for root in documents(document.body):
            check_time()
            if root is None:
                continue
            if aliases:
                count_alias_nodes(root)
            if hint == KUSTOMIZE_PATCH:
                patch_document(document, root)
            elif isinstance(root, MappingNode):
                _dispatch(document, root, hint, app_version, dotenv)
            check_findings(len(document.findings))
    except yaml.YAMLError as exc:
        if "{{" in text:
            return Scanned(scan_chart_template(text, file, "kubernetes"))
        return Scanned(document.findings, yaml_message(exc), document.links, document.facts)
    return Scanned(document.findings, None, document.links, document.facts)


def _dispatch(
    document: YamlDoc,
    root: MappingNode,
    hint: str | None,
    app_version: str | None,
    dotenv: DotEnv | None,
) -> None:
    kind, api = text_of(get(root, "kind")), text_of(get(root, "apiVersion"))
    if kind == "Kustomization" or hint == "kustomize":
        kustomization(document, root)
    elif hint == "skaffold" or is_skaffold(root):
        skaffold(document, root)
    elif kind and api:
        kubernetes(document, root, api, kind)
    elif hint == "helm":
        values(document, root, app_version)
    elif hint == "compose" or (hint is None and isinstance(get(root, "services"), MappingNode)):
        compose(document, root, hint == "compose", dotenv)
    elif hint == "cloudbuild" or (hint is None and looks_like_cloudbuild(root)):
        cloudbuild(document, root)


def scan_yaml(
    text: str, file: str, hint: str | None = None, app_version: str | None = None
) -> tuple[list[Finding], str | None]:
    """:func:`scan_yaml_file` for callers that need only the findings and the error."""
    scanned = scan_yaml_file(text, file, hint, app_version)
    return scanned.findings, scanned.error
