"""Tests pinning decisions recorded in docs/semantics-decisions.md."""

from __future__ import annotations

from pathlib import Path

from netfence import api
from netfence.engine.query import External
from netfence.model.ports import Protocol

NS = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n"


def _load(tmp_path: Path, text: str) -> api.Analysis:
    (tmp_path / "m.yaml").write_text(NS + text)
    return api.analyze(api.load([str(tmp_path / "m.yaml")]))


def test_nf_d4_dual_stack_pod_matched_by_either_family(tmp_path: Path) -> None:
    an = _load(tmp_path, """\
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {containers: [{name: c, image: i}]}
status: {podIPs: [{ip: 10.244.1.1}, {ip: "fd00::1"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
spec: {containers: [{name: c, image: i}]}
status: {podIP: 10.244.1.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-v6, namespace: x}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress: [{from: [{ipBlock: {cidr: "fd00::/64"}}]}]
""")
    a = api.resolve(an.state, "x/a")[0]
    b = api.resolve(an.state, "x/b")[0]
    assert an.query.allowed(a, b, Protocol.TCP, 80)  # a's IPv6 address is inside the block
    assert not an.query.allowed(External("10.244.9.9"), b, Protocol.TCP, 80)
    assert an.query.allowed(External("fd00::9"), b, Protocol.TCP, 80)


def test_nf_d5_deployment_scaled_to_zero_keeps_one_representative_pod(tmp_path: Path) -> None:
    an = _load(tmp_path, """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: x}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: i}]}
""")
    pods = [p for p in an.state.pods if p.workload.name == "web"]
    assert len(pods) == 1 and pods[0].synthetic
