"""The lint catalogue: stable ids, severities and one documentation paragraph per check.

Ids never change meaning and are never reused; ``netfence lint --explain ID`` prints ``doc``.
"""

from __future__ import annotations

from netfence.checks.findings import Check, Level

_SEG = ("PCI DSS v4.0.1 1.3.1", "ISO/IEC 27001:2022 A.8.22")
_SEG_OUT = ("PCI DSS v4.0.1 1.3.2", "ISO/IEC 27001:2022 A.8.22")

CHECKS: tuple[Check, ...] = (
    Check(
        "NF001", "policy-selects-no-pod", Level.MEDIUM,
        "A policy whose subject selects no pod.",
        "The policy's podSelector (or, for a ClusterNetworkPolicy, its subject) matches no pod "
        "in the input, so the policy has no effect: neither its isolation nor its rules apply "
        "to anything. This is usually a typo in a label or a value, or a policy left behind "
        "after its workload was renamed or removed. hostNetwork pods are never selected "
        "(sp-1). Fix the selector, or delete the policy if its workload is gone. netfence "
        "judges the input as the whole cluster: lint a partial set of manifests and workloads "
        "outside it look absent.",
        ("correctness",)),
    Check(
        "NF002", "peer-matches-nothing", Level.LOW,
        "A rule peer whose selectors match no pod (or no node).",
        "A from/to peer (podSelector, namespaceSelector AND podSelector, a ClusterNetworkPolicy "
        "pods/namespaces/nodes peer) matches no pod or node of the input, so it neither allows "
        "nor denies anything today. Typical causes are a label typo, a pod label that only "
        "exists in another namespace (a podSelector alone looks in the policy's own namespace, "
        "sel-3), or a peer that selects hostNetwork pods, which selectors never match (sp-1). "
        "A Deny peer kept as a guardrail for workloads that do not exist yet is legitimate: "
        "suppress it with a reason.",
        ("correctness",)),
    Check(
        "NF003", "unknown-namespace-label", Level.MEDIUM,
        "A namespace selector requires a label that no namespace carries.",
        "A namespaceSelector (in a peer, or a ClusterNetworkPolicy subject or namespaces peer) "
        "requires a label key or key=value (matchLabels, In, Exists) that no namespace of the "
        "input carries, so it selects no namespace. The classic cause is a misspelt namespace "
        "name in kubernetes.io/metadata.name, which every namespace carries (sel-7), or a "
        "label that was planned but never applied to the namespaces. Label the namespaces or "
        "fix the selector.",
        ("correctness",)),
    Check(
        "NF004", "port-not-declared", Level.INFO,
        "A numeric ingress port that no selected pod declares as a containerPort.",
        "An ingress allow rule opens a port number (or endPort range) that none of the pods the "
        "policy selects declares as a containerPort with that protocol. Kubernetes still "
        "matches the port (port-4: containerPorts are informational), so this is only a hint "
        "that the port may be stale or wrong (a Service port written instead of the target "
        "port is a frequent mistake). Pods that declare no ports at all are not judged.",
        ("hygiene",)),
    Check(
        "NF005", "named-port-undefined", Level.MEDIUM,
        "A named port that no destination pod defines (with that protocol).",
        "A rule names a port (port: http, or destinationNamedPort) that no destination pod "
        "defines: for ingress the pods the policy selects, for egress the pods its peers "
        "match. Named ports match only a container port with the same name AND protocol "
        "(port-5) and never match external addresses (port-7), so the clause allows nothing. "
        "The finding says when the name exists with another protocol only (UDP versus TCP). "
        "Define the port on the pods, or use the right name or protocol.",
        ("correctness",)),
    Check(
        "NF006", "no-default-deny-ingress", Level.MEDIUM,
        "A namespace whose pods are not all fenced for ingress.",
        "Zero trust starts with default deny: every pod should be isolated for ingress so that "
        "only explicitly allowed traffic enters. A namespace is reported when some of its pods "
        "reach the Kubernetes default allow for some ingress peer and port (no NetworkPolicy "
        "isolates them, and the Admin and Baseline tiers leave some traffic undecided), or "
        "when nothing fences pods added later (no NetworkPolicy in it selects an unlabelled "
        "pod for ingress, and no Admin or Baseline policy for the whole namespace has a Deny "
        "rule for ingress). Add a default-deny NetworkPolicy (podSelector: {}, policyTypes: "
        "[Ingress]) or a Baseline ClusterNetworkPolicy that denies by default.",
        ("security", "zero-trust"), _SEG),
    Check(
        "NF007", "no-default-deny-egress", Level.MEDIUM,
        "A namespace whose pods are not all fenced for egress (opt-in).",
        "The egress counterpart of NF006, enabled with --default-deny egress or --default-deny "
        "both: some pods of the namespace reach the default allow for some egress peer and "
        "port, or nothing fences pods added later. Egress default deny stops data "
        "exfiltration and lateral movement from a compromised pod; remember DNS (see NF010) "
        "when you add it.",
        ("security", "zero-trust"), _SEG_OUT, default_enabled=False),
    Check(
        "NF008", "reachable-from-everywhere", Level.HIGH,
        "A workload that accepts ingress from every pod and every external address.",
        "For some port, the workload's ingress verdict (all tiers) allows every pod of every "
        "namespace and every external address of an IP family: nothing fences it. Either no "
        "policy isolates it, or a rule with an empty from (sel-1) or 0.0.0.0/0 plus "
        "namespaceSelector: {} opens it. Only ingress at the workload is judged; a source's "
        "own egress policy may still stop some callers. Restrict the peers to the callers "
        "that need it.",
        ("security", "zero-trust"), _SEG),
    Check(
        "NF009", "internet-ingress-to-non-controller", Level.HIGH,
        "0.0.0.0/0 (or ::/0) ingress to pods that are not ingress controllers.",
        "An ingress rule admits the whole public IPv4 or IPv6 space (an ipBlock or networks "
        "peer covering it, excepts of private ranges notwithstanding, or an empty from) into "
        "pods that are not ingress controllers, and the engine's verdict confirms that some "
        "of that traffic gets in. Only ingress controllers (and load balancers in front of "
        "them) should face the internet; everything else should be reached through them. "
        "Ingress controllers are recognised by app.kubernetes.io/name (ingress-nginx, "
        "nginx-ingress, traefik, haproxy-ingress, kubernetes-ingress, contour, envoy, kong, "
        "emissary-ingress, istio-ingressgateway), app.kubernetes.io/component=controller or "
        "istio=ingressgateway; --ingress-controller SELECTOR replaces that list.",
        ("security",), _SEG),
    Check(
        "NF010", "no-dns-egress", Level.MEDIUM,
        "Egress-restricted pods that cannot reach CoreDNS on UDP 53.",
        "The pod's egress is governed by some policy, and the engine's verdict (egress at the "
        "pod AND ingress at CoreDNS) denies UDP 53 to the CoreDNS pods (namespace "
        "kube-system, label k8s-app=kube-dns), to all of them or to some: name resolution "
        "fails or is flaky, a classic outage after adding egress default deny. Allow egress "
        "to namespace kube-system AND k8s-app=kube-dns on UDP and TCP 53 (one peer with both "
        "selectors). The check is skipped when the input has no CoreDNS pods.",
        ("correctness", "availability")),
    Check(
        "NF011", "redundant-rule", Level.LOW,
        "A NetworkPolicy rule that adds no connection given the other rules.",
        "Removing the rule would not change any verdict: for every pod the policy selects, "
        "every port and every peer the rule allows is also allowed by other NetworkPolicy "
        "rules that select the pod, or decided by the Admin tier first. Computed semantically "
        "with the engine, so a rule that looks different but allows nothing new is found too. "
        "Mutual redundancy is resolved once: of two rules that cover each other the finding "
        "names the one to delete and says which to keep, never both. Judged on the pods of "
        "the input; a rule written for pods that do not exist yet may be reported.",
        ("hygiene",)),
    Check(
        "NF012", "redundant-policy", Level.LOW,
        "A NetworkPolicy that adds no connection and no isolation given the others.",
        "Removing the whole policy would not change any verdict: every pod it selects is also "
        "isolated by another NetworkPolicy in each of its directions, and everything its "
        "rules allow is allowed by the others. A policy with a direction that has no rules "
        "(a default deny, whose purpose is isolation) is never reported, even when other "
        "policies isolate the same pods today. Of mutually redundant policies one is "
        "reported and the other named as the one to keep.",
        ("hygiene",)),
    Check(
        "NF013", "duplicate-policy", Level.LOW,
        "Two or more identical policies: keep one.",
        "The policy has the same kind, tier, priority, subject and rules (ignoring names and "
        "line numbers) as another one. One finding is reported per extra copy, naming the "
        "copy to keep (the first by namespace and name); the two are never reported as making "
        "each other redundant. Delete the extra copy, or change it if it was meant to differ.",
        ("hygiene",)),
    Check(
        "NF014", "shadowed-rule", Level.LOW,
        "A ClusterNetworkPolicy rule that never decides anything.",
        "Admin and Baseline rules are first-match: lower priority first, then written order. "
        "The rule matches some traffic, but for every pod it selects, earlier rules (of its "
        "own policy or of policies before it) decide all of that traffic first, or, in the "
        "Baseline tier, NetworkPolicies isolate every pod it selects so the tier is never "
        "consulted (tier-4). The rule is dead code; reorder it, narrow the earlier rule, or "
        "delete it.",
        ("hygiene", "correctness")),
    Check(
        "NF015", "admin-decided-rule", Level.INFO,
        "A NetworkPolicy rule whose every connection the Admin tier decides first.",
        "The Admin tier is evaluated before NetworkPolicies (tier-1): every connection the "
        "rule allows is already accepted or denied by an Admin ClusterNetworkPolicy, so the "
        "rule has no effect while that policy stays. Keeping it is legitimate defense in "
        "depth (the namespace stays correct if the cluster policy is removed); when the Admin "
        "rule denies the traffic, the NetworkPolicy rule promises something it cannot give.",
        ("hygiene",)),
    Check(
        "NF016", "ambiguous-priority", Level.MEDIUM,
        "ClusterNetworkPolicies of equal priority in one tier whose order changes a verdict.",
        "Two Admin (or two Baseline) policies share a priority and select common pods, and "
        "swapping their order changes a verdict for some peer and port: the API leaves their "
        "relative order undefined (tier-8), so implementations may disagree. netfence orders "
        "them by kind and name (D-5). Give them distinct priorities. Pairs whose order "
        "changes nothing are not reported.",
        ("correctness",)),
    Check(
        "NF017", "invalid-suppression", Level.MEDIUM,
        "A netfence.dev/ignore annotation without a reason, or naming an unknown check.",
        "Findings are suppressed per object with the annotations netfence.dev/ignore: ID[,ID] "
        "and netfence.dev/ignore-reason: WHY. A suppression without a non-empty reason is not "
        "applied (the findings stay) and is reported, and so is an unknown check id. Auditors "
        "read the reasons: write why the finding is accepted, and by whom.",
        ("process",)),
    Check(
        "NF018", "unused-suppression", Level.INFO,
        "A suppression of a check that finds nothing on that object.",
        "The object carries netfence.dev/ignore for a check id that reports nothing on it "
        "(the problem was fixed, or the annotation is on the wrong object, e.g. a Deployment "
        "instead of its Namespace). Remove the stale id so that a future regression is not "
        "hidden. Checks disabled with --disable are not judged.",
        ("process",)),
)

BY_ID: dict[str, Check] = {c.id: c for c in CHECKS}


def check(check_id: str) -> Check:
    return BY_ID[check_id]
