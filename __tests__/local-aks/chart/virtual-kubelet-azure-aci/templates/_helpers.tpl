{{/* Chart name, overridable like upstream. */}}
{{- define "vk.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<chart name>, cut to 63 characters (a DNS label). */}}
{{- define "vk.fullname" -}}
{{- printf "%s-%s" .Release.Name (include "vk.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The label block upstream puts on every object ("labels:" key included). */}}
{{- define "vk.labels" -}}
labels:
  heritage: {{ .Release.Service | quote }}
  release: {{ .Release.Name | quote }}
  revision: {{ .Release.Revision | quote }}
  chart: {{ .Chart.Name | quote }}
  chartVersion: {{ .Chart.Version | quote }}
  app: {{ include "vk.name" . }}
{{- end -}}

{{- define "vk.serviceAccount" -}}
{{ include "vk.fullname" . }}-{{ .Values.rbac.serviceAccountName }}
{{- end -}}
