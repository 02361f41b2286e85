{{/*
Names. Resource names are DNS labels: at most 63 characters, no trailing "-".
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "tally.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every resource name: fullnameOverride, else RELEASE-NAME, or
just RELEASE when the release name already says "tally" (no "tally-tally").
*/}}
{{- define "tally.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "tally.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The labels that select the agent's pods; they never change after install. */}}
{{- define "tally.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tally.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every resource. */}}
{{- define "tally.labels" -}}
{{ include "tally.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* The ServiceAccount the pods run as. */}}
{{- define "tally.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tally.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Where the web config Secret is mounted; --web.config.file names a key in it. */}}
{{- define "tally.webConfigDir" -}}
/etc/tally/web
{{- end -}}

{{/* The HOST of --metrics-server: empty for every interface, an IPv6 address in brackets. */}}
{{- define "tally.metricsHost" -}}
{{- if contains ":" .Values.metricsHost -}}
[{{ .Values.metricsHost }}]
{{- else -}}
{{ .Values.metricsHost }}
{{- end -}}
{{- end -}}

{{/* Where the policies ConfigMap is mounted, and what --policy-dir names. */}}
{{- define "tally.policyDir" -}}
/etc/tally/policies
{{- end -}}

{{/* Where the peer classes ConfigMap is mounted (--metrics-peer-cidrs-file names its key there). */}}
{{- define "tally.peerCidrsDir" -}}
/etc/tally/peers
{{- end -}}

{{/*
The agent's flags, as YAML "flag-name: value" lines: the one list from which
configmap.yaml writes the flags ConfigMap and the DaemonSet derives an
environment variable and a --flag=$(VAR) argument per flag.

Flags whose default means "none" (--otlp-*, --policy-dir, --metrics-pod-labels, --metrics-peer-cidrs-file) appear only when
their value is set.
Numbers go through int: Helm reads values.yaml numbers as float64, which
print as 1e+06 from a million up.
*/}}
{{- define "tally.flags" -}}
builtin-policies: {{ (join "," .Values.config.builtinPolicies) | default "none" | quote }}
{{- if .Values.config.peerCidrs }}
metrics-peer-cidrs-file: {{ printf "%s/peer-cidrs" (include "tally.peerCidrsDir" .) | quote }}
{{- end }}
metrics-label-filter: {{ join "," .Values.config.labelFilter | quote }}
{{- if .Values.config.podLabels }}
metrics-pod-labels: {{ join "," .Values.config.podLabels | quote }}
{{- end }}
metrics-series-limit: {{ .Values.config.seriesLimit | int | quote }}
metrics-rollup-order: {{ join "," .Values.config.rollupOrder | quote }}
metrics-rollup-reserve: {{ .Values.config.rollupReserve | int | quote }}
metrics-series-ttl: {{ .Values.config.seriesTtl | quote }}
log-level: {{ .Values.config.logLevel | quote }}
bpf-stats: {{ if .Values.config.bpfStats }}"on"{{ else }}"off"{{ end }}
{{- if .Values.config.bpfPinDir }}
bpf-pin-dir: {{ .Values.config.bpfPinDir | quote }}
{{- /* At stop: hand over while this DaemonSet exists; gone (an uninstall), clear the pins. */}}
bpf-pin-daemonset: {{ printf "%s/%s" .Release.Namespace (include "tally.fullname" .) | quote }}
{{- end }}
{{- if .Values.otlp.endpoint }}
otlp-endpoint: {{ .Values.otlp.endpoint | quote }}
otlp-protocol: {{ .Values.otlp.protocol | quote }}
otlp-interval: {{ .Values.otlp.interval | quote }}
{{- end }}
{{- if .Values.policies }}
policy-dir: {{ include "tally.policyDir" . | quote }}
{{- end }}
{{- end -}}

{{/* The environment variable that carries a flag: log-level -> TALLY_LOG_LEVEL. */}}
{{- define "tally.flagEnv" -}}
{{- printf "TALLY_%s" (. | upper | replace "-" "_") -}}
{{- end -}}

{{/* The image, tagged with the chart's appVersion unless image.tag says otherwise. */}}
{{- define "tally.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
