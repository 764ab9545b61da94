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
policies to the pods carrying endpointLabel.
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

{{- include "netfence-netpol-lib.denyAll" (merge (dict "name" "netfence-default-deny") $base) -}}
{{- include "netfence-netpol-lib.sameNamespace" (merge (dict "name" "netfence-allow-same-namespace") $base) -}}
{{- include "netfence-netpol-lib.fromArea" (merge (dict "name" "netfence-allow-same-area" "area" $areaName "areaLabel" $areaLabel "podSelector" $subjSameArea) $base) -}}

{{- range $spec.areas -}}
{{- if and (ne .name $areaName) (has $areaName (.mayEnter | default list)) -}}
{{- include "netfence-netpol-lib.fromArea" (merge (dict "name" (printf "netfence-allow-from-%s" .name) "area" .name "areaLabel" $areaLabel "podSelector" $subjOtherAreas) $base) -}}
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
{{- include "netfence-netpol-lib.ingressController" (merge (dict "name" "netfence-allow-ingress-controller" "controllers" $controllers "podSelector" $subjController) $base) -}}
{{- end -}}

{{- with $spec.monitoring -}}
{{- include "netfence-netpol-lib.monitoring" (merge (dict "name" "netfence-allow-monitoring" "monitoring" .) $base) -}}
{{- end -}}

{{- include "netfence-netpol-lib.egressCluster" (merge (dict "name" "netfence-allow-egress-cluster") $base) -}}
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
{{- include "netfence-netpol-lib.toNetworks" (merge (dict "name" "netfence-allow-egress-networks" "networks" $nets) $base) -}}
{{- end -}}

{{- if $egress.publicInternet -}}
{{- include "netfence-netpol-lib.toPublicInternet" (merge (dict "name" "netfence-allow-egress-public" "clusterCIDRs" $spec.clusterCIDRs "ports" $egress.publicPorts) $base) -}}
{{- end -}}
{{- end -}}
