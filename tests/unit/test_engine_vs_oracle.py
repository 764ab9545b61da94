"""Property tests: the class-based engine against the naive per-pod oracle (tests/oracle).

Hypothesis generates small random clusters as YAML manifests (namespaces, bare pods with named
container ports, pod IPs and hostNetwork pods, NetworkPolicies and ClusterNetworkPolicies in the
Admin and Baseline tiers), loads them through ``api.load`` and compares every probed flow, and the
connectivity map, with ``oracle.naive.allowed``. Every generated object is valid: a state with
ERROR diagnostics fails the test instead of silently shrinking the cluster.
"""

from __future__ import annotations

import ipaddress
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from netfence import api
from netfence.engine.query import External
from netfence.errors import Severity
from netfence.model.cluster import ClusterState, Pod
from netfence.model.ports import Protocol
from tests.oracle.naive import Endpoint, allowed

Doc = dict[str, Any]

# -- vocabulary ------------------------------------------------------------------------------

NAMESPACES = ("x", "y", "z")
LABEL_KEYS = ("team", "env", "area")
LABEL_VALUES = ("a", "b")
PORT_NAMES = ("http", "web", "dns")
PORT_NUMBERS = (80, 81, 8080)
NODES = {"node-1": "10.244.255.1", "node-2": "10.244.255.2"}
EXTERNALS = ("8.8.8.8", "10.244.9.9", "2001:db8::1", *NODES.values())
PROBES: tuple[tuple[Protocol, int], ...] = (
    (Protocol.TCP, 80), (Protocol.TCP, 81), (Protocol.TCP, 8080), (Protocol.UDP, 80),
    (Protocol.UDP, 81), (Protocol.UDP, 8080), (Protocol.SCTP, 80), (Protocol.TCP, 443),
)
IP_BLOCKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("10.244.0.0/16", ()),
    ("10.244.0.0/16", ("10.244.1.0/24",)),
    ("10.244.1.0/24", ()),
    ("10.244.2.0/24", ("10.244.2.12/32",)),
    ("10.244.1.11/32", ()),
    ("10.244.255.0/24", ()),
    ("0.0.0.0/0", ()),
    ("0.0.0.0/0", ("10.0.0.0/8",)),
    ("8.8.8.0/24", ()),
    ("::/0", ()),
    ("2001:db8::/64", ()),
)
NETWORKS = ("10.244.0.0/16", "10.244.1.0/24", "10.244.2.12/32", "10.244.255.1/32",
            "8.8.8.8/32", "0.0.0.0/0", "::/0")
NP_PORTS: tuple[Doc, ...] = (
    {"port": 80},
    {"port": 81, "protocol": "UDP"},
    {"port": 80, "endPort": 81},
    {"port": 8080, "protocol": "TCP"},
    {"port": 80, "protocol": "SCTP"},
    {"port": 443},
    {"port": "http"},
    {"port": "web", "protocol": "UDP"},
    {"port": "dns", "protocol": "UDP"},
    {"protocol": "UDP"},
)
CNP_NUMERIC_PROTOCOLS: tuple[Doc, ...] = (
    {"tcp": {"destinationPort": {"number": 80}}},
    {"udp": {"destinationPort": {"range": {"start": 80, "end": 81}}}},
    {"tcp": {"destinationPort": {"range": {"start": 8080, "end": 8081}}}},
    {"sctp": {"destinationPort": {"number": 80}}},
)
CNP_NAMED_PROTOCOLS: tuple[Doc, ...] = (
    {"destinationNamedPort": "http"},
    {"destinationNamedPort": "web"},
)

# -- generators --------------------------------------------------------------------------------

labels_st = st.dictionaries(st.sampled_from(LABEL_KEYS), st.sampled_from(LABEL_VALUES),
                            max_size=3)


@st.composite
def requirement_st(draw: st.DrawFn, keys: tuple[str, ...] = LABEL_KEYS,
                   values: tuple[str, ...] = LABEL_VALUES) -> Doc:
    key = draw(st.sampled_from(keys))
    op = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
    if op in ("Exists", "DoesNotExist"):
        return {"key": key, "operator": op}
    vals = draw(st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True))
    return {"key": key, "operator": op, "values": vals}


@st.composite
def selector_st(draw: st.DrawFn, namespace: bool = False) -> Doc:
    """A label selector; namespace selectors may also use kubernetes.io/metadata.name."""
    keys: tuple[str, ...] = LABEL_KEYS
    values: tuple[str, ...] = LABEL_VALUES
    if namespace and draw(st.booleans()):
        keys, values = ("kubernetes.io/metadata.name",), NAMESPACES
    sel: Doc = {}
    shape = draw(st.sampled_from(("empty", "labels", "expressions", "both")))
    if shape == "empty":
        return sel  # biased towards matching: most rules should decide something
    if shape in ("labels", "both"):
        sel["matchLabels"] = draw(st.dictionaries(st.sampled_from(keys),
                                                  st.sampled_from(values), min_size=1,
                                                  max_size=2))
    me = draw(st.lists(requirement_st(keys, values), min_size=shape != "labels",
                       max_size=0 if shape == "labels" else 2))
    if me:
        sel["matchExpressions"] = me
    return sel


@st.composite
def container_ports_st(draw: st.DrawFn) -> list[Doc]:
    names = draw(st.lists(st.sampled_from(PORT_NAMES), max_size=3, unique=True))
    out: list[Doc] = []
    seen: set[tuple[int, str]] = set()
    for name in names:
        number = draw(st.sampled_from(PORT_NUMBERS))
        proto = draw(st.sampled_from(("TCP", "UDP", None)))
        if (number, proto or "TCP") in seen:
            continue
        seen.add((number, proto or "TCP"))
        cp: Doc = {"name": name, "containerPort": number}
        if proto is not None:
            cp["protocol"] = proto
        out.append(cp)
    return out


@st.composite
def pod_st(draw: st.DrawFn, index: int, namespaces: list[str]) -> Doc:
    ns = draw(st.sampled_from(namespaces))
    node = draw(st.sampled_from(sorted(NODES)))
    host = draw(st.integers(0, 9)) == 0
    ports = draw(container_ports_st())
    split = draw(st.integers(0, len(ports)))  # named ports may sit in a second container
    containers: list[Doc] = [{"name": "c", "image": "registry.k8s.io/pause:3.9",
                              "ports": ports[:split]}]
    if split < len(ports):
        containers.append({"name": "d", "image": "registry.k8s.io/pause:3.9",
                           "ports": ports[split:]})
    spec: Doc = {"nodeName": node, "containers": containers}
    meta: Doc = {"name": f"p{index}", "namespace": ns}
    labels = draw(labels_st)
    if labels:
        meta["labels"] = labels
    doc: Doc = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    if host:
        spec["hostNetwork"] = True
        ip: str | None = NODES[node]
    else:
        ip = draw(st.sampled_from((None, f"10.244.1.{10 + index}", f"10.244.2.{10 + index}")))
    if ip is not None:
        doc["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
        if draw(st.booleans()):
            doc["status"]["hostIP"] = NODES[node]
    return doc


@st.composite
def np_peer_st(draw: st.DrawFn) -> Doc:
    kind = draw(st.sampled_from(("pod", "ns", "both", "ip")))
    if kind == "ip":
        cidr, excepts = draw(st.sampled_from(IP_BLOCKS))
        block: Doc = {"cidr": cidr}
        if excepts:
            block["except"] = list(excepts)
        return {"ipBlock": block}
    peer: Doc = {}
    if kind in ("pod", "both"):
        peer["podSelector"] = draw(selector_st())
    if kind in ("ns", "both"):
        peer["namespaceSelector"] = draw(selector_st(namespace=True))
    return peer


@st.composite
def np_rule_st(draw: st.DrawFn, direction: str) -> Doc:
    rule: Doc = {}
    peers = draw(st.one_of(st.none(), st.lists(np_peer_st(), max_size=2)))
    if peers is not None:
        rule["from" if direction == "ingress" else "to"] = peers
    ports = draw(st.one_of(st.none(), st.lists(st.sampled_from(NP_PORTS), max_size=2)))
    if ports is not None:
        rule["ports"] = ports
    return rule


@st.composite
def np_st(draw: st.DrawFn, namespace: str, name: str) -> Doc:
    spec: Doc = {"podSelector": draw(selector_st())}
    types = draw(st.sampled_from((None, ["Ingress"], ["Egress"], ["Ingress", "Egress"])))
    if types is not None:
        spec["policyTypes"] = types
    for direction in ("ingress", "egress"):
        rules = draw(st.one_of(st.none(), st.lists(np_rule_st(direction), max_size=2)))
        if rules is not None:
            spec[direction] = rules
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


@st.composite
def cnp_peer_st(draw: st.DrawFn, egress: bool, named_ports: bool) -> Doc:
    kinds = ["namespaces", "pods"]
    if egress and not named_ports:  # named ports with networks/nodes peers are invalid
        kinds += ["networks", "nodes"]
    kind = draw(st.sampled_from(kinds))
    if kind == "namespaces":
        return {"namespaces": draw(selector_st(namespace=True))}
    if kind == "pods":
        return {"pods": {"namespaceSelector": draw(selector_st(namespace=True)),
                         "podSelector": draw(selector_st())}}
    if kind == "networks":
        return {"networks": draw(st.lists(st.sampled_from(NETWORKS), min_size=1, max_size=2,
                                          unique=True))}
    return {"nodes": draw(st.sampled_from(({}, {"matchLabels": {"role": "a"}},
                                           {"matchLabels": {"role": "b"}})))}


@st.composite
def cnp_rule_st(draw: st.DrawFn, index: int, egress: bool) -> Doc:
    actions = ("Accept", "Deny", "Pass")
    rule: Doc = {"name": f"r{index}", "action": draw(st.sampled_from(actions))}
    protocols = draw(st.one_of(
        st.none(),
        st.lists(st.sampled_from(CNP_NUMERIC_PROTOCOLS + CNP_NAMED_PROTOCOLS), min_size=1,
                 max_size=2)))
    named = protocols is not None and any("destinationNamedPort" in p for p in protocols)
    rule["to" if egress else "from"] = draw(st.lists(cnp_peer_st(egress, named), min_size=1,
                                                     max_size=2))
    if protocols is not None:
        rule["protocols"] = protocols
    return rule


@st.composite
def cnp_st(draw: st.DrawFn, name: str) -> Doc:
    tier = draw(st.sampled_from(("Admin", "Baseline")))
    if draw(st.booleans()):
        subject: Doc = {"namespaces": draw(selector_st(namespace=True))}
    else:
        subject = {"pods": {"namespaceSelector": draw(selector_st(namespace=True)),
                            "podSelector": draw(selector_st())}}
    spec: Doc = {"tier": tier, "priority": draw(st.integers(0, 5)), "subject": subject}
    n_in = draw(st.integers(0, 2))
    n_eg = draw(st.integers(0 if n_in else 1, 2))
    if n_in:
        spec["ingress"] = [draw(cnp_rule_st(i, False)) for i in range(n_in)]
    if n_eg:
        spec["egress"] = [draw(cnp_rule_st(i, True)) for i in range(n_eg)]
    return {"apiVersion": "policy.networking.k8s.io/v1beta1", "kind": "ClusterNetworkPolicy",
            "metadata": {"name": name}, "spec": spec}


@st.composite
def cluster_st(draw: st.DrawFn, max_np: int = 4, max_cnp: int = 3) -> list[Doc]:
    """A small valid cluster: namespaces, nodes, pods, NetworkPolicies and CNPs."""
    namespaces = list(NAMESPACES[: draw(st.integers(2, 3))])
    docs: list[Doc] = []
    for ns in namespaces:
        if ns != "x" and draw(st.integers(0, 4)) == 0:
            continue  # used but undeclared: implicit, labelled only with its name (sel-7)
        labels = draw(labels_st)
        meta: Doc = {"name": ns}
        if labels:
            meta["labels"] = labels
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
    for i, (name, addr) in enumerate(sorted(NODES.items())):
        docs.append({"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": name, "labels": {"role": "ab"[i]}},
                     "status": {"addresses": [{"type": "InternalIP", "address": addr}]}})
    n_pods = draw(st.integers(2, 5))
    docs += [draw(pod_st(i, namespaces)) for i in range(n_pods)]
    per_ns: dict[str, int] = {}
    for _ in range(draw(st.integers(0, max_np))):
        ns = draw(st.sampled_from(namespaces))
        per_ns[ns] = per_ns.get(ns, 0) + 1
        # Same-named policies across namespaces on purpose (sp-5).
        docs.append(draw(np_st(ns, f"np{per_ns[ns]}")))
    if max_cnp:
        docs += [draw(cnp_st(f"cnp{i}")) for i in range(draw(st.integers(0, max_cnp)))]
    return docs


# -- helpers -----------------------------------------------------------------------------------


@dataclass
class Loaded:
    text: str
    state: ClusterState
    analysis: api.Analysis

    @property
    def pods(self) -> list[Pod]:
        return list(self.state.pods)


def load_docs(docs: list[Doc]) -> Loaded:
    text = yaml.safe_dump_all(docs, sort_keys=False)
    return load_text(text)


def load_text(text: str) -> Loaded:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cluster.yaml"
        path.write_text(text, encoding="utf-8")
        state = api.load([str(path)])
    errors = [d for d in state.diagnostics if d.severity >= Severity.ERROR]
    assert not errors, f"generator produced invalid input: {errors}\n{text}"
    return Loaded(text, state, api.analyze(state))


def engine_point(ep: Endpoint) -> Pod | External:
    return ep if isinstance(ep, Pod) else External(address=ep)


def show(ep: Endpoint) -> str:
    return ep.key if isinstance(ep, Pod) else ep


def flows(loaded: Loaded) -> Iterator[tuple[Endpoint, Endpoint]]:
    """Every ordered pod pair (self included), pod -> external and external -> pod."""
    for a in loaded.pods:
        for b in loaded.pods:
            yield a, b
        for ext in EXTERNALS:
            yield a, ext
            yield ext, a


def engine_allowed(loaded: Loaded, src: Endpoint, dst: Endpoint, proto: Protocol,
                   port: int) -> bool:
    return loaded.analysis.query.flow(engine_point(src), engine_point(dst), proto, port).allowed


def disagreements(loaded: Loaded) -> list[str]:
    out: list[str] = []
    for src, dst in flows(loaded):
        for proto, port in PROBES:
            want = allowed(loaded.state, src, dst, proto, port)
            got = engine_allowed(loaded, src, dst, proto, port)
            if got != want:
                out.append(f"{show(src)} -> {show(dst)} {proto} {port}: engine "
                           f"{'allow' if got else 'deny'}, oracle {'allow' if want else 'deny'}")
    return out


def _split_top(text: str) -> list[str]:
    """Split on commas outside square brackets."""
    parts: list[str] = []
    depth, cur = 0, ""
    for ch in text:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def contains_address(text: str, address: str) -> bool | None:
    """Whether a map row's address text (``CIDR[ except [CIDR,...]],...``) holds ``address``.

    None when the text is not an address set (a pod key).
    """
    ip = ipaddress.ip_address(address)
    found = False
    for part in _split_top(text):
        cidr, _, rest = part.strip().partition(" except ")
        try:
            net = ipaddress.ip_network(cidr, strict=False)
            holes = [ipaddress.ip_network(h.strip(), strict=False)
                     for h in rest.strip().strip("[]").split(",") if h.strip()]
        except ValueError:
            return None
        if (ip.version == net.version and ip in net
                and not any(ip.version == h.version and ip in h for h in holes)):
            found = True
    return found


SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- properties --------------------------------------------------------------------------------


@settings(SETTINGS, max_examples=250)
@given(cluster_st())
def test_flow_matches_oracle(docs: list[Doc]) -> None:
    loaded = load_docs(docs)
    note(loaded.text)
    bad = disagreements(loaded)
    assert not bad, "\n".join(bad[:20])


@settings(SETTINGS, max_examples=120)
@given(cluster_st())
def test_map_matches_oracle(docs: list[Doc]) -> None:
    loaded = load_docs(docs)
    note(loaded.text)
    an = loaded.analysis
    rows = [(r.src, r.dst, an.universe.portset(r.ports)) for r in an.rows("pod")]
    bad: list[str] = []
    for a in loaded.pods:
        for b in loaded.pods:
            if a.key == b.key:
                continue
            for proto, port in PROBES:
                want = allowed(loaded.state, a, b, proto, port)
                got = any(s == a.key and d == b.key and ps.contains(proto, port)
                          for s, d, ps in rows)
                if got != want:
                    bad.append(f"map {a.key} -> {b.key} {proto} {port}: map {got}, oracle {want}")
        # External sources and destinations are rows keyed by CIDR text (address atoms).
        for ext in ("8.8.8.8", "10.244.9.9", "2001:db8::1"):
            for proto, port in PROBES:
                for src, dst in ((ext, a), (a, ext)):
                    want = allowed(loaded.state, src, dst, proto, port)
                    got = any(
                        ps.contains(proto, port)
                        and (s == a.key if src is a else contains_address(s, ext))
                        and (d == a.key if dst is a else contains_address(d, ext))
                        for s, d, ps in rows)
                    if got != want:
                        bad.append(f"map {show(src)} -> {show(dst)} {proto} {port}: map {got}, "
                                   f"oracle {want}")
    assert not bad, "\n".join(bad[:20])


def effective_directions(spec: Doc) -> list[str]:
    """Directions in which one more allow rule keeps the policy's isolation unchanged."""
    types = spec.get("policyTypes")
    if types is not None:
        return [t.lower() for t in types]
    return ["ingress", "egress"] if spec.get("egress") else ["ingress"]


def allowed_set(loaded: Loaded) -> set[tuple[str, str, Protocol, int]]:
    return {(show(s), show(d), proto, port) for s, d in flows(loaded) for proto, port in PROBES
            if engine_allowed(loaded, s, d, proto, port)}


@settings(SETTINGS, max_examples=150)
@given(cluster_st(max_np=4, max_cnp=0), st.data())
def test_np_extra_allow_rule_is_monotone(docs: list[Doc], data: st.DataObject) -> None:
    nps = [i for i, d in enumerate(docs) if d["kind"] == "NetworkPolicy"]
    before = load_docs(docs)
    if not nps:
        return
    i = data.draw(st.sampled_from(nps), label="policy")
    spec = docs[i]["spec"]
    direction = data.draw(st.sampled_from(effective_directions(spec)), label="direction")
    rule = data.draw(np_rule_st(direction), label="extra rule")
    bigger = [dict(d) for d in docs]
    new_spec = dict(spec)
    new_spec[direction] = [*spec.get(direction, []), rule]
    bigger[i] = {**docs[i], "spec": new_spec}
    after = load_docs(bigger)
    note(after.text)
    lost = allowed_set(before) - allowed_set(after)
    assert not lost, f"an extra allow rule removed connections: {sorted(lost, key=str)[:20]}"


@settings(SETTINGS, max_examples=150)
@given(cluster_st(max_np=3, max_cnp=0), st.data())
def test_np_default_deny_all_isolates_namespace(docs: list[Doc], data: st.DataObject) -> None:
    namespaces = [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]
    ns = data.draw(st.sampled_from(namespaces), label="namespace")
    deny = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny-all", "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
    # Policies are additive (iso-6): only a namespace without other policies is fully closed.
    kept = [d for d in docs
            if d["kind"] != "NetworkPolicy" or d["metadata"]["namespace"] != ns]
    loaded = load_docs([*kept, deny])
    note(loaded.text)
    state = loaded.state
    nodes = {n.name: set(n.addresses) for n in state.nodes}
    bad: list[str] = []
    for dst in loaded.pods:
        if dst.namespace != ns or dst.host_network:
            continue
        others: list[Endpoint] = [*loaded.pods, *EXTERNALS]
        for other in others:
            if isinstance(other, Pod) and (other.key == dst.key or (
                    other.host_network and other.node == dst.node)):
                continue  # sp-2, sp-3
            if isinstance(other, str) and other in nodes.get(dst.node, set()):
                continue  # sp-3: the pod's own node
            for proto, port in PROBES:
                for s, d in ((other, dst), (dst, other)):
                    if engine_allowed(loaded, s, d, proto, port):
                        bad.append(f"{show(s)} -> {show(d)} {proto} {port} allowed")
    assert not bad, "\n".join(bad[:20])


# -- deterministic regressions -----------------------------------------------------------------

BASE = """\
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: y}
---
apiVersion: v1
kind: Node
metadata: {name: node-1, labels: {role: a}}
status: {addresses: [{type: InternalIP, address: 10.244.255.1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: p0, namespace: x, labels: {env: a}}
spec:
  nodeName: node-1
  containers: [{name: c, image: i, ports: [{name: http, containerPort: 8080}]}]
status: {podIP: 10.244.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: p1, namespace: y}
spec:
  nodeName: node-1
  containers: [{name: c, image: i, ports: [{name: http, containerPort: 81, protocol: UDP}]}]
status: {podIP: 10.244.2.11}
"""


def _pod(loaded: Loaded, key: str) -> Pod:
    return next(p for p in loaded.pods if p.key == key)


@pytest.mark.parametrize(("extra", "flow", "expect"), [
    # NotIn matches a pod without the key (sel-6); p1 has no labels.
    ("""\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {}
      podSelector: {matchExpressions: [{key: env, operator: NotIn, values: [a]}]}
""", ("y/p1", "x/p0", Protocol.TCP, 80), True),
    # A named port resolves on the egress destination with its own protocol (port-5/6).
    ("""\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - ports: [{port: http, protocol: UDP}]
""", ("x/p0", "y/p1", Protocol.UDP, 81), True),
    # Admin Pass falls through to a Baseline Deny when no NetworkPolicy isolates (tier-1/3).
    ("""\
apiVersion: policy.networking.k8s.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {name: pass}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  ingress: [{name: p, action: Pass, from: [{namespaces: {}}]}]
---
apiVersion: policy.networking.k8s.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {name: deny}
spec:
  tier: Baseline
  priority: 0
  subject: {namespaces: {matchLabels: {team: a}}}
  ingress: [{name: d, action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {}}}]}]
""", ("y/p1", "x/p0", Protocol.TCP, 80), False),
    # A networks peer matches pod IPs (ip-4), first match in rule order.
    ("""\
apiVersion: policy.networking.k8s.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {name: cidr}
spec:
  tier: Admin
  priority: 0
  subject: {namespaces: {matchLabels: {team: a}}}
  egress:
  - {name: a, action: Accept, to: [{networks: [10.244.2.11/32]}],
     protocols: [{udp: {destinationPort: {number: 81}}}]}
  - {name: d, action: Deny, to: [{networks: [10.244.0.0/16]}]}
""", ("x/p0", "y/p1", Protocol.UDP, 81), True),
])
def test_regressions(extra: str, flow: tuple[str, str, Protocol, int], expect: bool) -> None:
    loaded = load_text(BASE + "---\n" + extra)
    src, dst, proto, port = flow
    s, d = _pod(loaded, src), _pod(loaded, dst)
    assert allowed(loaded.state, s, d, proto, port) is expect
    assert engine_allowed(loaded, s, d, proto, port) is expect
    assert not disagreements(loaded)


HOST_NETWORK_NAMED_PORT = """\
apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: Node
metadata: {name: node-1}
status: {addresses: [{type: InternalIP, address: 10.244.255.1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: x}
spec:
  nodeName: node-2
  containers: [{name: c, image: i}]
---
apiVersion: v1
kind: Pod
metadata: {name: host, namespace: x}
spec:
  nodeName: node-1
  hostNetwork: true
  containers: [{name: c, image: i, ports: [{name: http, containerPort: 80}]}]
status: {podIP: 10.244.255.1}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: x}
spec:
  podSelector: {}
  egress: [{ports: [{port: http}]}]
"""


def test_egress_named_port_never_resolves_on_host_network_destination() -> None:
    """Found by test_flow_matches_oracle; decided in docs/semantics-decisions.md (NF-D1).

    A hostNetwork pod's traffic is node traffic (sp-1) and such peers are matched only by
    ipBlock, networks or nodes (D-3), so like an external address (port-7) its containerPorts
    do not give meaning to a named port: x/client -> x/host is denied on every port, while
    the same rule with the numeric port is allowed.
    """
    loaded = load_text(HOST_NETWORK_NAMED_PORT)
    client, host = _pod(loaded, "x/client"), _pod(loaded, "x/host")
    for port in (80, 81):
        assert not allowed(loaded.state, client, host, Protocol.TCP, port)
        assert not engine_allowed(loaded, client, host, Protocol.TCP, port)
    numeric = load_text(HOST_NETWORK_NAMED_PORT.replace("port: http", "port: 80"))
    client, host = _pod(numeric, "x/client"), _pod(numeric, "x/host")
    assert allowed(numeric.state, client, host, Protocol.TCP, 80)
    assert engine_allowed(numeric, client, host, Protocol.TCP, 80)
