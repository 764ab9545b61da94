"""tier-8 / D-5: equal priorities in one tier that could match the same traffic warn."""

from __future__ import annotations

from pathlib import Path

from netfence import api
from netfence.errors import Severity

BASE = """
apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
spec: {containers: [{name: c, image: i}]}
"""

CNP = """
---
apiVersion: policy.networking.k8s.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {{name: {name}}}
spec:
  tier: Admin
  priority: {priority}
  subject: {{pods: {{namespaceSelector: {{}}, podSelector: {{matchLabels: {{app: {app}}}}}}}}}
  ingress:
  - {{action: {action}, from: [{{namespaces: {{}}}}]}}
"""


def _analyze(tmp_path: Path, *cnps: dict[str, object]) -> api.Analysis:
    text = BASE + "".join(CNP.format(**c) for c in cnps)
    (tmp_path / "m.yaml").write_text(text)
    state = api.load([str(tmp_path / "m.yaml")])
    assert not [d for d in state.diagnostics if d.severity >= Severity.ERROR]
    return api.analyze(state)


def test_tier_8_equal_priority_overlapping_subjects_warn(tmp_path: Path) -> None:
    an = _analyze(tmp_path, {"name": "p1", "priority": 5, "app": "a", "action": "Deny"},
                  {"name": "p2", "priority": 5, "app": "a", "action": "Accept"})
    warn = [d for d in an.diagnostics if d.code == "ambiguous-priority"]
    assert len(warn) == 1
    assert "p1" in warn[0].message and "p2" in warn[0].message
    assert warn[0].source.line > 0
    # D-5: ordered by kind and name, so p1 (Deny) decides
    a = api.resolve(an.state, "x/a")[0]
    b = api.resolve(an.state, "x/b")[0]
    from netfence.model.ports import Protocol
    fv = an.query.flow(b, a, Protocol.TCP, 80)
    assert not fv.allowed
    assert fv.ingress is not None and fv.ingress.ambiguous


def test_tier_8_equal_priority_disjoint_subjects_do_not_warn(tmp_path: Path) -> None:
    an = _analyze(tmp_path, {"name": "p1", "priority": 5, "app": "a", "action": "Deny"},
                  {"name": "p2", "priority": 5, "app": "b", "action": "Accept"})
    assert not [d for d in an.diagnostics if d.code == "ambiguous-priority"]


def test_tier_8_different_priorities_do_not_warn(tmp_path: Path) -> None:
    an = _analyze(tmp_path, {"name": "p1", "priority": 5, "app": "a", "action": "Deny"},
                  {"name": "p2", "priority": 6, "app": "a", "action": "Accept"})
    assert not [d for d in an.diagnostics if d.code == "ambiguous-priority"]
