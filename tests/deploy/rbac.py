"""What the kubernetes executor calls, read from its source, as the RBAC rules it needs.

The official client names its methods ``<verb>_namespaced_<kind>`` (``create_namespaced_job``,
``read_namespaced_pod_log``) and watches by streaming a ``list_*`` method through
``watch.Watch().stream``. Reading those names from the executor's modules gives the exact
(apiGroup, resource, verb) set its service account needs, so the Role in deploy/k8s can be
compared with what the code does rather than with a list kept by hand.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

Rule = tuple[str, str, str]  # (apiGroup, resource, verb)

CLIENT_METHOD = re.compile(r"(create|read|list|patch|replace|delete)_namespaced_(\w+)")
VERBS = {
    "create": "create",
    "read": "get",
    "list": "list",
    "patch": "patch",
    "replace": "update",
    "delete": "delete",
}
# The client's kind names (a sub-resource as a suffix) -> (apiGroup, resource).
RESOURCES = {
    "job": ("batch", "jobs"),
    "job_status": ("batch", "jobs/status"),
    "pod": ("", "pods"),
    "pod_log": ("", "pods/log"),
    "pod_status": ("", "pods/status"),
    "event": ("", "events"),
}


class UnknownCall(ValueError):
    """A client method this table does not map yet: add it rather than guess."""


def needed_rules(source: str) -> set[Rule]:
    """The rules the client calls in ``source`` need."""
    rules: set[Rule] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and (found := CLIENT_METHOD.fullmatch(node.attr)):
            rules.add(_rule(*found.groups()))
        if _is_watch(node):
            assert isinstance(node, ast.Call)
            method = node.args[0]
            assert isinstance(method, ast.Attribute)
            found = CLIENT_METHOD.fullmatch(method.attr)
            if found is None:
                raise UnknownCall(f"watch over {method.attr}")
            rules.add(_rule("watch", found.group(2)))
    return rules


def _is_watch(node: ast.AST) -> bool:
    """``<a Watch>.stream(api.list_namespaced_x, ...)``."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "stream"
        and bool(node.args)
        and isinstance(node.args[0], ast.Attribute)
    )


def _rule(verb: str, kind: str) -> Rule:
    if kind not in RESOURCES:
        raise UnknownCall(f"{verb}_namespaced_{kind}: which resource is {kind!r}?")
    group, resource = RESOURCES[kind]
    return group, resource, VERBS.get(verb, verb)


def executor_rules(folder: Path) -> set[Rule]:
    """What every module of the executors package that calls the client needs."""
    rules: set[Rule] = set()
    for path in sorted(folder.glob("*.py")):
        rules |= needed_rules(path.read_text(encoding="utf-8"))
    return rules


def granted_rules(role: dict[str, object]) -> set[Rule]:
    """A Role's rules as (apiGroup, resource, verb) triples."""
    granted: set[Rule] = set()
    rules = role.get("rules", [])
    assert isinstance(rules, list)
    for rule in rules:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                granted |= {(group, resource, verb) for verb in rule.get("verbs", [])}
    return granted
