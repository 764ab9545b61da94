"""Use cases: the only entry point for the CLI (and later web and agent).

``load`` reads inputs into a ``ClusterState``; ``analyze`` builds the class universe and the
evaluation; ``resolve`` turns endpoint strings into pods or addresses; ``run_tests`` checks a
ConnectivityTest; ``explain`` answers one flow.
"""

from __future__ import annotations

import fnmatch
import gc
import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from netfence.engine.checks import ambiguous_priorities
from netfence.engine.classes import Universe
from netfence.engine.evaluate import Evaluation
from netfence.engine.query import External, FlowVerdict, MapRow, Point, Query, view_rows
from netfence.errors import Diagnostic, InputError, Severity, SourceRef
from netfence.model.cluster import ClusterState, Pod
from netfence.model.net import ip_to_int
from netfence.model.ports import Protocol
from netfence.sources.files import TextFile, read_inputs
from netfence.sources.manifests import build_state
from netfence.sources.parse import Document, parse_file

if TYPE_CHECKING:  # verb-specific parts load on first use: `netfence map` starts faster
    from netfence.checks import LintOptions, LintReport
    from netfence.engine.diff import Change
    from netfence.sources.specs import Case
    from netfence.synth.verify import Proof

__all__ = ["Analysis", "CaseResult", "Generated", "analyze", "diff", "generate", "load",
           "load_ref", "resolve", "run_tests"]


def load(paths: list[str], recursive: bool = False, *, cluster: bool = False,
         context: str | None = None, kubeconfig: str | None = None,
         stdin_text: str | None = None, pod_cidrs: list[str] | None = None) -> ClusterState:
    """Read manifests (and/or a live cluster) into a snapshot; diagnostics ride along.
    ``pod_cidrs``: the pod network, for the D-4 warning (Node spec.podCIDRs count too)."""
    files: list[TextFile] = []
    diags: list[Diagnostic] = []
    if paths:
        files, diags = read_inputs(paths, recursive, stdin_text)
    if cluster:
        from netfence.sources.kubectl import read_cluster  # subprocess: only for --cluster

        files += read_cluster(context, kubeconfig)
    state = _state_from(files, diags, ", ".join(paths) if paths else "the cluster")
    return pod_cidr_warnings(state, pod_cidrs or [])


def pod_cidr_warnings(state: ClusterState, pod_cidrs: list[str]) -> ClusterState:
    """D-4: without pod IPs, ipBlocks match only external addresses; warn about each ipBlock
    that overlaps the pod network (``pod_cidrs`` and the nodes' spec.podCIDRs)."""
    from netfence.model.net import IPSet
    from netfence.model.policy import IPPeer

    net = IPSet()
    for c in [*pod_cidrs, *(c for n in state.nodes for c in n.pod_cidrs)]:
        net = net | IPSet.parse(c)
    if not net or all(p.ips for p in state.pods if not p.host_network):
        return state
    where = ", ".join(net.cidrs())
    out: list[Diagnostic] = []
    for pol in state.policies:
        seen: set[str] = set()
        for rule in (pol.ingress or ()) + (pol.egress or ()):
            for peer in rule.peers:
                if isinstance(peer, IPPeer) and peer.ips & net and peer.text not in seen:
                    seen.add(peer.text)
                    out.append(Diagnostic(
                        Severity.WARNING, "ipblock-pod-cidr",
                        f"{peer.text} overlaps the pod network ({where}), but some pods have "
                        "no IP in this input (manifests): there it matches only addresses "
                        "outside the cluster, not pods (D-4)", pol.source))
    if not out:
        return state
    return replace(state, diagnostics=state.diagnostics + tuple(out))


def load_texts(texts: list[TextFile], paths: list[str] | None = None,
               recursive: bool = False) -> ClusterState:
    """Like ``load``, with objects already read as text (the agent's watched cluster)."""
    files: list[TextFile] = []
    diags: list[Diagnostic] = []
    if paths:
        files, diags = read_inputs(paths, recursive)
    return _state_from(files + texts, diags, ", ".join(paths) if paths else "the cluster")


def objects_state(objects: list[dict[str, Any]], name: str = "cluster:events"
                  ) -> ClusterState | None:
    """A snapshot of just these API objects, built exactly as a full load builds them (the
    agent patches its snapshot with watch events); None if any of them has an error (a full
    load then reports it)."""
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    docs, diags = parse_file(TextFile(name, text, True))
    state = build_state(docs, list(diags))
    if any(d.severity >= Severity.ERROR for d in state.diagnostics):
        return None
    return state


def pods_from_objects(objects: list[dict[str, Any]]) -> list[Pod] | None:
    """Pods from API objects, exactly as a full load builds them; None on any error."""
    if not objects:
        return []
    state = objects_state(objects, "cluster:pods")
    return None if state is None else [p for p in state.pods if not p.synthetic]


# Parsed documents by (file name, content hash): base and head of a diff share most files.
# Documents are never mutated after parsing, so sharing them is safe.
_PARSED: dict[tuple[str, bytes], tuple[list[Document], list[Diagnostic]]] = {}


def _state_from(files: list[TextFile], diags: list[Diagnostic], where: str) -> ClusterState:
    # Parsing allocates hundreds of thousands of long-lived containers; the cyclic garbage
    # collector's full passes over them cost as much as the parse itself (measured 2x).
    enabled = gc.isenabled()
    gc.disable()
    try:
        docs = []
        keys = [(tf.name, hashlib.sha256(tf.text.encode()).digest()) for tf in files]
        if len(_PARSED) > 4 * len(keys) + 64:  # bounded for long-running callers (the agent)
            keep = set(keys)
            for stale in [k for k in _PARSED if k not in keep]:
                del _PARSED[stale]
        for tf, key in zip(files, keys, strict=True):
            cached = _PARSED.get(key)
            if cached is None:
                cached = parse_file(tf)
                _PARSED[key] = cached
            got, d2 = cached
            docs.extend(got)
            diags.extend(d2)
        if not docs and not any(d.severity >= Severity.ERROR for d in diags):
            diags.append(Diagnostic(Severity.ERROR, "no-objects", "no objects found",
                                    SourceRef(where)))
        return build_state(docs, diags)
    finally:
        if enabled:
            gc.enable()


@dataclass
class Analysis:
    """A loaded state with its evaluation and query helpers."""

    state: ClusterState
    universe: Universe
    evaluation: Evaluation
    query: Query
    diagnostics: list[Diagnostic] = field(default_factory=list)
    _index: EndpointIndex | None = None

    def rows(self, by: str, zone_label: str = "networkArea") -> list[MapRow]:
        return view_rows(self.evaluation, by, zone_label)

    def resolve(self, text: str) -> list[Point]:
        """Like ``resolve`` but through an index built once (bulk tests)."""
        if self._index is None:
            self._index = EndpointIndex(self.state)
        return self._index.resolve(text)


def analyze(state: ClusterState) -> Analysis:
    enabled = gc.isenabled()
    gc.disable()  # same reason as in loading: many long-lived objects, no cycles to collect
    try:
        u = Universe(state)
        ev = Evaluation(u)
        return Analysis(state, u, ev, Query(ev), ambiguous_priorities(ev.engine))
    finally:
        if enabled:
            gc.enable()


# -- endpoints ---------------------------------------------------------------------------------

def resolve(state: ClusterState, text: str) -> list[Point]:
    """``NS/NAME`` (pod, else workload), ``NS/KIND/NAME`` or ``ip:ADDR``; [] when unknown."""
    if text.startswith("ip:"):
        addr = text[3:]
        try:
            key = ip_to_int(addr)
        except ValueError:
            return []
        owners = [p for p in state.pods if any(ip_to_int(ip) == key for ip in p.ips)]
        # a pod's own IP means that pod; a node IP shared by hostNetwork pods means the first
        owners.sort(key=lambda p: (p.host_network, p.namespace, p.name))
        return [owners[0]] if owners else [External(addr)]
    parts = text.split("/")
    if len(parts) == 2:
        ns, name = parts
        pods = [p for p in state.pods if p.namespace == ns and p.name == name and
                not p.synthetic]
        if pods:
            return list(pods)
        return [p for p in state.pods if p.workload.namespace == ns and p.workload.name == name]
    if len(parts) == 3:
        ns, kind, name = parts
        if kind.lower() == "pod":
            return [p for p in state.pods if p.namespace == ns and p.name == name]
        return [p for p in state.pods if p.workload.namespace == ns and
                p.workload.kind.lower() == kind.lower() and p.workload.name == name]
    return []


class EndpointIndex:
    """Pods by name, by workload and by IP, for fast endpoint resolution."""

    def __init__(self, state: ClusterState) -> None:
        self.by_name: dict[tuple[str, str], list[Pod]] = {}
        self.by_workload: dict[tuple[str, str], list[Pod]] = {}
        self.by_kind: dict[tuple[str, str, str], list[Pod]] = {}
        self.by_ip: dict[tuple[int, int], list[Pod]] = {}
        for p in state.pods:
            if not p.synthetic:
                self.by_name.setdefault((p.namespace, p.name), []).append(p)
            w = p.workload
            self.by_workload.setdefault((w.namespace, w.name), []).append(p)
            self.by_kind.setdefault((w.namespace, w.kind.lower(), w.name), []).append(p)
            for ip in p.ips:
                self.by_ip.setdefault(ip_to_int(ip), []).append(p)
        self.pod_by_key = {(p.namespace, p.name): p for p in state.pods}
        self._cache: dict[str, list[Point]] = {}

    def resolve(self, text: str) -> list[Point]:
        got = self._cache.get(text)
        if got is None:
            got = self._resolve(text)
            self._cache[text] = got
        return got

    def _resolve(self, text: str) -> list[Point]:
        if text.startswith("ip:"):
            try:
                key = ip_to_int(text[3:])
            except ValueError:
                return []
            owners = sorted(self.by_ip.get(key, ()),
                            key=lambda p: (p.host_network, p.namespace, p.name))
            return [owners[0]] if owners else [External(text[3:])]
        parts = text.split("/")
        if len(parts) == 2:
            key2 = (parts[0], parts[1])
            return list(self.by_name.get(key2) or self.by_workload.get(key2, []))
        if len(parts) == 3:
            if parts[1].lower() == "pod":
                pod = self.pod_by_key.get((parts[0], parts[2]))
                return [pod] if pod else []
            return list(self.by_kind.get((parts[0], parts[1].lower(), parts[2]), []))
        return []


def matches_pattern(endpoint_id: str, pattern: str) -> bool:
    """Filter syntax for ``--from``/``--to``: a glob over ``ns/kind/name`` or ``ns/name``."""
    if fnmatch.fnmatchcase(endpoint_id, pattern):
        return True
    parts = endpoint_id.split("/")
    if len(parts) == 3 and fnmatch.fnmatchcase(f"{parts[0]}/{parts[2]}", pattern):
        return True
    return "/" not in pattern and fnmatch.fnmatchcase(parts[0], pattern)


# -- tests ---------------------------------------------------------------------------------

@dataclass
class CaseResult:
    """One test case's outcome; ``flow`` explains one representative pod pair (the first
    that fails the expectation, else the first), ``pairs`` counts every pair checked."""

    case: Case
    file: str
    port: int | None
    protocol: Protocol
    verdict: str
    passed: bool
    pairs: int = 0
    representative: tuple[Point, Point, Protocol, int] | None = None
    query: Query | None = None
    _flow: FlowVerdict | None = None

    @property
    def flow(self) -> FlowVerdict | None:
        """The explained representative pair, computed on first use."""
        if self._flow is None and self.representative is not None and self.query is not None:
            self._flow = self.query.flow(*self.representative)
        return self._flow

    @property
    def flows(self) -> list[FlowVerdict]:
        return [self.flow] if self.flow is not None else []

    def explanation(self) -> list[str]:
        return self.flow.sentences() if self.flow is not None else []

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.case.name, "file": self.file, "from": self.case.from_,
            "to": self.case.to, "port": self.port, "protocol": str(self.protocol),
            "expect": self.case.expect, "verdict": self.verdict, "passed": self.passed,
            "pairs": self.pairs,
            "dnsConditional": any(f.dns_conditional for f in self.flows),
            "explanation": self.explanation(),
        }


def resolve_port(dst: Point, port: int | str | None, protocol: Protocol,
                  ) -> tuple[Protocol, int] | str:
    if isinstance(port, int):
        if not 1 <= port <= 65535:
            return f"port {port} out of range 1-65535"
        return protocol, port
    if port is None:
        return "a port is required (number or name)"
    if not isinstance(dst, Pod):
        return f"named port '{port}' cannot be resolved on an external address (port-7)"
    hits = [cp for cp in dst.ports if cp.name == port]
    if not hits:
        return f"named port '{port}' is not defined on {dst.key}"
    for cp in hits:
        if cp.protocol is protocol:
            return cp.protocol, cp.port
    return hits[0].protocol, hits[0].port


def run_tests(analysis: Analysis, tests_path: str) -> tuple[list[CaseResult], list[Diagnostic]]:
    """Evaluate every case; bad tests files raise ``InputError`` (exit 3, never 1)."""
    from netfence.sources.specs import load_tests

    suites, diags = load_tests(tests_path)
    errors: list[Diagnostic] = [d for d in diags if d.severity >= Severity.ERROR]
    planned: list[tuple[str, Case, list[Point], list[Point]]] = []
    for file, suite, lines in suites:
        for i, case in enumerate(suite.spec.cases):
            at = lines[i] if i < len(lines) else {}
            label = f"case {i} ({case.name})" if case.name else f"case {i}"
            srcs = analysis.resolve(case.from_)
            dsts = analysis.resolve(case.to)
            for key, got, text in (("from", srcs, case.from_), ("to", dsts, case.to)):
                if not got:
                    errors.append(Diagnostic(
                        Severity.ERROR, "test-endpoint", f"{label}: unknown endpoint {key} "
                        f"'{text}' (no pod, workload or address by that name)",
                        SourceRef(file, at.get(key, at.get("", 0)))))
            if isinstance(case.port, int) and not 1 <= case.port <= 65535:
                errors.append(Diagnostic(Severity.ERROR, "test-port", f"{label}: port "
                                         f"{case.port} out of range 1-65535",
                                         SourceRef(file, at.get("port", at.get("", 0)))))
            if case.port is None:
                errors.append(Diagnostic(Severity.ERROR, "test-port", f"{label}: a port is "
                                         "required (number or name)",
                                         SourceRef(file, at.get("", 0))))
            planned.append((file, case, srcs, dsts))
    if errors:
        raise InputError("invalid tests", tuple(errors))
    results: list[CaseResult] = []
    q = analysis.query
    for file, case, srcs, dsts in planned:
        proto = Protocol(case.protocol)
        verdicts: list[tuple[bool, Point, Point, Protocol, int]] = []
        shown_port: int | None = case.port if isinstance(case.port, int) else None
        for s in srcs:
            for d in dsts:
                if (isinstance(s, Pod) and isinstance(d, Pod) and s.key == d.key
                        and (len(srcs) > 1 or len(dsts) > 1)):
                    continue  # workload to itself: pairs of distinct pods
                resolved = resolve_port(d, case.port, proto)
                if isinstance(resolved, str):
                    label = case.name or f"{case.from_} -> {case.to}"
                    raise InputError("invalid tests", (Diagnostic(
                        Severity.ERROR, "test-port", f"case '{label}': {resolved}",
                        SourceRef(file)),))
                p_proto, number = resolved
                shown_port = number
                verdicts.append((q.allowed(s, d, p_proto, number), s, d, p_proto, number))
        expect_allow = case.expect == "allow"
        all_allowed = all(v[0] for v in verdicts)
        none_allowed = not any(v[0] for v in verdicts)
        verdict = "allow" if all_allowed else ("deny" if none_allowed else "mixed")
        passed = all(v[0] == expect_allow for v in verdicts)
        rep = next((v for v in verdicts if v[0] != expect_allow), verdicts[0] if verdicts
                   else None)
        results.append(CaseResult(case, file, shown_port, proto, verdict, passed,
                                  len(verdicts), rep[1:] if rep is not None else None, q))
    return results, diags


# -- diff ----------------------------------------------------------------------------------

def load_ref(ref: str, paths: list[str], recursive: bool = False) -> ClusterState:
    """Manifests as they were at a git ref (no checkout, no work-tree change)."""
    from netfence.sources.git import read_at_ref

    files, diags = read_at_ref(ref, paths, recursive)
    return _state_from(files, diags, f"{', '.join(paths)} at {ref}")


def diff(base: ClusterState, head: ClusterState, by: str = "workload",
         zone_label: str = "networkArea") -> tuple[list[Change], list[Diagnostic]]:
    """Semantic connectivity changes from ``base`` to ``head``."""
    from netfence.engine.diff import diff as engine_diff

    b = analyze(base)
    h = analyze(head)
    return engine_diff(b.evaluation, h.evaluation, by, zone_label), h.diagnostics


# -- lint ------------------------------------------------------------------------------------

def lint(analysis: Analysis, options: LintOptions | None = None) -> LintReport:
    """Run the lint catalogue (``netfence.checks``) over an analysed state."""
    # The checks allocate many short-lived ints and lists next to a large long-lived state:
    # the cyclic collector's full passes would double the run time (measured, as for load).
    enabled = gc.isenabled()
    gc.disable()
    try:
        from netfence.checks import run as run_checks

        return run_checks(analysis.state, analysis.evaluation, analysis.query, options)
    finally:
        if enabled:
            gc.enable()


# -- generate ------------------------------------------------------------------------------

POLICY_KINDS = {"NetworkPolicy", "ClusterNetworkPolicy", "AdminNetworkPolicy",
                "BaselineAdminNetworkPolicy"}


@dataclass
class Generated:
    """Generated objects, the self-check proof per model, and the state they were checked on."""

    objects: list[dict[str, Any]]
    proofs: list[tuple[str, Proof]]
    state: ClusterState
    replaced_policies: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)
    text: str = ""  # the objects as YAML, exactly what was verified and is printed


def generate(model_paths: list[str], cluster_paths: list[str] | None = None,
             flavor: str = "networkpolicy") -> Generated:
    """Policies from SegmentationModel files, verified by the engine on the cluster manifests
    (their own policies set aside) or, without manifests, on a probe cluster per model."""
    from netfence.sources.zones import load_models
    from netfence.synth.verify import verify
    from netfence.synth.zones import generate_zones, probe_cluster

    models, diags = load_models(model_paths)
    errors = tuple(d for d in diags if d.severity >= Severity.ERROR)
    if errors:
        raise InputError("invalid model", errors)
    if not models:
        raise InputError("no SegmentationModel found", (Diagnostic(
            Severity.ERROR, "model", "no SegmentationModel document found",
            SourceRef(", ".join(model_paths))),))
    if any(m.protected for m in models):  # protected workloads: labels from the cluster
        return generate_all(model_paths, cluster_paths, flavor, with_intents=False)
    objects: list[dict[str, Any]] = []
    for m in models:
        objects.extend(generate_zones(m, flavor))
    text = _dump(objects)
    generated_docs, gdiags = parse_file(TextFile("<generated>", text, False))
    replaced = 0
    if cluster_paths:
        kept, cdiags, replaced = _cluster_docs(cluster_paths)
        state = build_state(kept + generated_docs, cdiags + gdiags)
        proofs = [(m.name, verify(m, analyze(state).evaluation)) for m in models]
    else:
        proofs = []
        state = build_state(generated_docs, gdiags)
        for m in models:
            probe_text = _dump(probe_cluster(m))
            probe_docs, pdiags = parse_file(TextFile(f"<probe cluster of {m.name}>",
                                                     probe_text, False))
            mine = [d for d in generated_docs if isinstance(d.data, dict) and str(
                d.data["metadata"]["annotations"]["netfence.dev/generated-from"]).startswith(
                    f"SegmentationModel/{m.name}#")]
            probe_state = build_state(probe_docs + mine, pdiags)
            proofs.append((m.name, verify(m, analyze(probe_state).evaluation)))
    notes = [_platform_note(m, model_paths) for m in models if m.platform_namespaces]
    return Generated(objects, proofs, state, replaced, notes, text=text)


def _platform_note(model: Any, paths: list[str]) -> Diagnostic:
    """``generate zones`` fences platform namespaces without their intents: say so."""
    return Diagnostic(Severity.WARNING, "model", f"{model.name}: the platform namespaces "
                      f"{', '.join(model.platform_namespaces)} are fenced: their pods get their "
                      "roles and DNS only; declare what else they call (the Kubernetes API, "
                      "upstream resolvers...) as intents and use `generate all`",
                      SourceRef(", ".join(paths)))


# -- generate: service intents, and zones + intents ------------------------------------------

GeneratedIntents = Generated  # the intents use cases return the same result type


def _dump(objects: list[dict[str, Any]]) -> str:
    """YAML of generated objects (libyaml's emitter when available: same text, 5x faster).
    Two objects with one kind, namespace and name would overwrite each other when applied:
    an input error (two models fencing one namespace, or colliding names)."""
    import yaml  # PyYAML: not on the `map` path

    seen: dict[tuple[str, str, str], str] = {}
    errors: list[Diagnostic] = []
    for obj in objects:
        meta = obj.get("metadata", {})
        key = (str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))
        origin = str(meta.get("annotations", {}).get("netfence.dev/generated-from", "?"))
        if key in seen:
            where = f"{key[1]}/{key[2]}" if key[1] else key[2]
            errors.append(Diagnostic(Severity.ERROR, "generated-duplicate",
                                     f"{key[0]} {where} would be generated twice (from "
                                     f"{seen[key]} and from {origin}): two models fence one "
                                     "namespace, or two names collide; change the inputs",
                                     SourceRef("<generated>")))
        seen.setdefault(key, origin)
    _raise_errors("generated objects collide", errors)

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump_all(objects, Dumper=dumper, sort_keys=False))


def _raise_errors(what: str, diags: list[Diagnostic]) -> None:
    errors = tuple(d for d in diags if d.severity >= Severity.ERROR)
    if errors:
        raise InputError(what, errors)


def _cluster_state(cluster_paths: list[str] | None, why: str,
                   where: SourceRef) -> tuple[ClusterState, int]:
    """The cluster manifests without their own policies (and how many were set aside)."""
    if not cluster_paths:
        raise InputError("no cluster manifests", (Diagnostic(
            Severity.ERROR, "usage", f"{why}: workloads are resolved on the cluster manifests; "
            "give --cluster-manifests DIR", where),))
    kept, cdiags, replaced = _cluster_docs(cluster_paths)
    return build_state(kept, cdiags), replaced


def _cluster_docs(cluster_paths: list[str]) -> tuple[list[Document], list[Diagnostic], int]:
    """The cluster manifests' documents without policies, their diagnostics, and how many
    policies were set aside (generated policies replace them for the self-check)."""
    files, cdiags = read_inputs(cluster_paths, True)
    docs: list[Document] = []
    for tf in files:
        got, d2 = parse_file(tf)
        docs.extend(got)
        cdiags.extend(d2)
    kept = [d for d in docs if not (isinstance(d.data, dict)
                                    and d.data.get("kind") in POLICY_KINDS)]
    return kept, cdiags, len(docs) - len(kept)


def _with_generated(state: ClusterState, text: str) -> ClusterState:
    """``state`` with exactly the generated policies, read back from the YAML we print."""
    import dataclasses

    docs, gdiags = parse_file(TextFile("<generated>", text, False))
    gen = build_state(docs, gdiags)
    bad = tuple(d for d in gen.diagnostics if d.severity >= Severity.ERROR)
    return dataclasses.replace(state, policies=gen.policies,
                               diagnostics=state.diagnostics + bad)


def generate_intents(intent_paths: list[str], cluster_paths: list[str] | None,
                     dns_namespace: str = "kube-system",
                     dns_labels: dict[str, str] | None = None) -> GeneratedIntents:
    """Policies from ServiceIntents / ServiceTypeGroup / Otterize ClientIntents files, with a
    default deny for the callees' namespaces, verified exactly on the cluster manifests."""
    from netfence.model.zones import PodRef
    from netfence.sources.intents import load_intents
    from netfence.synth.intents import WorkloadIndex, resolve, verify_intents
    from netfence.synth.intents import generate_intents as synth_intents

    intents, diags = load_intents(intent_paths)
    _raise_errors("invalid intents", diags)
    first = intents.intents[0].source if intents.intents else intents.groups[0].source
    state, replaced = _cluster_state(cluster_paths, "intents name workloads", first)
    index = WorkloadIndex(state)
    dns = PodRef(dns_namespace, tuple(sorted((dns_labels or {"k8s-app": "kube-dns"}).items())))
    resolved, rdiags = resolve(intents, index, dns)
    diags += rdiags
    _raise_errors("invalid intents", diags)
    objects = synth_intents(resolved, index.by_ns)
    text = _dump(objects)
    full = _with_generated(state, text)
    an = analyze(full)
    proof = verify_intents(resolved, an.evaluation, an.query)
    return Generated(objects, [("intents", proof)], full, replaced,  # type: ignore[list-item]
                     [d for d in diags if d.severity >= Severity.WARNING], text)


def generate_all(paths: list[str], cluster_paths: list[str] | None,
                 flavor: str = "networkpolicy", *, with_intents: bool = True,
                 ) -> GeneratedIntents:
    """One SegmentationModel plus intents (the same ``-f`` files): the zone policies with the
    model's protected workloads left out of the zone rules, and the intents policies on top;
    both self-checks run on the cluster manifests."""
    from netfence.sources.intents import load_intents
    from netfence.sources.zones import load_models
    from netfence.synth.intents import (
        WorkloadIndex,
        intended_egress_addresses,
        intended_ingress,
        protected_exclusions,
        resolve,
        verify_intents,
    )
    from netfence.synth.intents import generate_intents as synth_intents
    from netfence.synth.verify import verify
    from netfence.synth.zones import generate_zones

    models, diags = load_models(paths)
    _raise_errors("invalid model", diags)
    if len(models) != 1:
        raise InputError("one model", (Diagnostic(
            Severity.ERROR, "model", f"generate all takes exactly one SegmentationModel, "
            f"found {len(models)}", SourceRef(", ".join(paths))),))
    model = models[0]
    intents = None
    if with_intents:
        intents, idiags = load_intents(paths, require=False)
        diags += idiags
        _raise_errors("invalid intents", diags)
    elif model.platform_namespaces:
        diags.append(_platform_note(model, paths))
    where = (model.protected_sources[0] if model.protected_sources
             else SourceRef(", ".join(paths)))
    state, replaced = _cluster_state(
        cluster_paths, "the model protects workloads ($.spec.protected)" if model.protected
        else "intents name workloads", where)
    index = WorkloadIndex(state)
    exclusions, pdiags = protected_exclusions(
        ((text, src, path) for text, src, path in zip(
            model.protected, model.protected_sources, model.protected_paths, strict=False)),
        index)
    diags += pdiags
    _raise_errors("invalid model", diags)
    objects = generate_zones(model, flavor, exclusions)
    resolved = None
    if intents is not None:
        resolved, rdiags = resolve(intents, index, model.dns, tuple(model.fenced_namespaces()))
        diags += rdiags
        _raise_errors("invalid intents", diags)
        objects += synth_intents(resolved, index.by_ns)
        objects.sort(key=lambda o: (o["metadata"].get("namespace", ""),
                                    o["metadata"]["name"]))
    text = _dump(objects)
    full = _with_generated(state, text)
    an = analyze(full)
    ev = an.evaluation
    extra_in = intended_ingress(resolved, ev.u) if resolved is not None else None
    extra_out = intended_egress_addresses(resolved, ev.u) if resolved is not None else None
    proofs: list[tuple[str, Any]] = [(model.name, verify(model, ev, extra_in, extra_out,
                                                           exclusions))]
    if resolved is not None:
        proofs.append(("intents", verify_intents(
            resolved, ev, an.query, frozenset(model.fenced_namespaces()))))
    return Generated(objects, proofs, full, replaced,
                     [d for d in diags if d.severity >= Severity.WARNING], text)
