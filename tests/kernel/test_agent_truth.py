# ruff: noqa: E501  (policy YAML in flow style reads best on one line)
"""Truth tables in the real kernel: the agent's nftables ruleset against the engine.

One bed per topology (bridge with br_netfilter, routed /32) holds six pods in two namespaces.
Each scenario writes its policies next to the pod manifests, runs
``netfence agent apply --node node1`` inside the node's network namespace (the agent's real
code path: compile, one JSON batch through ``nft -j -f -``), then probes every
(source pod, destination pod, protocol, port) with real bounded TCP connects and UDP echoes
and compares each result with the engine's verdict (``api.analyze(...).query.flow``).
Scenarios follow one another on the same bed, so each apply is also a full resync that must
replace the previous scenario's ruleset exactly.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netfence import api
from netfence.engine.query import FlowVerdict
from netfence.model.cluster import Pod
from netfence.model.ports import Protocol
from tests.kernel.bed import Bed, PodSpec, Probe, session_suffix

REPO = Path(__file__).resolve().parents[2]
TCP = (80, 81, 5432, 8080)
UDP = (53, 5353)

# name, namespace, ip, labels, container ports (name, port, protocol)
PODS: list[tuple[str, str, str, dict[str, str], list[tuple[str, int, str]]]] = [
    ("web1", "shop", "10.244.1.11", {"app": "web"}, [("http", 80, "TCP"), ("dns", 53, "UDP")]),
    ("web2", "shop", "10.244.1.12", {"app": "web"}, [("http", 8080, "TCP")]),
    ("db", "shop", "10.244.1.13", {"app": "db"}, [("pg", 5432, "TCP")]),
    ("client", "ops", "10.244.1.14", {"app": "client"}, []),
    ("other", "ops", "10.244.1.15", {"app": "other"}, [("http", 81, "TCP")]),
    ("dns", "ops", "10.244.1.16", {"app": "dns"}, [("dns", 5353, "UDP")]),
]


def cluster_yaml() -> str:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "shop", "labels": {"area": "front"}}},
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "ops", "labels": {"area": "platform"}}},
    ]
    for name, ns, ip, labels, ports in PODS:
        docs.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": "node1", "containers": [{
                "name": "c", "image": "registry.k8s.io/pause:3.9",
                "ports": [{"name": n, "containerPort": p, "protocol": pr}
                          for n, p, pr in ports]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
    return "\n---\n".join(json.dumps(d) for d in docs) + "\n"


def np(name: str, ns: str, spec: str, annotations: str = "") -> str:
    meta = f"{{name: {name}, namespace: {ns}{', annotations: ' + annotations if annotations else ''}}}"
    return ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: " + meta
            + "\nspec:\n" + textwrap.indent(textwrap.dedent(spec).strip(), "  ") + "\n")


def cnp(name: str, spec: str, annotations: str = "") -> str:
    meta = f"{{name: {name}{', annotations: ' + annotations if annotations else ''}}}"
    return ("apiVersion: policy.networking.k8s.io/v1beta1\nkind: ClusterNetworkPolicy\n"
            "metadata: " + meta + "\nspec:\n"
            + textwrap.indent(textwrap.dedent(spec).strip(), "  ") + "\n")


SCENARIOS: dict[str, list[str]] = {
    "both-directions-required": [
        np("client-out", "ops", """
            podSelector: {matchLabels: {app: client}}
            policyTypes: [Egress]
            egress: [{to: [{namespaceSelector: {matchLabels: {area: front}},
                            podSelector: {matchLabels: {app: web}}}]}]"""),
        np("web-in", "shop", """
            podSelector: {matchLabels: {app: web}}
            ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: other}}}]}]
            """),
    ],
    "non-isolated-pods": [
        np("db-in", "shop", """
            podSelector: {matchLabels: {app: db}}
            ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 5432}]}]
            """),
    ],
    "named-ports-differ-per-pod": [
        np("web-http", "shop", """
            podSelector: {matchLabels: {app: web}}
            ingress: [{ports: [{port: http}]}]"""),
        np("client-http", "ops", """
            podSelector: {matchLabels: {app: client}}
            policyTypes: [Egress]
            egress: [{to: [{namespaceSelector: {}}], ports: [{port: http}, {port: dns, protocol: UDP}]}]
            """),
    ],
    "endport-range": [
        np("ranges", "shop", """
            podSelector: {}
            ingress: [{ports: [{port: 80, endPort: 81}, {protocol: UDP, port: 5000, endPort: 5353}]}]
            """),
    ],
    "ipblock-except": [
        np("blocks", "shop", """
            podSelector: {matchLabels: {app: db}}
            ingress:
            - from: [{ipBlock: {cidr: 10.244.1.0/28, except: [10.244.1.14/32]}}]
            - from: [{ipBlock: {cidr: 10.244.1.14/31}}]
              ports: [{port: 8080}]"""),
        np("egress-blocks", "ops", """
            podSelector: {matchLabels: {app: other}}
            policyTypes: [Egress]
            egress: [{to: [{ipBlock: {cidr: 10.244.1.8/29, except: [10.244.1.12/30]}}]}]"""),
    ],
    "udp-only": [
        np("udp", "ops", """
            podSelector: {matchLabels: {app: dns}}
            ingress: [{ports: [{protocol: UDP, port: 5353}, {protocol: UDP, port: 53}]}]"""),
        np("udp-out", "shop", """
            podSelector: {matchLabels: {app: web}}
            policyTypes: [Egress]
            egress: [{ports: [{protocol: UDP}]}]"""),
    ],
    "self-traffic": [
        np("deny-all", "shop", """
            podSelector: {}
            policyTypes: [Ingress, Egress]"""),
    ],
    "admin-deny-beats-allow": [
        np("allow-all", "shop", """
            podSelector: {}
            ingress: [{}]"""),
        cnp("no-ops-to-db", """
            tier: Admin
            priority: 10
            subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: db}}}}
            ingress: [{action: Deny, from: [{namespaces: {matchLabels: {area: platform}}}]}]"""),
    ],
    "admin-pass-then-netpol-and-baseline": [
        cnp("pass-web", """
            tier: Admin
            priority: 5
            subject: {namespaces: {}}
            ingress:
            - {action: Pass, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: client}}}}]}
            - {action: Accept, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {number: 80}}}]}
            """),
        np("web-only-from-other", "shop", """
            podSelector: {matchLabels: {app: web}}
            ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: other}}}]}]
            """),
        cnp("baseline-deny", """
            tier: Baseline
            priority: 1
            subject: {namespaces: {matchLabels: {area: platform}}}
            ingress: [{action: Deny, from: [{namespaces: {}}]}]"""),
    ],
    "admin-accept-over-isolation-and-egress-accept": [
        np("deny-in", "shop", """
            podSelector: {}
            policyTypes: [Ingress]"""),
        cnp("accept-8080", """
            tier: Admin
            priority: 1
            subject: {namespaces: {matchLabels: {area: front}}}
            ingress: [{action: Accept, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {number: 8080}}}]}]
            """),
        cnp("egress-accept-but-dst-isolated", """
            tier: Admin
            priority: 2
            subject: {namespaces: {matchLabels: {area: platform}}}
            egress: [{action: Accept, to: [{namespaces: {}}]}]"""),
    ],
    "baseline-named-port-egress": [
        cnp("baseline-egress", """
            tier: Baseline
            priority: 3
            subject: {namespaces: {matchLabels: {area: platform}}}
            egress:
            - {action: Accept, to: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}}], protocols: [{destinationNamedPort: http}]}
            - {action: Deny, to: [{namespaces: {}}]}
            """),
    ],
    "audit-mode-never-denies": [
        np("audit-isolate", "shop", """
            podSelector: {matchLabels: {app: db}}
            ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]""",
           "{netfence.dev/mode: audit}"),
        cnp("audit-deny", """
            tier: Admin
            priority: 1
            subject: {namespaces: {matchLabels: {area: platform}}}
            ingress: [{action: Deny, from: [{namespaces: {}}]}]""",
            "{netfence.dev/mode: audit}"),
        np("enforced", "ops", """
            podSelector: {matchLabels: {app: dns}}
            ingress: [{ports: [{protocol: UDP, port: 5353}]}]"""),
    ],
    "multi-namespace-selectors-notin": [
        np("expr", "ops", """
            podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [dns]}]}
            ingress:
            - from: [{namespaceSelector: {matchExpressions: [{key: area, operator: In, values: [front]}]},
                      podSelector: {matchExpressions: [{key: app, operator: Exists}]}}]
              ports: [{port: 81}, {port: 80, protocol: TCP}]"""),
    ],
}


@pytest.fixture(scope="module", params=["bridge", "routed"])
def bed(request: pytest.FixtureRequest, kernel_env: dict[str, Any]) -> Iterator[Bed]:
    if request.param == "bridge" and not kernel_env.get("br_netfilter"):
        pytest.skip("br_netfilter is not available: bridged pod traffic would bypass nftables")
    specs = [PodSpec(name, ip, TCP, UDP) for name, _ns, ip, _l, _p in PODS]
    with Bed(f"tr{request.param[0]}{session_suffix()}", specs, request.param) as b:
        yield b


def apply(bed: Bed, directory: Path) -> None:
    # both transports: in-process libnftables (auto) on the bridge, nft -j -f - when routed
    transport = "auto" if bed.mode == "bridge" else "nft"
    proc = bed.node_exec([sys.executable, "-m", "netfence", "agent", "apply", "--node", "node1",
                          "-f", str(directory), "-q", "--transport", transport], check=False)
    assert proc.returncode == 0, proc.stderr


def engine_verdicts(directory: Path) -> dict[tuple[str, str, str, int], FlowVerdict]:
    state = api.load([str(directory)])
    analysis = api.analyze(state)
    pods: dict[str, Pod] = {p.name: p for p in state.pods}
    out: dict[tuple[str, str, str, int], FlowVerdict] = {}
    for src in pods.values():
        for dst in pods.values():
            for proto, ports in ((Protocol.TCP, TCP), (Protocol.UDP, UDP)):
                for port in ports:
                    out[(src.name, dst.name, str(proto).lower(), port)] = \
                        analysis.query.flow(src, dst, proto, port)
    return out


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_kernel_matches_engine(bed: Bed, scenario: str, tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text(cluster_yaml(), encoding="utf-8")
    (tmp_path / "policies.yaml").write_text("---\n".join(SCENARIOS[scenario]), encoding="utf-8")
    want = engine_verdicts(tmp_path)
    apply(bed, tmp_path)
    ips = {name: ip for name, _ns, ip, _l, _p in PODS}
    keys = sorted(want)
    probes = [Probe(s, ips[d], proto, port, 0.5) for s, d, proto, port in keys]  # type: ignore[arg-type]
    got = bed.probe_many(probes)
    wrong = [f"{s} -> {d} {proto}/{port}: kernel {'allow' if g else 'deny'}, engine "
             f"{'allow' if want[(s, d, proto, port)].allowed else 'deny'}"
             for (s, d, proto, port), g in zip(keys, got, strict=True)
             if g != want[(s, d, proto, port)].allowed]
    assert not wrong, f"{scenario} ({bed.mode}):\n" + "\n".join(wrong)
    # the scenario must exercise both verdicts, or it proves nothing
    assert any(got) and not all(got), f"{scenario}: every probe had the same result"
