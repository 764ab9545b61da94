{{/*
netfence-netpol-lib.namespace: the whole policy set of one namespace of a SegmentationModel,
the same policies (names netfence-*) and meaning as `netfence generate zones` (see netfence's
docs/generate.md).

  {{ include "netfence-netpol-lib.namespace" (dict "spec" .Values "namespace" "payments" "context" $) }}

  spec       values shaped like a SegmentationModel's `spec` (areaLabel, endpointOnly,
             endpointLabel, clusterCIDRs, dns, monitoring, networks, areas, egress, exceptions)
  namespace  a namespace of one of the areas, or of an exception (which moves it to its area)
  context    optional: the chart's root context (release labels)

Per namespace N in area A:
  netfence-default-deny               podSelector {}, Ingress+Egress, no rules
  netfence-allow-same-namespace       ingress from and egress to podSelector {}
  netfence-allow-same-area            ingress from namespaces labelled areaLabel=A
  netfence-allow-from-<area>          one per other area whose mayEnter lists A
  netfence-allow-ingress-controller   from A's controller and the controllers of the areas an
                                      exception of N names
  netfence-allow-monitoring           from the monitoring pods on the named port
  netfence-allow-egress-cluster       egress to every pod; the destination's ingress decides
  netfence-allow-dns                  egress to the DNS pods on UDP/TCP 53
  netfence-allow-egress-networks      ipBlocks of A's networks and egress.allAreas, their ports
  netfence-allow-egress-public        0.0.0.0/0 and ::/0 minus private ranges and clusterCIDRs
endpointOnly (sameArea, ingressController, otherAreas) restricts the subject of the matching
policies to the pods carrying endpointLabel. Protected pods (spec.protected entries
{namespace, podSelector} with one label; Helm cannot look up the labels of an NS/NAME entry)
are left out of the same-namespace, same-area, from-<area>, ingress-controller, egress-cluster,
egress-networks and egress-public policies by a NotIn on that label.
*/}}
{{- define "netfence-netpol-lib.namespace" -}}
{{- $spec := required "netfence-netpol-lib.namespace: `spec` is required" .spec -}}
{{- $ns := required "netfence-netpol-lib.namespace: `namespace` is required" .namespace -}}
{{- $ctx := .context -}}
{{- $areaLabel := $spec.areaLabel | default "networkArea" -}}
{{- $endpointOnly := $spec.endpointOnly | default list -}}
{{- $endpointLabel := $spec.endpointLabel | default (dict "endpoint" "true") -}}
{{- $egress := $spec.egress | default dict -}}
{{- /* the namespace's area: the first exception naming it moves it, else its listed area */ -}}
{{- $areaName := "" -}}
{{- range $spec.areas -}}
{{- if and (not $areaName) (has $ns (.namespaces | default list)) -}}
{{- $areaName = .name -}}
{{- end -}}
{{- end -}}
{{- $exceptions := list -}}
{{- range $spec.exceptions -}}
{{- if eq .namespace $ns -}}
{{- if not $exceptions -}}
{{- $areaName = required (printf "netfence-netpol-lib: exception %q needs `area`" .name) .area -}}
{{- end -}}
{{- $exceptions = append $exceptions . -}}
{{- end -}}
{{- end -}}
{{- if not $areaName -}}
{{- fail (printf "netfence-netpol-lib.namespace: namespace %q is in no area and no exception of the model" $ns) -}}
{{- end -}}
{{- $area := dict -}}
{{- range $spec.areas -}}
{{- if and (not $area) (eq .name $areaName) -}}
{{- $area = . -}}
{{- end -}}
{{- end -}}
{{- if not $area -}}
{{- fail (printf "netfence-netpol-lib.namespace: unknown area %q (namespace %q)" $areaName $ns) -}}
{{- end -}}
{{- $subjSameArea := dict -}}
{{- if has "sameArea" $endpointOnly }}{{ $subjSameArea = $endpointLabel }}{{ end -}}
{{- $subjController := dict -}}
{{- if has "ingressController" $endpointOnly }}{{ $subjController = $endpointLabel }}{{ end -}}
{{- $subjOtherAreas := dict -}}
{{- if has "otherAreas" $endpointOnly }}{{ $subjOtherAreas = $endpointLabel }}{{ end -}}
{{- $base := dict "namespace" $ns "context" $ctx -}}
{{- /* protected pods of this namespace: one NotIn per label key, values sorted */ -}}
{{- $notIn := dict -}}
{{- range $i, $p := ($spec.protected | default list) -}}
{{- if not (kindIs "map" $p) -}}
{{- fail (printf "netfence-netpol-lib.namespace: protected[%d] %q: Helm cannot look up a workload's labels; write {namespace, podSelector} with one label" $i (toString $p)) -}}
{{- end -}}
{{- if ne (len ($p.podSelector | default dict)) 1 -}}
{{- fail (printf "netfence-netpol-lib.namespace: protected[%d] needs a podSelector with exactly one label" $i) -}}
{{- end -}}
{{- if eq $p.namespace $ns -}}
{{- range $k, $v := $p.podSelector -}}
{{- $_ := set $notIn $k (append (get $notIn $k | default list) $v | uniq | sortAlpha) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $exprs := list -}}
{{- range $k, $vs := $notIn -}}
{{- $exprs = append $exprs (dict "key" $k "operator" "NotIn" "values" $vs) -}}
{{- end -}}
{{- $shield := dict -}}
{{- if $exprs -}}
{{- $shield = dict "podSelectorExpressions" $exprs -}}
{{- end -}}

{{- include "netfence-netpol-lib.denyAll" (merge (dict "name" "netfence-default-deny") $base) -}}
{{- include "netfence-netpol-lib.sameNamespace" (merge (dict "name" "netfence-allow-same-namespace") $shield $base) -}}
{{- include "netfence-netpol-lib.fromArea" (merge (dict "name" "netfence-allow-same-area" "area" $areaName "areaLabel" $areaLabel "podSelector" $subjSameArea) $shield $base) -}}

{{- range $spec.areas -}}
{{- if and (ne .name $areaName) (has $areaName (.mayEnter | default list)) -}}
{{- include "netfence-netpol-lib.fromArea" (merge (dict "name" (printf "netfence-allow-from-%s" .name) "area" .name "areaLabel" $areaLabel "podSelector" $subjOtherAreas) $shield $base) -}}
{{- end -}}
{{- end -}}

{{- /* ingress controllers: the area's own, then those of the areas the exceptions name */ -}}
{{- $controllers := list -}}
{{- $seen := list -}}
{{- with $area.ingressController -}}
{{- $controllers = append $controllers . -}}
{{- $seen = append $seen $areaName -}}
{{- end -}}
{{- range $exceptions -}}
{{- range (.allowIngressFromIngressControllerOf | default list) -}}
{{- $other := . -}}
{{- $found := false -}}
{{- range $spec.areas -}}
{{- if eq .name $other -}}
{{- $found = true -}}
{{- if and .ingressController (not (has .name $seen)) -}}
{{- $controllers = append $controllers .ingressController -}}
{{- $seen = append $seen .name -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not $found -}}
{{- fail (printf "netfence-netpol-lib.namespace: exception of %q names unknown area %q" $ns $other) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $controllers -}}
{{- include "netfence-netpol-lib.ingressController" (merge (dict "name" "netfence-allow-ingress-controller" "controllers" $controllers "podSelector" $subjController) $shield $base) -}}
{{- end -}}

{{- with $spec.monitoring -}}
{{- include "netfence-netpol-lib.monitoring" (merge (dict "name" "netfence-allow-monitoring" "monitoring" .) $base) -}}
{{- end -}}

{{- include "netfence-netpol-lib.egressCluster" (merge (dict "name" "netfence-allow-egress-cluster") $shield $base) -}}
{{- include "netfence-netpol-lib.allowDns" (merge (dict "name" "netfence-allow-dns" "dns" $spec.dns) $base) -}}

{{- /* egress networks: the area's, then the all-areas ones it does not already have */ -}}
{{- $netNames := $area.networks | default list -}}
{{- range ($egress.allAreas | default list) -}}
{{- if not (has . $netNames) -}}
{{- $netNames = append $netNames . -}}
{{- end -}}
{{- end -}}
{{- $nets := list -}}
{{- range $netNames -}}
{{- $want := . -}}
{{- $net := dict -}}
{{- range $spec.networks -}}
{{- if and (not $net) (eq .name $want) -}}
{{- $net = . -}}
{{- end -}}
{{- end -}}
{{- if not $net -}}
{{- fail (printf "netfence-netpol-lib.namespace: unknown network %q (area %q or egress.allAreas)" $want $areaName) -}}
{{- end -}}
{{- $nets = append $nets $net -}}
{{- end -}}
{{- if $nets -}}
{{- include "netfence-netpol-lib.toNetworks" (merge (dict "name" "netfence-allow-egress-networks" "networks" $nets) $shield $base) -}}
{{- end -}}

{{- if $egress.publicInternet -}}
{{- include "netfence-netpol-lib.toPublicInternet" (merge (dict "name" "netfence-allow-egress-public" "clusterCIDRs" $spec.clusterCIDRs "ports" $egress.publicPorts) $shield $base) -}}
{{- end -}}
{{- end -}}

{{/*
netfence-netpol-lib.platformNamespace: the policy set of one of a SegmentationModel's
platformNamespaces, the same policies and meaning as `netfence generate zones`.

  {{ include "netfence-netpol-lib.platformNamespace" (dict "spec" .Values "namespace" "kube-system" "context" $) }}

Per platform namespace N:
  netfence-default-deny                  podSelector {}, Ingress+Egress, no rules
  netfence-allow-same-namespace          only with sameNamespace: true
  netfence-allow-monitoring              from the monitoring pods on the named port
  netfence-allow-dns                     egress to the DNS pods on UDP/TCP 53
  netfence-allow-dns-queries             N hosts DNS: every pod into the DNS pods on UDP/TCP 53
  netfence-allow-monitoring-scrape       N hosts monitoring: its pods to every pod on the port
  netfence-allow-clients-<area>          N hosts <area>'s ingress controller with clients: the
                                         clients' networks into it on clientPorts
  netfence-allow-forward-<area>          N hosts <area>'s ingress controller: it to the area's
                                         (endpoint) pods and those of the exceptions naming it
*/}}
{{- define "netfence-netpol-lib.platformNamespace" -}}
{{- $spec := required "netfence-netpol-lib.platformNamespace: `spec` is required" .spec -}}
{{- $ns := required "netfence-netpol-lib.platformNamespace: `namespace` is required" .namespace -}}
{{- $ctx := .context -}}
{{- $entry := dict -}}
{{- range ($spec.platformNamespaces | default list) -}}
{{- $e := . -}}
{{- if not (kindIs "map" $e) -}}
{{- $e = dict "name" $e -}}
{{- end -}}
{{- if eq $e.name $ns -}}
{{- $entry = $e -}}
{{- end -}}
{{- end -}}
{{- if not $entry -}}
{{- fail (printf "netfence-netpol-lib.platformNamespace: namespace %q is not in platformNamespaces" $ns) -}}
{{- end -}}
{{- $areaLabel := $spec.areaLabel | default "networkArea" -}}
{{- $endpointOnly := $spec.endpointOnly | default list -}}
{{- $endpointLabel := $spec.endpointLabel | default (dict "endpoint" "true") -}}
{{- $base := dict "namespace" $ns "context" $ctx -}}

{{- include "netfence-netpol-lib.denyAll" (merge (dict "name" "netfence-default-deny") $base) -}}
{{- if $entry.sameNamespace -}}
{{- include "netfence-netpol-lib.sameNamespace" (merge (dict "name" "netfence-allow-same-namespace") $base) -}}
{{- end -}}
{{- with $spec.monitoring -}}
{{- include "netfence-netpol-lib.monitoring" (merge (dict "name" "netfence-allow-monitoring" "monitoring" .) $base) -}}
{{- end -}}
{{- include "netfence-netpol-lib.allowDns" (merge (dict "name" "netfence-allow-dns" "dns" $spec.dns) $base) -}}
{{- if eq $spec.dns.namespace $ns -}}
{{- include "netfence-netpol-lib.dnsQueries" (merge (dict "name" "netfence-allow-dns-queries" "podSelector" $spec.dns.podSelector) $base) -}}
{{- end -}}
{{- with $spec.monitoring -}}
{{- if eq .namespace $ns -}}
{{- include "netfence-netpol-lib.scrapeEgress" (merge (dict "name" "netfence-allow-monitoring-scrape" "podSelector" .podSelector "port" .port) $base) -}}
{{- end -}}
{{- end -}}
{{- range $spec.areas -}}
{{- $area := . -}}
{{- with .ingressController -}}
{{- if eq .namespace $ns -}}
{{- if .clients -}}
{{- $nets := list -}}
{{- range .clients -}}
{{- $want := . -}}
{{- $net := dict -}}
{{- range $spec.networks -}}
{{- if and (not $net) (eq .name $want) -}}
{{- $net = . -}}
{{- end -}}
{{- end -}}
{{- if not $net -}}
{{- fail (printf "netfence-netpol-lib.platformNamespace: unknown network %q (clients of area %q)" $want $area.name) -}}
{{- end -}}
{{- $nets = append $nets $net -}}
{{- end -}}
{{- include "netfence-netpol-lib.fromNetworks" (merge (dict "name" (printf "netfence-allow-clients-%s" $area.name) "networks" $nets "ports" .clientPorts "podSelector" .podSelector) $base) -}}
{{- end -}}
{{- $extra := list -}}
{{- range ($spec.exceptions | default list) -}}
{{- if has $area.name (.allowIngressFromIngressControllerOf | default list) -}}
{{- $extra = append $extra .namespace -}}
{{- end -}}
{{- end -}}
{{- include "netfence-netpol-lib.controllerForward" (merge (dict "name" (printf "netfence-allow-forward-%s" $area.name) "area" $area.name "areaLabel" $areaLabel "namespaces" ($extra | uniq) "endpointOnly" (has "ingressController" $endpointOnly) "endpointLabel" $endpointLabel "podSelector" .podSelector) $base) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
