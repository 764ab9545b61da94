"""Raw Kubernetes objects -> ``ClusterState`` (dispatch on group, version and kind; INPUT.md).

Pods come from Pod objects, or, for controllers whose pods are not in the input, one
representative pod per replica from the pod template (D-4). ReplicaSets owned by a Deployment in
the input, and pods owned by a controller, are attributed to the top-level workload.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from netfence.errors import Diagnostic, ObjectRef, Severity, SourceRef, clean
from netfence.model.cluster import (
    METADATA_NAME,
    ClusterState,
    ContainerPort,
    Namespace,
    Node,
    Pod,
    Service,
    ServicePort,
    Unmodelled,
    Workload,
    WorkloadRef,
)
from netfence.model.net import IPSet
from netfence.model.policy import Policy
from netfence.model.ports import Protocol
from netfence.selectors import matches
from netfence.sources.cnp import convert_cluster_policy
from netfence.sources.netpol import convert_networkpolicy
from netfence.sources.parse import Document, line_of
from netfence.sources.validate import Ctx, show, valid_name

WORKLOAD_KINDS = {
    ("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"), ("", "ReplicationController"), ("batch", "Job"),
    ("batch", "CronJob"),
}
CLUSTER_POLICY_KINDS = {"ClusterNetworkPolicy": ("v1alpha2", "v1beta1"),
                        "AdminNetworkPolicy": ("v1alpha1",),
                        "BaselineAdminNetworkPolicy": ("v1alpha1",)}
POLICY_GROUPS = ("projectcalico.org", "crd.projectcalico.org", "cilium.io", "crd.antrea.io",
                 "security.istio.io", "networking.istio.io", "networking.gke.io",
                 "k8s.ovn.org", "kyverno.io", "policy.networking.k8s.io")
BUILTIN_GROUPS = ("", "apps", "batch", "networking.k8s.io", "rbac.authorization.k8s.io",
                  "policy", "autoscaling", "storage.k8s.io", "scheduling.k8s.io",
                  "apiextensions.k8s.io", "admissionregistration.k8s.io", "coordination.k8s.io",
                  "discovery.k8s.io", "node.k8s.io", "certificates.k8s.io", "events.k8s.io",
                  "flowcontrol.apiserver.k8s.io", "apiregistration.k8s.io",
                  "extensions")
CLUSTER_SCOPED = {"Namespace", "Node", "ClusterNetworkPolicy", "AdminNetworkPolicy",
                  "BaselineAdminNetworkPolicy", "ClusterRole", "ClusterRoleBinding",
                  "CustomResourceDefinition", "PersistentVolume", "StorageClass",
                  "PriorityClass", "ValidatingWebhookConfiguration",
                  "MutatingWebhookConfiguration", "APIService", "IngressClass",
                  "RuntimeClass", "GlobalNetworkPolicy", "CiliumClusterwideNetworkPolicy",
                  "GlobalNetworkSet", "ClusterNetworkPolicy.crd.antrea.io"}
CONTAINER_PORT_FIELDS = {"name", "containerPort", "protocol", "hostPort", "hostIP"}


@dataclass
class _Builder:
    diags: list[Diagnostic] = field(default_factory=list)
    namespaces: dict[str, Namespace] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    pod_owner: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    workloads: list[tuple[Workload, dict[str, str] | None, list[tuple[str, str]]]] = field(
        default_factory=list)
    services: list[Service] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    policies: list[Policy] = field(default_factory=list)
    unmodelled: list[Unmodelled] = field(default_factory=list)
    not_analysed: Counter[str] = field(default_factory=Counter)
    seen: dict[tuple[str, str, str, str], str] = field(default_factory=dict)
    referenced: dict[str, SourceRef] = field(default_factory=dict)


def build_state(docs: list[Document], diags: list[Diagnostic]) -> ClusterState:
    b = _Builder(diags=diags)
    for doc in docs:
        _document(b, doc)
    return _finish(b)


def _document(b: _Builder, doc: Document) -> None:
    data = doc.data
    if not isinstance(data, dict):
        b.diags.append(Diagnostic(Severity.ERROR, "not-an-object",
                                  f"document is not a mapping but {show(data)}",
                                  SourceRef(doc.file, doc.line, doc.index)))
        return
    kind = data.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(data.get("items"), list):
        items = data["items"]
        for i, item in enumerate(items):
            line = line_of(items, i) or doc.line
            _object(b, item, doc.file, doc.index, line)
        return
    _object(b, data, doc.file, doc.index, doc.line)


def _object(b: _Builder, obj: Any, file: str, doc: int, line: int) -> None:
    if not isinstance(obj, dict):
        b.diags.append(Diagnostic(Severity.ERROR, "not-an-object",
                                  f"item is not a mapping but {show(obj)}",
                                  SourceRef(file, line, doc)))
        return
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    meta = obj.get("metadata")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        b.diags.append(Diagnostic(Severity.ERROR, "no-kind",
                                  "object without apiVersion and kind strings",
                                  SourceRef(file, line, doc)))
        return
    group, _, version = api_version.rpartition("/")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        b.diags.append(Diagnostic(Severity.ERROR, "no-name", f"{clean(kind)} without "
                                  "metadata.name", SourceRef(file, line, doc)))
        return
    meta_d: dict[str, Any] = meta
    name = meta_d["name"]
    if not valid_name(kind, name):
        b.diags.append(Diagnostic(Severity.ERROR, "invalid-name", f"{clean(kind)}: invalid "
                                  f"metadata.name {show(name)} (RFC 1123: lowercase letters, "
                                  "digits, '-' and '.')",
                                  SourceRef(file, line_of(meta_d, "name") or line, doc)))
        return
    namespaced = kind not in CLUSTER_SCOPED
    ns = ""
    if namespaced:
        raw_ns = meta.get("namespace")
        if raw_ns is None:
            ns = "default"
        elif isinstance(raw_ns, str) and valid_name("Namespace", raw_ns):
            ns = raw_ns
        else:
            b.diags.append(Diagnostic(Severity.ERROR, "type", f"metadata.namespace must be a "
                                      f"string, got {show(raw_ns)}",
                                      SourceRef(file, line, doc, ObjectRef(kind, "", name))))
            return
    ctx = Ctx(file, doc, line, ObjectRef(kind, ns, name), b.diags)
    modelled = _classify(group, version, kind)
    if modelled == "ignore":
        b.not_analysed[kind] += 1
        return
    if modelled == "unmodelled":
        why = ("extensions/v1beta1 NetworkPolicy was removed from Kubernetes"
               if kind == "NetworkPolicy" and group == "extensions" else
               f"{api_version} {kind} is not analysed")
        ctx.warn("unmodelled", f"{why}: the result may be wrong (policy kind not modelled)")
        b.unmodelled.append(Unmodelled(api_version, ObjectRef(kind, ns, name), ctx.ref()))
        return
    if namespaced and meta.get("namespace") is None:
        ctx.warn("no-namespace", "no metadata.namespace: assumed 'default'")
    key = (group, kind, ns, name)
    where = f"{file}:{line}"
    if key in b.seen:
        ctx.error("duplicate", f"duplicate object: {kind} {ns + '/' if ns else ''}{name} "
                  f"already defined at {b.seen[key]}")
        return
    b.seen[key] = where
    labels = ctx.labels(meta.get("labels"), "metadata.labels",
                        line_of(meta, "labels") or line)
    raw_ann = meta_d.get("annotations")
    annotations: dict[str, Any] = raw_ann if isinstance(raw_ann, dict) else {}
    ann = {k: v for k, v in annotations.items() if isinstance(k, str) and isinstance(v, str)}
    if labels is None:
        return
    if namespaced:
        b.referenced.setdefault(ns, ctx.ref())
    if kind == "Namespace":
        if labels.get(METADATA_NAME, name) != name:
            ctx.warn("metadata-name-label", f"label {METADATA_NAME}={show(labels[METADATA_NAME])}"
                     f" is overwritten with {show(name)} by the API server (sel-7)")
        labels[METADATA_NAME] = name  # sel-7
        b.namespaces[name] = Namespace(name, labels, ctx.ref(), annotations=ann)
    elif kind == "Pod":
        _pod(b, ctx, obj, ns, name, labels, ann)
    elif (group, kind) in WORKLOAD_KINDS:
        _workload(b, ctx, obj, kind, ns, name, labels, ann)
    elif kind == "Service":
        _service(b, ctx, obj, ns, name)
    elif kind == "Node":
        _node(b, ctx, obj, name, labels)
    elif kind == "NetworkPolicy":
        pol = convert_networkpolicy(ctx, obj, ns, name, annotations)
        if pol is not None:
            b.policies.append(pol)
    else:
        pol = convert_cluster_policy(ctx, obj, kind, version, name, annotations)
        if pol is not None:
            b.policies.append(pol)


def _classify(group: str, version: str, kind: str) -> str:
    if group == "networking.k8s.io" and kind == "NetworkPolicy":
        return "model" if version == "v1" else "unmodelled"
    if group == "extensions" and kind == "NetworkPolicy":
        return "unmodelled"
    if group == "policy.networking.k8s.io" and kind in CLUSTER_POLICY_KINDS:
        return "model" if version in CLUSTER_POLICY_KINDS[kind] else "unmodelled"
    if (group == "" and kind in ("Namespace", "Pod", "Service", "Node",
                                 "ReplicationController")) or (group, kind) in WORKLOAD_KINDS:
        return "model" if version == "v1" else "ignore"
    if group in POLICY_GROUPS or group.endswith(POLICY_GROUPS):
        return "unmodelled"
    if "Policy" in kind and group not in BUILTIN_GROUPS:
        return "unmodelled"
    return "ignore"


def _container_ports(ctx: Ctx, spec: dict[str, Any], path: str) -> tuple[ContainerPort, ...]:
    out: list[ContainerPort] = []
    first_owner: dict[str, str] = {}
    for ckey in ("initContainers", "containers"):
        containers = spec.get(ckey)
        if not isinstance(containers, list):
            continue
        for ci, c in enumerate(containers):
            if not isinstance(c, dict):
                continue
            cname = str(c.get("name", ci))
            ports = c.get("ports")
            if ports is None:
                continue
            pl = line_of(c, "ports") or line_of(containers, ci)
            items = ctx.seq(ports, f"{path}.{ckey}[{ci}].ports", pl) or []
            names_here: set[str] = set()
            for k, p in enumerate(items):
                pp = f"{path}.{ckey}[{ci}].ports[{k}]"
                il = line_of(items, k) or pl
                pm = ctx.mapping(p, pp, il, CONTAINER_PORT_FIELDS)
                if pm is None:
                    continue
                num = ctx.port_number(pm.get("containerPort"), f"{pp}.containerPort", il)
                proto = ctx.protocol(pm.get("protocol"), f"{pp}.protocol", il)
                pname = pm.get("name")
                if pname is not None:
                    pname = ctx.port_name(pname, f"{pp}.name", il)
                    if pname is None:
                        continue
                    if pname in names_here:
                        ctx.error("port-name-duplicate", f"{pp}.name: port name "
                                  f"{show(pname)} repeated in container {show(cname)}", il)
                        continue
                    names_here.add(pname)
                    if pname in first_owner and first_owner[pname] != cname:
                        ctx.warn("port-name-shared", f"{pp}.name: port name {show(pname)} is "
                                 f"also used by container {show(first_owner[pname])}: a named "
                                 "port then means two numbers", il)
                    first_owner.setdefault(pname, cname)
                if num is None or proto is None:
                    continue
                out.append(ContainerPort(pname, num, proto))
    return tuple(out)


def _pod_template(ctx: Ctx, spec: Any, path: str) -> tuple[tuple[ContainerPort, ...], bool]:
    if not isinstance(spec, dict):
        return (), False
    ports = _container_ports(ctx, spec, path)
    return ports, spec.get("hostNetwork") is True


def _pod(b: _Builder, ctx: Ctx, obj: dict[str, Any], ns: str, name: str,
         labels: dict[str, str], annotations: dict[str, str]) -> None:
    spec = obj.get("spec")
    before = ctx.errors
    ports, host_net = _pod_template(ctx, spec, "spec")
    if ctx.errors != before:
        return
    raw_status = obj.get("status")
    status: dict[str, Any] = raw_status if isinstance(raw_status, dict) else {}
    ips: list[str] = []
    pod_ips = status.get("podIPs")
    if isinstance(pod_ips, list):
        ips = [p["ip"] for p in pod_ips if isinstance(p, dict) and isinstance(p.get("ip"), str)]
    if not ips and isinstance(status.get("podIP"), str):
        ips = [status["podIP"]]
    good_ips: list[str] = []
    from netfence.model.net import ip_to_int
    for ip in ips:
        try:
            ip_to_int(ip)
            good_ips.append(ip)
        except ValueError:
            ctx.error("pod-ip", f"status.podIP: invalid address {show(ip)}",
                      line_of(status, "podIP") or ctx.line)
            return
    phase = status.get("phase")
    if phase in ("Succeeded", "Failed"):
        good_ips = []  # D-10: terminated pods are listed but not matched by ipBlocks
    node = spec.get("nodeName", "") if isinstance(spec, dict) else ""
    owners: list[tuple[str, str]] = []
    meta = obj["metadata"]
    for o in meta.get("ownerReferences") or []:
        if isinstance(o, dict) and isinstance(o.get("kind"), str) and isinstance(
                o.get("name"), str):
            owners.append((o["kind"], o["name"]))
    host_ip = status.get("hostIP")
    if not isinstance(host_ip, str):
        host_ip = ""
    else:
        try:
            ip_to_int(host_ip)
        except ValueError:
            host_ip = ""
    pod = Pod(ns, name, labels, ports, WorkloadRef("Pod", ns, name), host_net,
              tuple(good_ips), node if isinstance(node, str) else "", ctx.ref(),
              host_ip=host_ip, annotations=annotations)
    b.pod_owner[len(b.pods)] = owners
    b.pods.append(pod)


def _workload(b: _Builder, ctx: Ctx, obj: dict[str, Any], kind: str, ns: str, name: str,
              labels: dict[str, str], annotations: dict[str, str]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        ctx.error("required", "spec is required")
        return
    path = "spec"
    inner: dict[str, Any] = spec
    if kind == "CronJob":
        jt = spec.get("jobTemplate")
        jspec = jt.get("spec") if isinstance(jt, dict) else None
        path = "spec.jobTemplate.spec"
        if not isinstance(jspec, dict):
            ctx.error("required", "spec.jobTemplate.spec is required")
            return
        inner = jspec
    template = inner.get("template")
    if not isinstance(template, dict):
        ctx.error("required", f"{path}.template is required")
        return
    raw_tmeta = template.get("metadata")
    tmeta: dict[str, Any] = raw_tmeta if isinstance(raw_tmeta, dict) else {}
    tl = line_of(template, "metadata") or ctx.line
    tlabels = ctx.labels(tmeta.get("labels"), f"{path}.template.metadata.labels",
                         line_of(tmeta, "labels") or tl)
    if tlabels is None:
        return
    before = ctx.errors
    ports, host_net = _pod_template(ctx, template.get("spec"), f"{path}.template.spec")
    if ctx.errors != before:
        return
    selector: dict[str, str] | None = None
    sel_raw = inner.get("selector")
    sl = line_of(inner, "selector") or ctx.line
    if kind == "ReplicationController":
        if sel_raw is not None:
            got = ctx.labels(sel_raw, f"{path}.selector", sl)
            if got is None:
                return
            selector = got
            if any(tlabels.get(k) != v for k, v in got.items()):
                ctx.error("selector-mismatch", f"{path}.selector {show(got)} does not match the "
                          f"template labels {show(tlabels)}", sl)
                return
        else:
            selector = dict(tlabels)
    elif sel_raw is not None:
        sel = ctx.selector(sel_raw, f"{path}.selector", sl)
        if sel is None:
            return
        if sel.is_empty() and kind != "Job":
            ctx.error("selector-empty", f"{path}.selector must not be empty", sl)
            return
        if not matches(sel, tlabels):
            ctx.error("selector-mismatch", f"{path}.selector does not match the template "
                      f"labels {show(tlabels)}", sl)
            return
        selector = dict(sel.match_labels) if not sel.match_expressions else dict(tlabels)
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        ctx.error("required", f"{path}.selector is required for {kind}", ctx.line)
        return
    replicas = 1
    raw_rep = inner.get("replicas") if kind not in ("Job", "CronJob", "DaemonSet") else None
    if kind in ("Job", "CronJob"):
        raw_rep = inner.get("parallelism")
    if raw_rep is not None:
        got_rep = ctx.integer(raw_rep, f"{path}.replicas", line_of(inner, "replicas") or ctx.line)
        if got_rep is None:
            return
        replicas = max(got_rep, 0)
    owners: list[tuple[str, str]] = []
    for o in obj["metadata"].get("ownerReferences") or []:
        if isinstance(o, dict) and isinstance(o.get("kind"), str):
            owners.append((o["kind"], str(o.get("name"))))
    wl = Workload(WorkloadRef(kind, ns, name), tlabels, ports, replicas, host_net, ctx.ref(),
                  annotations)
    b.workloads.append((wl, selector, owners))


def _service(b: _Builder, ctx: Ctx, obj: dict[str, Any], ns: str, name: str) -> None:
    raw_spec = obj.get("spec")
    spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    sel = spec.get("selector")
    selector = None
    if sel is not None:
        selector = ctx.labels(sel, "spec.selector", line_of(spec, "selector") or ctx.line)
    ports: list[ServicePort] = []
    for p in spec.get("ports") or []:
        if not isinstance(p, dict) or not isinstance(p.get("port"), int):
            continue
        target = p.get("targetPort", p["port"])
        proto = p.get("protocol", "TCP")
        try:
            protocol = Protocol(proto)
        except ValueError:
            continue
        ports.append(ServicePort(p["port"], target if isinstance(target, int | str)
                                 else p["port"], protocol, str(p.get("name", ""))))
    svc_type = spec.get("type", "ClusterIP")
    if svc_type in ("NodePort", "LoadBalancer") and spec.get(
            "externalTrafficPolicy", "Cluster") == "Cluster":
        ctx.warn("snat-source", f"{svc_type} Service with externalTrafficPolicy Cluster: "
                 "traffic may be SNATed, so policies can see a node IP as the source (D-2)",
                 line_of(spec, "type") or ctx.line)
    b.services.append(Service(ns, name, selector, tuple(ports), str(spec.get("type",
                                                                            "ClusterIP")),
                              ctx.ref()))


def _node(b: _Builder, ctx: Ctx, obj: dict[str, Any], name: str, labels: dict[str, str]) -> None:
    raw_status = obj.get("status")
    status: dict[str, Any] = raw_status if isinstance(raw_status, dict) else {}
    addrs: list[str] = []
    from netfence.model.net import ip_to_int
    for a in status.get("addresses") or []:
        if isinstance(a, dict) and a.get("type") in ("InternalIP", "ExternalIP"):
            try:
                ip_to_int(str(a.get("address")))
            except ValueError:
                continue
            addrs.append(str(a["address"]))
    raw_spec = obj.get("spec")
    spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    cidrs = spec.get("podCIDRs")
    if not isinstance(cidrs, list):
        cidrs = [spec["podCIDR"]] if isinstance(spec.get("podCIDR"), str) else []
    pod_cidrs: list[str] = []
    for c in cidrs:
        try:
            IPSet.parse(str(c))
        except ValueError:
            ctx.warn("node-pod-cidr", f"spec.podCIDRs: not a CIDR {show(c)}: ignored",
                     line_of(spec, "podCIDRs") or line_of(spec, "podCIDR") or ctx.line)
            continue
        pod_cidrs.append(str(c))
    b.nodes.append(Node(name, labels, tuple(addrs), ctx.ref(), tuple(pod_cidrs)))


def _finish(b: _Builder) -> ClusterState:
    # attribute real pods to their top-level workload; synthesise pods for the others
    by_key = {(w.ref.kind, w.ref.namespace, w.ref.name): (w, sel, owners)
              for w, sel, owners in b.workloads}

    def top(kind: str, ns: str, name: str) -> tuple[str, str, str] | None:
        cur = (kind, ns, name)
        if cur not in by_key:
            return None
        for _ in range(4):
            _, _, owners = by_key[cur]
            nxt = next(((k, ns, n) for k, n in owners if (k, ns, n) in by_key), None)
            if nxt is None:
                break
            cur = nxt
        return cur

    covered: set[tuple[str, str, str]] = set()
    pods: list[Pod] = []
    for i, pod in enumerate(b.pods):
        owner = None
        for kind, name in b.pod_owner.get(i, []):
            owner = top(kind, pod.namespace, name)
            if owner:
                break
        if owner is None:
            for (kind, ns, name), (_w, sel, _owners) in by_key.items():
                if ns == pod.namespace and sel and all(
                        pod.labels.get(k) == v for k, v in sel.items()):
                    owner = top(kind, ns, name)
                    break
        if owner is not None:
            covered.add(owner)
            # a ReplicaSet covered through its Deployment covers the Deployment too
            pod = Pod(pod.namespace, pod.name, pod.labels, pod.ports,
                      WorkloadRef(*owner), pod.host_network, pod.ips, pod.node, pod.source,
                      host_ip=pod.host_ip, annotations=pod.annotations)
        pods.append(pod)
    workloads: list[Workload] = []
    for key, (w, _sel, owners) in by_key.items():
        owned_by = [(k, w.ref.namespace, n) for k, n in owners if (k, w.ref.namespace, n)
                    in by_key]
        if owned_by:
            continue  # e.g. a ReplicaSet of a Deployment in the input, or a Job of a CronJob
        workloads.append(w)
        if key in covered:
            continue
        for r in range(max(w.replicas, 1)):
            pods.append(Pod(w.ref.namespace, f"{w.ref.name}-{r}", w.labels, w.ports, w.ref,
                            w.host_network, (), "", w.source, synthetic=True,
                            annotations=w.annotations))
    # implicit namespaces
    namespaces = dict(b.namespaces)
    for ns, ref in sorted(b.referenced.items()):
        if ns not in namespaces:
            b.diags.append(Diagnostic(Severity.WARNING, "implicit-namespace",
                                      f"namespace '{clean(ns)}' is used but not declared: "
                                      "created implicitly", ref))
            namespaces[ns] = Namespace(ns, {METADATA_NAME: ns}, ref, implicit=True)
    return ClusterState(
        namespaces=namespaces,
        pods=tuple(pods),
        workloads=tuple(workloads) + tuple(
            Workload(p.workload, p.labels, p.ports, 1, p.host_network, p.source,
                     p.annotations)
            for p in pods if p.workload.kind == "Pod"),
        services=tuple(b.services),
        nodes=tuple(b.nodes),
        policies=tuple(b.policies),
        unmodelled=tuple(b.unmodelled),
        diagnostics=tuple(b.diags),
        not_analysed=dict(sorted(b.not_analysed.items())),
    )
