"""networking.k8s.io/v1 NetworkPolicy -> internal ``Policy`` (strict, SEMANTICS iso/sel/port/ip)."""

from __future__ import annotations

from typing import Any

from netfence.errors import clean
from netfence.model.policy import (
    Action,
    AnyPeer,
    IPPeer,
    NamespaceScope,
    Peer,
    PodPeer,
    Policy,
    PolicyRef,
    PortClause,
    Rule,
    Subject,
    Tier,
)
from netfence.sources.parse import line_of
from netfence.sources.validate import Ctx, audit_mode, show

SPEC_FIELDS = {"podSelector", "policyTypes", "ingress", "egress"}
PEER_FIELDS = {"podSelector", "namespaceSelector", "ipBlock"}


def convert_networkpolicy(ctx: Ctx, obj: dict[str, Any], namespace: str, name: str,
                          annotations: dict[str, Any]) -> Policy | None:
    before = ctx.errors
    spec = ctx.mapping(obj.get("spec"), "spec", line_of(obj, "spec"), SPEC_FIELDS)
    if spec is None:
        return None
    sl = line_of(obj, "spec") or ctx.line
    if "podSelector" not in spec:
        ctx.error("required", "spec.podSelector is required (use {} to select all pods)", sl)
    pod_sel = ctx.selector(spec.get("podSelector"), "spec.podSelector",
                           line_of(spec, "podSelector") or sl)
    types_raw = spec.get("policyTypes")
    types: set[str] = set()
    if types_raw is not None:
        tl = line_of(spec, "policyTypes") or sl
        items = ctx.seq(types_raw, "spec.policyTypes", tl) or []
        for t in items:
            if t not in ("Ingress", "Egress"):
                ctx.error("policy-type", f"spec.policyTypes: unknown type {show(t)} "
                          "(Ingress or Egress)", tl)
            else:
                types.add(t)
    egress_raw = spec.get("egress")
    if not types_raw:
        # iso-1 / iso-3: an empty list defaults like an absent field (API server);
        # Ingress always, Egress only when egress rules are present
        types = {"Ingress"}
        if isinstance(egress_raw, list) and egress_raw:
            types.add("Egress")
    ingress = _rules(ctx, spec, "ingress", "from", namespace)
    egress = _rules(ctx, spec, "egress", "to", namespace)
    if ctx.errors != before or pod_sel is None or ingress is None or egress is None:
        return None
    audit = audit_mode(ctx, annotations)
    return Policy(
        ref=PolicyRef("NetworkPolicy", namespace, name),
        tier=Tier.NETWORK_POLICY,
        priority=0,
        subject=Subject(NamespaceScope(name=namespace), pod_sel),
        ingress=ingress if "Ingress" in types else None,
        egress=egress if "Egress" in types else None,
        source=ctx.ref(),
        audit=audit,
        annotations={k: v for k, v in annotations.items() if isinstance(v, str)},
    )


def _rules(ctx: Ctx, spec: dict[str, Any], key: str, peer_key: str,
           namespace: str) -> tuple[Rule, ...] | None:
    line = line_of(spec, key) or ctx.line
    raw = ctx.seq(spec.get(key), f"spec.{key}", line)
    if raw is None:
        return None
    out: list[Rule] = []
    ok = True
    for i, (path, rl, rm) in enumerate(ctx.items(raw, f"spec.{key}", line,
                                                 {peer_key, "ports"})):
        if rm is None:
            ok = False
            continue
        peers = _peers(ctx, rm, peer_key, path, rl, namespace)
        ports = _ports(ctx, rm, path, rl)
        if peers is None or ports is None:
            ok = False
            continue
        out.append(Rule(i, Action.ALLOW, peers, ports or None, line=rl))
    return tuple(out) if ok else None


def _peers(ctx: Ctx, rule: dict[str, Any], key: str, path: str, line: int,
           namespace: str) -> tuple[Peer, ...] | None:
    raw = rule.get(key)
    if raw is None or raw == []:
        return (AnyPeer("any peer (empty '" + key + "')"),)  # sel-1
    items = ctx.seq(raw, f"{path}.{key}", line_of(rule, key) or line)
    if items is None:
        return None
    out: list[Peer] = []
    ok = True
    for pp, pl, pm in ctx.items(items, f"{path}.{key}", line, PEER_FIELDS):
        if pm is None:
            ok = False
            continue
        present = [f for f in ("podSelector", "namespaceSelector", "ipBlock") if f in pm]
        if not present:
            ctx.error("peer-empty", f"{pp}: a peer must set podSelector, namespaceSelector or "
                      "ipBlock (sel-8)", pl)
            ok = False
            continue
        if "ipBlock" in pm and len(present) > 1:
            ctx.error("peer-ipblock-mixed", f"{pp}: ipBlock cannot be combined with "
                      "podSelector or namespaceSelector (sel-8)", pl)
            ok = False
            continue
        if "ipBlock" in pm:
            peer = _ipblock(ctx, pm["ipBlock"], f"{pp}.ipBlock", line_of(pm, "ipBlock") or pl)
            if peer is None:
                ok = False
            else:
                out.append(peer)
            continue
        pods = None
        if "podSelector" in pm:
            pods = ctx.selector(pm["podSelector"], f"{pp}.podSelector",
                                line_of(pm, "podSelector") or pl)
            if pods is None:
                ok = False
                continue
        if "namespaceSelector" in pm:
            nss = ctx.selector(pm["namespaceSelector"], f"{pp}.namespaceSelector",
                               line_of(pm, "namespaceSelector") or pl)
            if nss is None:
                ok = False
                continue
            out.append(PodPeer(NamespaceScope(selector=nss), pods))  # sel-2, sel-4
        else:
            out.append(PodPeer(NamespaceScope(name=namespace), pods))  # sel-3
    return tuple(out) if ok else None


def _ipblock(ctx: Ctx, raw: Any, path: str, line: int) -> IPPeer | None:
    m = ctx.mapping(raw, path, line, {"cidr", "except"})
    if m is None:
        return None
    if "cidr" not in m:
        ctx.error("required", f"{path}.cidr is required", line)
        return None
    cidr = ctx.cidr(m["cidr"], f"{path}.cidr", line_of(m, "cidr") or line)
    if cidr is None:
        return None
    ips = cidr
    excepts = ctx.seq(m.get("except"), f"{path}.except", line_of(m, "except") or line)
    if excepts is None:
        return None
    texts = []
    for k, e in enumerate(excepts):
        el = line_of(excepts, k) or line_of(m, "except") or line
        ex = ctx.cidr(e, f"{path}.except[{k}]", el)
        if ex is None:
            return None
        if not ex.issubset(cidr) or ex == cidr:
            ctx.error("except-outside", f"{path}.except[{k}]: {show(e)} is not a strict subset "
                      f"of cidr {show(m['cidr'])} (ip-2)", el)
            return None
        ips = ips - ex
        texts.append(clean(str(e)))
    text = f"ipBlock {clean(str(m['cidr']))}"
    if texts:
        text += " except " + ", ".join(texts)
    return IPPeer(ips, text)


def _ports(ctx: Ctx, rule: dict[str, Any], path: str,
           line: int) -> tuple[PortClause, ...] | None:
    """The rule's port clauses; () for all ports (port-2), None after an error."""
    raw = rule.get("ports")
    if raw is None:
        return ()
    items = ctx.seq(raw, f"{path}.ports", line_of(rule, "ports") or line)
    if items is None:
        return None
    out: list[PortClause] = []
    for pp, pl, pm in ctx.items(items, f"{path}.ports", line, {"protocol", "port", "endPort"}):
        if pm is None:
            return None
        proto = ctx.protocol(pm.get("protocol"), f"{pp}.protocol",
                             line_of(pm, "protocol") or pl)
        if proto is None:
            return None
        port = pm.get("port")
        end = pm.get("endPort")
        if port is None:
            if end is not None:
                ctx.error("endport", f"{pp}.endPort requires a numeric port (port-3)", pl)
                return None
            out.append(PortClause(proto))
            continue
        if isinstance(port, str):
            name = ctx.port_name(port, f"{pp}.port", line_of(pm, "port") or pl)
            if name is None:
                return None
            if end is not None:
                ctx.error("endport", f"{pp}.endPort cannot be used with named port "
                          f"{show(port)} (port-3)", line_of(pm, "endPort") or pl)
                return None
            out.append(PortClause(proto, name=name))
            continue
        num = ctx.port_number(port, f"{pp}.port", line_of(pm, "port") or pl)
        if num is None:
            return None
        end_num = None
        if end is not None:
            end_num = ctx.port_number(end, f"{pp}.endPort", line_of(pm, "endPort") or pl)
            if end_num is None:
                return None
            if end_num < num:
                ctx.error("endport", f"{pp}.endPort {end_num} is below port {num} (port-3)",
                          line_of(pm, "endPort") or pl)
                return None
        out.append(PortClause(proto, num, end_num))
    return tuple(out)
