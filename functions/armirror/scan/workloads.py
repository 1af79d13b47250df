"""Images in Kubernetes objects: every pod template, wherever the kind keeps it.

Workloads keep their pod spec at different paths (``spec.template.spec``, a CronJob's
``spec.jobTemplate.spec.template.spec``), and custom resources nest pod templates
deeper still: a RayCluster's ``spec.headGroupSpec.template.spec``, a JobSet's
``spec.replicatedJobs[].template.spec.template.spec``, a LeaderWorkerSet's
``spec.leaderWorkerTemplate.workerTemplate.spec``.  So the whole object is searched for
container lists (``containers``, ``initContainers``, ``ephemeralContainers``): a list
of mappings that name an ``image`` is a list of containers the cluster pulls.

A few shapes are known by their API group, because their containers have other names:
Tekton's ``steps``, ``sidecars``, ``stepTemplate`` and a Condition's ``check``, Argo
Workflows' ``container`` and ``script`` templates, and the Prometheus operator's
``spec.image``.  Metadata, status and ConfigMap data are never searched, and kinds
that name images without pulling them (a CustomResourceDefinition's schema, GKE
Autopilot's WorkloadAllowlist) are skipped.
"""

from __future__ import annotations

from typing import TypeGuard

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .limits import check_time
from .tekton import image as tekton_image
from .tekton import param_defaults
from .yamldoc import YamlDoc, get, text_of

CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})
_TEKTON_LISTS = frozenset({"steps", "sidecars"})
_TEKTON_SINGLE = frozenset({"stepTemplate", "check"})
_ARGO_SINGLE = frozenset({"container", "script"})
#: subtrees that hold no pod spec (and free-form strings that may look like images)
_SKIPPED_KEYS = frozenset({"metadata", "status", "data", "stringData", "binaryData"})
#: kinds whose ``image`` values are not pulled
_NOT_PULLED = frozenset({"CustomResourceDefinition", "WorkloadAllowlist", "ConfigMap", "Secret"})
#: monitoring.coreos.com kinds whose ``spec.image`` is the image the operator runs
_OPERATED = frozenset({"Prometheus", "PrometheusAgent", "Alertmanager", "ThanosRuler"})


def kubernetes(document: YamlDoc, root: Node, api: str, kind: str) -> None:
    """Report every container image of one Kubernetes object (or List of objects)."""
    if kind.endswith("List"):
        items = get(root, "items")
        if isinstance(items, SequenceNode):
            for item in items.value:
                item_kind, item_api = text_of(get(item, "kind")), text_of(get(item, "apiVersion"))
                if item_kind and item_api:
                    kubernetes(document, item, item_api, item_kind)
        return
    if kind in _NOT_PULLED:
        return
    group = api.split("/", 1)[0] if "/" in api else ""
    label = "cloudrun" if group in ("serving.knative.dev", "run.googleapis.com") else "kubernetes"
    name = text_of(get(get(root, "metadata"), "name")) or "?"
    if group == "monitoring.coreos.com" and kind in _OPERATED:
        document.image_scalar(get(get(root, "spec"), "image"), label, f"{kind}/{name} spec.image")
    lists = CONTAINER_LISTS | (_TEKTON_LISTS if group.endswith("tekton.dev") else frozenset())
    singles = (_TEKTON_SINGLE if group.endswith("tekton.dev") else frozenset()) | (
        _ARGO_SINGLE if group == "argoproj.io" else frozenset({"container"})
    )
    tekton = group.endswith("tekton.dev")
    for container, path, defaults in containers(root, lists, singles, params=tekton):
        where = f"{kind}/{name} {path}.image"
        if tekton:
            tekton_image(document, get(container, "image"), label, where, defaults)
        else:
            document.image_scalar(get(container, "image"), label, where)


def containers(
    root: Node, lists: frozenset[str], singles: frozenset[str], params: bool = False
) -> list[tuple[MappingNode, str, dict[str, Node]]]:
    """Container mappings under ``root`` in document order, with their paths (and, with
    ``params``, the Tekton parameter defaults in scope there).

    Iterative: a document may be nested a thousand deep.  A container that names no
    ``image`` is skipped.  A container reached twice through a YAML alias is one.
    """
    found: list[tuple[MappingNode, str, dict[str, Node]]] = []
    stack: list[tuple[Node, str, dict[str, Node]]] = [(root, "", {})]
    while stack:
        check_time()
        node, path, scope = stack.pop()
        children: list[tuple[Node, str]] = []
        if isinstance(node, MappingNode):
            if params:
                scope = param_defaults(node, scope)
            for key, value in node.value:
                if not isinstance(key, ScalarNode) or key.value in _SKIPPED_KEYS:
                    continue
                child = f"{path}.{key.value}" if path else str(key.value)
                if key.value in lists and isinstance(value, SequenceNode):
                    for index, item in enumerate(value.value):
                        if _is_container(item):
                            cname = text_of(get(item, "name")) or str(index)
                            found.append((item, f"{child}[{cname}]", scope))
                    continue
                if key.value in singles and _is_container(value):
                    found.append((value, child, scope))
                    continue
                children.append((value, child))
        elif isinstance(node, SequenceNode):
            children = [(item, f"{path}[{index}]") for index, item in enumerate(node.value)]
        stack.extend((child, where, scope) for child, where in reversed(children))
    unique = {id(found_[0]): found_ for found_ in reversed(found)}
    return sorted(unique.values(), key=lambda item: (item[0].start_mark.index, item[1]))


def _is_container(node: Node) -> TypeGuard[MappingNode]:
    return isinstance(node, MappingNode) and isinstance(get(node, "image"), ScalarNode)
