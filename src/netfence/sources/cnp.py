"""ClusterNetworkPolicy (v1alpha2, v1beta1) and AdminNetworkPolicy / BaselineAdminNetworkPolicy
(v1alpha1) -> one internal ``Policy`` model (SEMANTICS tier-7).

Field shapes: docs/reference/cluster-network-policy.md. A peer whose only fields are unknown
fails closed as the API prescribes (Accept/Allow matches nothing, Deny/Pass matches everything)
with a warning; a literal empty peer ``{}`` is an error.
"""

from __future__ import annotations

from typing import Any

from netfence.model.net import IPSet
from netfence.model.policy import (
    Action,
    AnyPeer,
    DomainPeer,
    IPPeer,
    NamespaceScope,
    NodePeer,
    NoPeer,
    Peer,
    PodPeer,
    Policy,
    PolicyRef,
    PortClause,
    Rule,
    Subject,
    Tier,
)
from netfence.model.ports import Protocol
from netfence.sources.parse import line_of
from netfence.sources.validate import Ctx, audit_mode, show

CNP = "ClusterNetworkPolicy"
ANP = "AdminNetworkPolicy"
BANP = "BaselineAdminNetworkPolicy"
PEER_INGRESS = {"namespaces", "pods"}
PEER_EGRESS = {"namespaces", "pods", "nodes", "networks", "domainNames"}


def convert_cluster_policy(ctx: Ctx, obj: dict[str, Any], kind: str, version: str, name: str,
                           annotations: dict[str, Any]) -> Policy | None:
    before = ctx.errors
    if kind == CNP:
        spec_fields = {"tier", "priority", "subject", "ingress", "egress"}
    elif kind == ANP:
        spec_fields = {"priority", "subject", "ingress", "egress"}
    else:
        spec_fields = {"subject", "ingress", "egress"}
    sl = line_of(obj, "spec") or ctx.line
    spec = ctx.mapping(obj.get("spec"), "spec", sl, spec_fields)
    if spec is None:
        return None
    if kind == CNP:
        tier_raw = spec.get("tier")
        if tier_raw not in ("Admin", "Baseline"):
            ctx.error("tier", f"spec.tier: expected Admin or Baseline, got {show(tier_raw)}",
                      line_of(spec, "tier") or sl)
            return None
        tier = Tier.ADMIN if tier_raw == "Admin" else Tier.BASELINE
    else:
        tier = Tier.ADMIN if kind == ANP else Tier.BASELINE
    priority = 0
    if kind == BANP:
        if name != "default":
            ctx.error("banp-name", f"BaselineAdminNetworkPolicy must be named 'default', "
                      f"got {show(name)}", ctx.line)
    else:
        pl = line_of(spec, "priority") or sl
        if "priority" not in spec:
            ctx.error("required", "spec.priority is required", sl)
        else:
            pr = ctx.integer(spec["priority"], "spec.priority", pl)
            if pr is not None and not 0 <= pr <= 1000:
                ctx.error("priority", f"spec.priority {pr} out of range 0-1000", pl)
            priority = pr or 0
    subject = _subject(ctx, spec.get("subject"), line_of(spec, "subject") or sl)
    max_rules = 25 if kind == CNP else 100
    actions = {"Accept", "Deny", "Pass"} if kind == CNP else (
        {"Allow", "Deny", "Pass"} if kind == ANP else {"Allow", "Deny"})
    ingress = _rules(ctx, spec, "ingress", "from", PEER_INGRESS, actions, max_rules, kind,
                     version)
    egress = _rules(ctx, spec, "egress", "to", PEER_EGRESS - ({"domainNames"} if kind == BANP
                                                              else set()),
                    actions, max_rules, kind, version)
    if ctx.errors != before or subject is None or ingress is None or egress is None:
        return None
    return Policy(
        ref=PolicyRef(kind, "", name),
        tier=tier,
        priority=priority,
        subject=subject,
        ingress=ingress or None,
        egress=egress or None,
        source=ctx.ref(),
        audit=audit_mode(ctx, annotations),
        annotations={k: v for k, v in annotations.items() if isinstance(v, str)},
    )


def _subject(ctx: Ctx, raw: Any, line: int) -> Subject | None:
    if raw is None:
        ctx.error("required", "spec.subject is required", line)
        return None
    m = ctx.mapping(raw, "spec.subject", line, {"namespaces", "pods"})
    if m is None:
        return None
    if len(m) != 1:
        ctx.error("subject", "spec.subject must set exactly one of namespaces or pods", line)
        return None
    if "namespaces" in m:
        sel = ctx.selector(m["namespaces"], "spec.subject.namespaces",
                           line_of(m, "namespaces") or line)
        return None if sel is None else Subject(NamespaceScope(selector=sel), None)
    peer = _pods(ctx, m["pods"], "spec.subject.pods", line_of(m, "pods") or line)
    return None if peer is None else Subject(peer.namespaces, peer.pods)


def _pods(ctx: Ctx, raw: Any, path: str, line: int) -> PodPeer | None:
    m = ctx.mapping(raw, path, line, {"namespaceSelector", "podSelector"})
    if m is None:
        return None
    if "podSelector" not in m:
        ctx.error("required", f"{path}.podSelector is required", line)
        return None
    ns = ctx.selector(m.get("namespaceSelector"), f"{path}.namespaceSelector",
                      line_of(m, "namespaceSelector") or line)
    pods = ctx.selector(m.get("podSelector"), f"{path}.podSelector",
                        line_of(m, "podSelector") or line)
    if ns is None or pods is None:
        return None
    return PodPeer(NamespaceScope(selector=ns), pods)


def _rules(ctx: Ctx, spec: dict[str, Any], key: str, peer_key: str, peer_fields: set[str],
           actions: set[str], max_rules: int, kind: str,
           version: str) -> tuple[Rule, ...] | None:
    line = line_of(spec, key) or ctx.line
    raw = ctx.seq(spec.get(key), f"spec.{key}", line)
    if raw is None:
        return None
    if len(raw) > max_rules:
        ctx.error("too-many-rules", f"spec.{key}: {len(raw)} rules, at most {max_rules} allowed",
                  line)
        return None
    ports_key = "protocols" if kind == CNP and version != "v1alpha2-ports" else "ports"
    allowed = {"name", "action", peer_key, ports_key}
    if kind == CNP:
        allowed.add("ports")  # pre-v0.2.0 v1alpha2 drafts used the v1alpha1 'ports' shape
    out: list[Rule] = []
    ok = True
    for i, (path, rl, rm) in enumerate(ctx.items(raw, f"spec.{key}", line, allowed)):
        if rm is None:
            ok = False
            continue
        act_raw = rm.get("action")
        if act_raw not in actions:
            ctx.error("action", f"{path}.action: unknown action {show(act_raw)} "
                      f"({', '.join(sorted(actions))})", line_of(rm, "action") or rl)
            ok = False
            continue
        action = Action.ALLOW if act_raw in ("Accept", "Allow") else Action(act_raw)
        name = rm.get("name", "")
        if not isinstance(name, str):
            ctx.error("type", f"{path}.name: expected a string, got {show(name)}", rl)
            ok = False
            continue
        peers = _peers(ctx, rm.get(peer_key), f"{path}.{peer_key}",
                       line_of(rm, peer_key) or rl, peer_fields, action)
        if "protocols" in rm and "ports" in rm:
            ctx.error("ports", f"{path}: set protocols or ports, not both", rl)
            ok = False
            continue
        if "protocols" in rm:
            ports = _protocols(ctx, rm["protocols"], f"{path}.protocols",
                               line_of(rm, "protocols") or rl)
        else:
            ports = _v1alpha1_ports(ctx, rm.get("ports"), f"{path}.ports",
                                    line_of(rm, "ports") or rl)
        if peers is None or ports is None:
            ok = False
            continue
        named = ports and any(c.name for c in ports)
        if named and any(isinstance(p, IPPeer | NodePeer | DomainPeer) for p in peers):
            ctx.error("named-port-peer", f"{path}: networks/nodes/domainNames peers cannot be "
                      "used with named ports", rl)
            ok = False
            continue
        out.append(Rule(i, action, peers, ports or None, name=name, line=rl))
    return tuple(out) if ok else None


def _peers(ctx: Ctx, raw: Any, path: str, line: int, fields: set[str],
           action: Action) -> tuple[Peer, ...] | None:
    items = ctx.seq(raw, path, line)
    if items is None:
        return None
    if not items:
        ctx.error("required", f"{path}: at least one peer is required", line)
        return None
    out: list[Peer] = []
    for j, p in enumerate(items):
        pp = f"{path}[{j}]"
        pl = line_of(items, j) or line
        if not isinstance(p, dict):
            ctx.error("type", f"{pp}: expected a mapping, got {show(p)}", pl)
            return None
        if not p:
            ctx.error("peer-empty", f"{pp}: a peer must set exactly one of "
                      f"{', '.join(sorted(fields))}", pl)
            return None
        known = [k for k in p if k in fields]
        if not known:
            # fail closed, as the API prescribes for an unrecognised peer
            unknown = ", ".join(sorted(str(k) for k in p))
            if action is Action.ALLOW:
                ctx.warn("peer-unknown", f"{pp}: no recognised peer field ({unknown}); "
                         "this Accept/Allow rule fails closed and matches nothing", pl)
                out.append(NoPeer(f"unrecognised peer ({unknown}): matches nothing"))
            else:
                ctx.warn("peer-unknown", f"{pp}: no recognised peer field ({unknown}); "
                         f"this {action.value} rule fails closed and matches everything", pl)
                out.append(AnyPeer(f"unrecognised peer ({unknown}): fails closed, matches all"))
            continue
        if len(p) != 1:
            ctx.error("peer-fields", f"{pp}: a peer must set exactly one field, got "
                      f"{', '.join(sorted(str(k) for k in p))}", pl)
            return None
        field = known[0]
        fl = line_of(p, field) or pl
        if field == "namespaces":
            sel = ctx.selector(p[field], f"{pp}.namespaces", fl)
            if sel is None:
                return None
            out.append(PodPeer(NamespaceScope(selector=sel), None))
        elif field == "pods":
            peer = _pods(ctx, p[field], f"{pp}.pods", fl)
            if peer is None:
                return None
            out.append(peer)
        elif field == "nodes":
            sel = ctx.selector(p[field], f"{pp}.nodes", fl)
            if sel is None:
                return None
            out.append(NodePeer(sel))
        elif field == "networks":
            nets = ctx.seq(p[field], f"{pp}.networks", fl)
            if nets is None:
                return None
            if not 1 <= len(nets) <= 25:
                ctx.error("networks", f"{pp}.networks: 1 to 25 CIDRs required", fl)
                return None
            ips = IPSet()
            for k, cidr in enumerate(nets):
                got = ctx.cidr(cidr, f"{pp}.networks[{k}]", line_of(nets, k) or fl,
                               strict_host=True)
                if got is None:
                    return None
                ips = ips | got
            out.append(IPPeer(ips, "networks " + ", ".join(str(n) for n in nets)))
        else:
            names = ctx.seq(p[field], f"{pp}.domainNames", fl)
            if names is None:
                return None
            if action is not Action.ALLOW:
                ctx.error("domain-action", f"{pp}.domainNames: only allowed in Accept/Allow "
                          "rules", fl)
                return None
            out.append(DomainPeer(tuple(str(n) for n in names)))
    return tuple(out)


def _dest_port(ctx: Ctx, raw: Any, path: str, line: int,
               proto: Protocol) -> PortClause | None:
    m = ctx.mapping(raw, path, line, {"destinationPort"})
    if m is None:
        return None
    dp = ctx.mapping(m.get("destinationPort"), f"{path}.destinationPort",
                     line_of(m, "destinationPort") or line, {"number", "range"})
    if dp is None:
        return None
    if len(dp) != 1:
        ctx.error("ports", f"{path}.destinationPort: set exactly one of number or range", line)
        return None
    if "number" in dp:
        n = ctx.port_number(dp["number"], f"{path}.destinationPort.number", line)
        return None if n is None else PortClause(proto, n)
    rng = ctx.mapping(dp["range"], f"{path}.destinationPort.range", line, {"start", "end"})
    if rng is None:
        return None
    start = ctx.port_number(rng.get("start"), f"{path}.destinationPort.range.start", line)
    end = ctx.port_number(rng.get("end"), f"{path}.destinationPort.range.end", line)
    if start is None or end is None:
        return None
    if start >= end:
        ctx.error("port-range", f"{path}.destinationPort.range: start {start} must be less "
                  f"than end {end}", line)
        return None
    return PortClause(proto, start, end)


def _protocols(ctx: Ctx, raw: Any, path: str, line: int) -> tuple[PortClause, ...] | None:
    items = ctx.seq(raw, path, line)
    if items is None:
        return None
    out: list[PortClause] = []
    options = ("tcp", "udp", "sctp", "destinationNamedPort")
    for ip, il, m in ctx.items(items, path, line, set(options)):
        key = None if m is None else ctx.one_key(m, options, ip, il)
        if m is None or key is None:
            return None
        if key == "destinationNamedPort":
            name = ctx.port_name(m[key], f"{ip}.destinationNamedPort", il)
            if name is None:
                return None
            out.append(PortClause(None, name=name))
            continue
        clause = _dest_port(ctx, m[key], f"{ip}.{key}", line_of(m, key) or il,
                            Protocol(key.upper()))
        if clause is None:
            return None
        out.append(clause)
    return tuple(out)


def _v1alpha1_ports(ctx: Ctx, raw: Any, path: str,
                    line: int) -> tuple[PortClause, ...] | None:
    if raw is None:
        return ()
    items = ctx.seq(raw, path, line)
    if items is None:
        return None
    out: list[PortClause] = []
    options = ("portNumber", "portRange", "namedPort")
    for ip, il, m in ctx.items(items, path, line, set(options)):
        key = None if m is None else ctx.one_key(m, options, ip, il)
        if m is None or key is None:
            return None
        if key == "namedPort":
            name = ctx.port_name(m[key], f"{ip}.namedPort", il)
            if name is None:
                return None
            out.append(PortClause(None, name=name))
            continue
        fields = {"protocol", "port"} if key == "portNumber" else {"protocol", "start", "end"}
        pm = ctx.mapping(m[key], f"{ip}.{key}", il, fields)
        if pm is None:
            return None
        proto = ctx.protocol(pm.get("protocol"), f"{ip}.{key}.protocol", il)
        if proto is None:
            return None
        if key == "portNumber":
            n = ctx.port_number(pm.get("port"), f"{ip}.portNumber.port", il)
            if n is None:
                return None
            out.append(PortClause(proto, n))
        else:
            start = ctx.port_number(pm.get("start"), f"{ip}.portRange.start", il)
            end = ctx.port_number(pm.get("end"), f"{ip}.portRange.end", il)
            if start is None or end is None:
                return None
            if start > end:
                ctx.error("port-range", f"{ip}.portRange: start {start} is above end {end}", il)
                return None
            out.append(PortClause(proto, start, end))
    return tuple(out)
