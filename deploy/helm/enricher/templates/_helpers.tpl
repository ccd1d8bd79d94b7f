{{/* The name of the release's objects. */}}
{{- define "enricher.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The headless Service that gives each pod a DNS name. */}}
{{- define "enricher.headless" -}}
{{- printf "%s-headless" (include "enricher.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "enricher.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "enricher.labels" -}}
{{ include "enricher.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Seconds of a Go duration given as Ns, Nm or NmNs (the chart's timeouts). */}}
{{- define "enricher.seconds" -}}
{{- $d := . | toString -}}
{{- $m := 0 -}}
{{- $s := 0 -}}
{{- if regexMatch "^[0-9]+s$" $d -}}
{{- $s = trimSuffix "s" $d | int -}}
{{- else if regexMatch "^[0-9]+m$" $d -}}
{{- $m = trimSuffix "m" $d | int -}}
{{- else if regexMatch "^[0-9]+m[0-9]+s$" $d -}}
{{- $parts := splitList "m" (trimSuffix "s" $d) -}}
{{- $m = index $parts 0 | int -}}
{{- $s = index $parts 1 | int -}}
{{- else -}}
{{- fail (printf "a timeout must be written as 90s, 2m or 1m30s, not %q" $d) -}}
{{- end -}}
{{- add (mul $m 60) $s -}}
{{- end -}}
