{{/*
Building blocks: each renders one NetworkPolicy. See _helpers.tpl for the keys every block
takes (namespace, context, name, podSelector, labels) and README.md for examples.
*/}}

{{/* Default deny: the subject pods get no traffic in either direction unless allowed.
  policyTypes  default [Ingress, Egress] */}}
{{- define "netfence-netpol-lib.denyAll" -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "denyAll" "name" "default-deny-all" "policyTypes" (.policyTypes | default (list "Ingress" "Egress"))) -}}
{{- end -}}

{{/* DNS: egress to the DNS pods on UDP and TCP 53.
  dns  {namespace, podSelector}, default kube-system / k8s-app: kube-dns */}}
{{- define "netfence-netpol-lib.allowDns" -}}
{{- $dns := .dns | default (dict "namespace" "kube-system" "podSelector" (dict "k8s-app" "kube-dns")) -}}
{{- $rule := dict "to" (list (include "netfence-netpol-lib.podsPeer" $dns | fromYaml)) "ports" (list (dict "protocol" "UDP" "port" 53) (dict "protocol" "TCP" "port" 53)) -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "allowDns" "name" "allow-egress-to-dns" "policyTypes" (list "Egress") "egress" (list $rule)) -}}
{{- end -}}

{{/* Same namespace: ingress from and egress to every pod of the namespace (podSelector {}).
  direction  both (default), ingress or egress */}}
{{- define "netfence-netpol-lib.sameNamespace" -}}
{{- $dir := .direction | default "both" -}}
{{- $p := dict "args" . "block" "sameNamespace" "name" "allow-in-namespace" -}}
{{- $types := list -}}
{{- if has $dir (list "both" "ingress") -}}
{{- $types = append $types "Ingress" -}}
{{- $_ := set $p "ingress" (list (dict "from" (list (dict "podSelector" (dict))))) -}}
{{- end -}}
{{- if has $dir (list "both" "egress") -}}
{{- $types = append $types "Egress" -}}
{{- $_ := set $p "egress" (list (dict "to" (list (dict "podSelector" (dict))))) -}}
{{- end -}}
{{- if not $types -}}
{{- fail (printf "netfence-netpol-lib.sameNamespace: direction must be both, ingress or egress, not %q" $dir) -}}
{{- end -}}
{{- $_ := set $p "policyTypes" $types -}}
{{- include "netfence-netpol-lib.networkPolicy" $p -}}
{{- end -}}

{{/* From an area: ingress from every namespace whose area label equals `area` ("*": any area).
  area        required
  areaLabel   default networkArea
  fromPods    optional matchLabels the callers must carry
  ports       optional (all ports when absent) */}}
{{- define "netfence-netpol-lib.fromArea" -}}
{{- $area := required "netfence-netpol-lib.fromArea: `area` is required" .area -}}
{{- $rule := dict "from" (list (include "netfence-netpol-lib.areaPeer" (dict "area" $area "areaLabel" .areaLabel "podSelector" .fromPods) | fromYaml)) -}}
{{- with .ports -}}
{{- $_ := set $rule "ports" (include "netfence-netpol-lib.ports" . | fromYaml).ports -}}
{{- end -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "fromArea" "name" (printf "allow-ingress-from-area-%s" (ternary "any" $area (eq $area "*"))) "policyTypes" (list "Ingress") "ingress" (list $rule)) -}}
{{- end -}}

{{/* To an area: egress to every namespace whose area label equals `area` (caller side).
  area, areaLabel, toPods, ports  as in fromArea */}}
{{- define "netfence-netpol-lib.toArea" -}}
{{- $area := required "netfence-netpol-lib.toArea: `area` is required" .area -}}
{{- $rule := dict "to" (list (include "netfence-netpol-lib.areaPeer" (dict "area" $area "areaLabel" .areaLabel "podSelector" .toPods) | fromYaml)) -}}
{{- with .ports -}}
{{- $_ := set $rule "ports" (include "netfence-netpol-lib.ports" . | fromYaml).ports -}}
{{- end -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "toArea" "name" (printf "allow-egress-to-area-%s" (ternary "any" $area (eq $area "*"))) "policyTypes" (list "Egress") "egress" (list $rule)) -}}
{{- end -}}

{{/* Ingress controller: ingress from one or more ingress controllers' pods
  (namespace AND pod labels), optionally only into the endpoint pods.
  controller     {namespace, podSelector}
  controllers    list of {namespace, podSelector} (with or instead of controller)
  endpointOnly   true: the subject is the endpoint pods (unless podSelector is given)
  endpointLabel  default {endpoint: "true"}
  ports          optional */}}
{{- define "netfence-netpol-lib.ingressController" -}}
{{- $ctls := .controllers | default list -}}
{{- with .controller -}}
{{- $ctls = prepend $ctls . -}}
{{- end -}}
{{- if not $ctls -}}
{{- fail "netfence-netpol-lib.ingressController: give `controller` or `controllers`" -}}
{{- end -}}
{{- $peers := list -}}
{{- range $ctls -}}
{{- $peers = append $peers (include "netfence-netpol-lib.podsPeer" . | fromYaml) -}}
{{- end -}}
{{- $subject := .podSelector -}}
{{- if and (not $subject) .endpointOnly -}}
{{- $subject = .endpointLabel | default (dict "endpoint" "true") -}}
{{- end -}}
{{- $rule := dict "from" $peers -}}
{{- with .ports -}}
{{- $_ := set $rule "ports" (include "netfence-netpol-lib.ports" . | fromYaml).ports -}}
{{- end -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "ingressController" "name" "allow-ingress-from-ingress-controller" "podSelector" $subject "policyTypes" (list "Ingress") "ingress" (list $rule)) -}}
{{- end -}}

{{/* Egress to networks: one rule per network, ipBlocks with the network's ports.
  networks  list of {name, cidrs, ports}; a cidrs item is a CIDR or an ipBlock {cidr, except};
            ports items are {protocol, port, endPort} (all ports when absent) */}}
{{- define "netfence-netpol-lib.toNetworks" -}}
{{- $nets := required "netfence-netpol-lib.toNetworks: `networks` is required" .networks -}}
{{- $rules := list -}}
{{- range $nets -}}
{{- $to := list -}}
{{- range (required "netfence-netpol-lib.toNetworks: every network needs `cidrs`" .cidrs) -}}
{{- if kindIs "map" . -}}
{{- $to = append $to (dict "ipBlock" .) -}}
{{- else -}}
{{- $to = append $to (dict "ipBlock" (dict "cidr" .)) -}}
{{- end -}}
{{- end -}}
{{- $rule := dict "to" $to -}}
{{- with .ports -}}
{{- $_ := set $rule "ports" (include "netfence-netpol-lib.ports" . | fromYaml).ports -}}
{{- end -}}
{{- $rules = append $rules $rule -}}
{{- end -}}
{{- $name := "allow-egress-to-networks" -}}
{{- if eq (len $nets) 1 -}}
{{- with (first $nets).name -}}
{{- $name = printf "allow-egress-to-network-%s" . -}}
{{- end -}}
{{- end -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "toNetworks" "name" $name "policyTypes" (list "Egress") "egress" $rules) -}}
{{- end -}}

{{/* Public internet: 0.0.0.0/0 and ::/0 except the private ranges (10/8, 172.16/12, 192.168/16,
  169.254/16 - so the cloud metadata address 169.254.169.254 too -, fc00::/7, fe80::/10).
  clusterCIDRs  also excluded (pods and services are reached through the cluster rules)
  except        further CIDRs to exclude
  ports         optional (all ports when absent) */}}
{{- define "netfence-netpol-lib.toPublicInternet" -}}
{{- $v4 := list "10.0.0.0/8" "172.16.0.0/12" "192.168.0.0/16" "169.254.0.0/16" -}}
{{- $v6 := list "fc00::/7" "fe80::/10" -}}
{{- range concat (.clusterCIDRs | default list) (.except | default list) -}}
{{- if contains ":" . -}}
{{- $v6 = append $v6 . -}}
{{- else -}}
{{- $v4 = append $v4 . -}}
{{- end -}}
{{- end -}}
{{- $rule := dict "to" (list (dict "ipBlock" (dict "cidr" "0.0.0.0/0" "except" (uniq $v4))) (dict "ipBlock" (dict "cidr" "::/0" "except" (uniq $v6)))) -}}
{{- with .ports -}}
{{- $_ := set $rule "ports" (include "netfence-netpol-lib.ports" . | fromYaml).ports -}}
{{- end -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "toPublicInternet" "name" "allow-egress-to-public-internet" "policyTypes" (list "Egress") "egress" (list $rule)) -}}
{{- end -}}

{{/* Egress to the cluster: to every pod of every namespace (namespaceSelector {}); the
  destination's own ingress policies decide. */}}
{{- define "netfence-netpol-lib.egressCluster" -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "egressCluster" "name" "allow-egress-to-cluster" "policyTypes" (list "Egress") "egress" (list (dict "to" (list (dict "namespaceSelector" (dict)))))) -}}
{{- end -}}

{{/* Kubernetes API server: egress to its addresses on its ports.
  cidrs  required (the API server endpoints)
  ports  default TCP 443 and 6443 */}}
{{- define "netfence-netpol-lib.kubeApi" -}}
{{- $cidrs := required "netfence-netpol-lib.kubeApi: `cidrs` is required" .cidrs -}}
{{- $ports := .ports | default (list 443 6443) -}}
{{- $to := list -}}
{{- range $cidrs -}}
{{- $to = append $to (dict "ipBlock" (dict "cidr" .)) -}}
{{- end -}}
{{- $rule := dict "to" $to "ports" (include "netfence-netpol-lib.ports" $ports | fromYaml).ports -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "kubeApi" "name" "allow-egress-to-kube-api" "policyTypes" (list "Egress") "egress" (list $rule)) -}}
{{- end -}}

{{/* Monitoring: the monitoring pods may scrape the subject pods on one (named) port.
  monitoring  {namespace, podSelector, port, protocol}; default monitoring /
              app.kubernetes.io/name: prometheus / metrics / TCP. No port: all ports. */}}
{{- define "netfence-netpol-lib.monitoring" -}}
{{- $m := .monitoring | default (dict "namespace" "monitoring" "podSelector" (dict "app.kubernetes.io/name" "prometheus") "port" "metrics") -}}
{{- $rule := dict "from" (list (include "netfence-netpol-lib.podsPeer" $m | fromYaml)) -}}
{{- $name := "allow-ingress-from-monitoring" -}}
{{- with $m.port -}}
{{- $proto := $m.protocol | default "TCP" | upper -}}
{{- $_ := set $rule "ports" (list (dict "protocol" $proto "port" .)) -}}
{{- $name = printf "allow-ingress-from-monitoring-%s-port-%v" (lower $proto) . -}}
{{- end -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "monitoring" "name" $name "policyTypes" (list "Ingress") "ingress" (list $rule)) -}}
{{- end -}}

{{/* Endpoint contract (Ebury): a service publishes "pods in area X carrying label L may
  connect", and its clients fulfil it by being deployed in X with L.
  service       the publishing service: its pods are app.kubernetes.io/name=<service>
                (give podSelector to choose them otherwise); also names the policy
  area | areas  the caller area(s); "*" for any namespace carrying the area label
  areaLabel     default networkArea
  clientLabels  required: the label(s) L the callers' pods must carry
  ports         optional (all ports when absent) */}}
{{- define "netfence-netpol-lib.endpointContract" -}}
{{- $areas := .areas | default list -}}
{{- with .area -}}
{{- $areas = prepend $areas . -}}
{{- end -}}
{{- if not $areas -}}
{{- fail "netfence-netpol-lib.endpointContract: give `area` or `areas`" -}}
{{- end -}}
{{- $clients := required "netfence-netpol-lib.endpointContract: `clientLabels` is required" .clientLabels -}}
{{- $peers := list -}}
{{- $areaLabel := .areaLabel -}}
{{- range $areas -}}
{{- $peers = append $peers (include "netfence-netpol-lib.areaPeer" (dict "area" . "areaLabel" $areaLabel "podSelector" $clients) | fromYaml) -}}
{{- end -}}
{{- $subject := .podSelector -}}
{{- if and (not $subject) .service -}}
{{- $subject = dict "app.kubernetes.io/name" .service -}}
{{- end -}}
{{- $rule := dict "from" $peers -}}
{{- $parts := list "allow-ingress-to" (.service | default "endpoints") "from-area" -}}
{{- range $areas -}}
{{- $parts = append $parts (ternary "any" . (eq . "*")) -}}
{{- end -}}
{{- $parts = append $parts "pod" -}}
{{- range $k, $v := $clients -}}
{{- $parts = append $parts (printf "%s-%s" $k $v) -}}
{{- end -}}
{{- with .ports -}}
{{- $ports := (include "netfence-netpol-lib.ports" . | fromYaml).ports -}}
{{- $_ := set $rule "ports" $ports -}}
{{- range $ports -}}
{{- $parts = append $parts (printf "%s-port-%v" (lower .protocol) .port) -}}
{{- end -}}
{{- end -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "endpointContract" "name" (join "-" $parts) "podSelector" $subject "policyTypes" (list "Ingress") "ingress" (list $rule)) -}}
{{- end -}}

{{/* DNS server: every pod of every namespace (namespaceSelector {}) may query the subject pods
  (give podSelector: the DNS pods) on UDP and TCP 53. */}}
{{- define "netfence-netpol-lib.dnsQueries" -}}
{{- $rule := dict "from" (list (dict "namespaceSelector" (dict))) "ports" (list (dict "protocol" "UDP" "port" 53) (dict "protocol" "TCP" "port" 53)) -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "dnsQueries" "name" "allow-dns-queries" "policyTypes" (list "Ingress") "ingress" (list $rule)) -}}
{{- end -}}

{{/* Scraping, caller side: the subject pods (give podSelector: the monitoring pods) may
  connect to every pod of every namespace on one (named) port.
  port      default metrics
  protocol  default TCP */}}
{{- define "netfence-netpol-lib.scrapeEgress" -}}
{{- $rule := dict "to" (list (dict "namespaceSelector" (dict))) "ports" (list (dict "protocol" (.protocol | default "TCP" | upper) "port" (.port | default "metrics"))) -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "scrapeEgress" "name" "allow-scrape-egress" "policyTypes" (list "Egress") "egress" (list $rule)) -}}
{{- end -}}

{{/* From networks: ingress from the addresses of named networks (an ingress controller's
  clients), one rule.
  networks  list of {name, cidrs} (as in toNetworks; a cidr may be {cidr, except})
  ports     optional: names or numbers (TCP) or {protocol, port, endPort}; all ports when absent */}}
{{- define "netfence-netpol-lib.fromNetworks" -}}
{{- $nets := required "netfence-netpol-lib.fromNetworks: `networks` is required" .networks -}}
{{- $from := list -}}
{{- range $nets -}}
{{- range (required "netfence-netpol-lib.fromNetworks: every network needs `cidrs`" .cidrs) -}}
{{- if kindIs "map" . -}}
{{- $from = append $from (dict "ipBlock" .) -}}
{{- else -}}
{{- $from = append $from (dict "ipBlock" (dict "cidr" .)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $rule := dict "from" $from -}}
{{- with .ports -}}
{{- $_ := set $rule "ports" (include "netfence-netpol-lib.ports" . | fromYaml).ports -}}
{{- end -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "fromNetworks" "name" "allow-ingress-from-networks" "policyTypes" (list "Ingress") "ingress" (list $rule)) -}}
{{- end -}}

{{/* Ingress controller forwarding, caller side: the subject pods (give podSelector: the
  controller pods) may connect to the namespaces of one area, and to more namespaces by name
  (an exception's), on any port; only to their endpoint pods with endpointOnly.
  area           required
  areaLabel      default networkArea
  namespaces     optional extra namespaces (by name)
  endpointOnly   true: only the pods carrying endpointLabel (default {endpoint: "true"}) */}}
{{- define "netfence-netpol-lib.controllerForward" -}}
{{- $area := required "netfence-netpol-lib.controllerForward: `area` is required" .area -}}
{{- $pods := dict -}}
{{- if .endpointOnly -}}
{{- $pods = .endpointLabel | default (dict "endpoint" "true") -}}
{{- end -}}
{{- $to := list (include "netfence-netpol-lib.areaPeer" (dict "area" $area "areaLabel" .areaLabel "podSelector" $pods) | fromYaml) -}}
{{- range (.namespaces | default list) -}}
{{- $peer := dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" .)) -}}
{{- with $pods -}}
{{- $_ := set $peer "podSelector" (dict "matchLabels" .) -}}
{{- end -}}
{{- $to = append $to $peer -}}
{{- end -}}
{{- include "netfence-netpol-lib.networkPolicy" (dict "args" . "block" "controllerForward" "name" (printf "allow-forward-to-area-%s" $area) "policyTypes" (list "Egress") "egress" (list (dict "to" $to))) -}}
{{- end -}}
