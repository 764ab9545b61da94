"""Label selector matching and label projection (pure).

SEMANTICS sel-6: ``NotIn`` and ``DoesNotExist`` match objects lacking the key; ``In`` and
``Exists`` do not. An empty selector matches everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from netfence.model.policy import LabelSelector, NamespaceScope, Operator, Requirement

__all__ = ["matches", "namespace_matches", "requirement_matches", "selector_keys"]


def requirement_matches(req: Requirement, labels: Mapping[str, str]) -> bool:
    op = req.operator
    if op is Operator.IN:
        return req.key in labels and labels[req.key] in req.values
    if op is Operator.NOT_IN:
        return req.key not in labels or labels[req.key] not in req.values
    if op is Operator.EXISTS:
        return req.key in labels
    return req.key not in labels


def matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """True when ``labels`` satisfy every matchLabels pair and every requirement (AND)."""
    for key, value in selector.match_labels:
        if labels.get(key) != value:
            return False
    return all(requirement_matches(r, labels) for r in selector.match_expressions)


def namespace_matches(scope: NamespaceScope, name: str, labels: Mapping[str, str]) -> bool:
    if scope.name is not None:
        return scope.name == name
    assert scope.selector is not None
    return matches(scope.selector, labels)


def selector_keys(selectors: Iterable[LabelSelector | None]) -> frozenset[str]:
    """Every label key some selector mentions (label projection, ARCHITECTURE step 1)."""
    keys: set[str] = set()
    for s in selectors:
        if s is not None:
            keys |= s.keys()
    return frozenset(keys)
