{{/*
netfence-netpol-lib: shared helpers.

Every building block takes ONE dict argument. Keys common to all blocks:
  namespace    namespace of the policy (default: .context.Release.Namespace)
  context      the calling chart's root context `$` (optional: release labels, default namespace)
  name         overrides the block's default policy name
  podSelector  matchLabels of the pods the policy applies to (default: every pod of the namespace)
  podSelectorExpressions  matchExpressions of those pods (ANDed with podSelector)
  labels       extra metadata labels
Namespaces are selected by `kubernetes.io/metadata.name`, as in DoD Platform One bb-common.
*/}}

{{/* A DNS-1123 subdomain (a valid object name) from any string. */}}
{{- define "netfence-netpol-lib.dnsName" -}}
{{- regexReplaceAll "[^a-z0-9.-]+" (. | toString | lower) "-" | trunc 253 | trimAll "-." -}}
{{- end -}}

{{/*
Normalised NetworkPolicy ports from a list whose items are either {protocol, port, endPort}
(protocol defaults to TCP; endPort is dropped when it equals port) or a bare port number or
name (TCP). Returns YAML `ports: [...]`; use it as (include ... | fromYaml).ports.
*/}}
{{- define "netfence-netpol-lib.ports" -}}
{{- $out := list -}}
{{- range . -}}
{{- if kindIs "map" . -}}
{{- $p := dict "protocol" (.protocol | default "TCP" | upper) "port" (required "netfence-netpol-lib: every port needs `port`" .port) -}}
{{- if and .endPort (ne (toString .endPort) (toString .port)) -}}
{{- $_ := set $p "endPort" .endPort -}}
{{- end -}}
{{- $out = append $out $p -}}
{{- else -}}
{{- $out = append $out (dict "protocol" "TCP" "port" .) -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "ports" $out) -}}
{{- end -}}

{{/*
A peer selecting pods of one namespace: {namespace, podSelector} -> namespaceSelector on
kubernetes.io/metadata.name AND podSelector (one peer, so both must hold). YAML; use fromYaml.
*/}}
{{- define "netfence-netpol-lib.podsPeer" -}}
{{- $ns := required "netfence-netpol-lib: a pod reference needs `namespace`" .namespace -}}
{{- $peer := dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" $ns)) "podSelector" (dict) -}}
{{- with .podSelector -}}
{{- $_ := set $peer "podSelector" (dict "matchLabels" .) -}}
{{- end -}}
{{- toYaml $peer -}}
{{- end -}}

{{/*
A namespaceSelector peer for a network area: namespaces whose area label equals the area
("*": any namespace that carries the area label). YAML; use fromYaml.
  (dict "area" "backoffice" "areaLabel" "networkArea" "podSelector" {...optional})
*/}}
{{- define "netfence-netpol-lib.areaPeer" -}}
{{- $label := .areaLabel | default "networkArea" -}}
{{- $area := required "netfence-netpol-lib: `area` is required" .area -}}
{{- $peer := dict "namespaceSelector" (dict "matchLabels" (dict $label $area)) -}}
{{- if eq $area "*" -}}
{{- $peer = dict "namespaceSelector" (dict "matchExpressions" (list (dict "key" $label "operator" "Exists"))) -}}
{{- end -}}
{{- with .podSelector -}}
{{- $_ := set $peer "podSelector" (dict "matchLabels" .) -}}
{{- end -}}
{{- toYaml $peer -}}
{{- end -}}

{{/*
Emits one NetworkPolicy document. Argument:
  args         the block's own argument dict (namespace, context, name, labels, podSelector)
  block        the block's name (annotation netfence.dev/building-block)
  name         default policy name (args.name wins)
  podSelector  subject matchLabels; when absent, args.podSelector
  policyTypes  list
  ingress, egress  rule lists (keys left out when absent)
Every object carries the annotation netfence.dev/generated-from: helm/netfence-netpol-lib.
*/}}
{{- define "netfence-netpol-lib.networkPolicy" -}}
{{- $a := .args -}}
{{- $name := include "netfence-netpol-lib.dnsName" ($a.name | default .name) -}}
{{- $ns := $a.namespace -}}
{{- if and (not $ns) $a.context -}}
{{- $ns = $a.context.Release.Namespace -}}
{{- end -}}
{{- if not $ns -}}
{{- fail (printf "netfence-netpol-lib: policy %q needs `namespace` (or `context`)" $name) -}}
{{- end -}}
{{- $subject := $a.podSelector -}}
{{- if hasKey . "podSelector" -}}
{{- $subject = .podSelector -}}
{{- end -}}
{{- $spec := dict "podSelector" (dict) "policyTypes" .policyTypes -}}
{{- with $subject -}}
{{- $_ := set $spec "podSelector" (dict "matchLabels" .) -}}
{{- end -}}
{{- with $a.podSelectorExpressions -}}
{{- $_ := set $spec.podSelector "matchExpressions" . -}}
{{- end -}}
{{- if hasKey . "ingress" -}}
{{- $_ := set $spec "ingress" .ingress -}}
{{- end -}}
{{- if hasKey . "egress" -}}
{{- $_ := set $spec "egress" .egress -}}
{{- end -}}
{{- $labels := dict -}}
{{- with $a.context -}}
{{- $_ := set $labels "app.kubernetes.io/managed-by" .Release.Service -}}
{{- $_ := set $labels "app.kubernetes.io/instance" .Release.Name -}}
{{- end -}}
{{- with $a.labels -}}
{{- $labels = merge (deepCopy .) $labels -}}
{{- end -}}
{{- $meta := dict "name" $name "namespace" $ns "annotations" (dict "netfence.dev/generated-from" "helm/netfence-netpol-lib" "netfence.dev/building-block" .block) -}}
{{- if $labels -}}
{{- $_ := set $meta "labels" $labels -}}
{{- end }}
---
{{ toYaml (dict "apiVersion" "networking.k8s.io/v1" "kind" "NetworkPolicy" "metadata" $meta "spec" $spec) }}
{{ end -}}
