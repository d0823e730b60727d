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
wherever it watches: exactly what it calls, nothing more (the e2e test
kube_controller.rs runs the controller under each scope and checks every
request it makes against these rules, and every rule against its requests).
It reads through list and watch only, and writes objects with server-side
apply: patch, and create for one that does not exist yet. Leases are granted
apart, in the release namespace only (templates/rbac.yaml).
*/}}
{{- define "stackd.rules" -}}
- apiGroups: ["stackd.dev"]
  resources: ["stacks"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["stackd.dev"]
  resources: ["stacks/status"]
  verbs: ["patch"]
- apiGroups: ["stackd.dev"]
  resources: ["stacks/finalizers"]
  # Owner references with blockOwnerDeletion need it where the
  # OwnerReferencesPermissionEnforcement admission plugin is on; the
  # controller never sends an update itself.
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps", "secrets", "serviceaccounts"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# Claims are listed (for pruning and cleanup) but not watched: a Stack's
# claims change only when the controller applies them.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "create", "patch", "delete"]
# The wait init containers' Role (one per Stack with `depends_on`) lets them
# read pods and jobs, and the API server lets the controller create a Role,
# and bind it, only with permissions it holds itself: hence get on jobs and
# the read-only grant on pods, which the controller never calls.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
