{{/* Names and labels shared by every object of the chart. */}}

{{- define "stackd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release-scoped name: the release name alone when it already names the chart. */}}
{{- define "stackd.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "stackd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stackd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "stackd.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "stackd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "stackd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "stackd.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
What the controller may do to Stacks and to the objects it makes of them,
wherever it watches: exactly what it calls, nothing more. Leases are granted
apart, in the release namespace only (templates/rbac.yaml).
*/}}
{{- define "stackd.rules" -}}
- apiGroups: ["stackd.dev"]
  resources: ["stacks"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["stackd.dev"]
  resources: ["stacks/status"]
  verbs: ["get", "patch"]
- apiGroups: ["stackd.dev"]
  resources: ["stacks/finalizers"]
  # Owner references with blockOwnerDeletion need it; the controller
  # itself writes every object with server-side apply (patch), never PUT.
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps", "secrets", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# The translation also makes DaemonSets (`deploy.mode: global`) and, for
# each `depends_on`, a ServiceAccount, Role and RoleBinding that let the
# init containers read pods and jobs. The API server lets the controller
# create a Role only with permissions it holds itself, hence the read-only
# grant on pods (jobs it reads already).
- apiGroups: ["apps"]
  resources: ["daemonsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
{{- end -}}
