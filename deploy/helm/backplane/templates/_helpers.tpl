{{/* Names, labels and the tables the templates share. */}}

{{- define "backplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "backplane.fullname" -}}
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

{{/* The services, in start-up order (a service's dependencies first). */}}
{{- define "backplane.serviceNames" -}}
["notification", "auth", "subscription", "usage", "asset"]
{{- end -}}

{{/* Every piece: the gateway, then the services. */}}
{{- define "backplane.pieceNames" -}}
["gateway", "notification", "auth", "subscription", "usage", "asset"]
{{- end -}}

{{/*
The Secret's keys and the pieces that receive each. A piece gets only the keys it
uses; the migrations Job gets the database URL alone.
*/}}
{{- define "backplane.secretKeys" -}}
BACKPLANE_SERVICE_TOKEN_SECRET: {required: true, pieces: [gateway, notification, auth, subscription, usage, asset]}
BACKPLANE_DATABASE_URL: {required: true, pieces: [notification, auth, subscription, usage, asset]}
BACKPLANE_REDIS_URL: {required: true, pieces: [gateway, notification, auth, subscription, usage, asset]}
BACKPLANE_KEY_ENCRYPTION_KEY: {required: true, pieces: [auth]}
BACKPLANE_NOTIFY_SIGNING_KEY: {required: false, pieces: [notification]}
BACKPLANE_SENDGRID_API_KEY: {required: false, pieces: [notification]}
BACKPLANE_ASSET_SIGNING_KEY: {required: false, pieces: [asset]}
BACKPLANE_STRIPE_SECRET_KEY: {required: false, pieces: [subscription, usage]}
BACKPLANE_STRIPE_WEBHOOK_SECRET: {required: false, pieces: [subscription]}
{{- end -}}

{{- define "backplane.secretName" -}}
{{- default (include "backplane.fullname" .) .Values.secret.name -}}
{{- end -}}

{{- define "backplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "backplane.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* (list $ piece) → the name of a piece's objects, e.g. backplane-auth. */}}
{{- define "backplane.pieceFullname" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "backplane.fullname" $root | trunc 50 | trimSuffix "-") (index . 1) -}}
{{- end -}}

{{- define "backplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "backplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "backplane.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "backplane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: backplane
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* (list $ piece) */}}
{{- define "backplane.componentSelectorLabels" -}}
{{ include "backplane.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* (list $ piece) */}}
{{- define "backplane.componentLabels" -}}
{{ include "backplane.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "backplane.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* (list $ service) → the gRPC target pieces dial the service by. */}}
{{- define "backplane.serviceTarget" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $p := index $root.Values.pieces $name -}}
{{- if $p.address -}}
{{- $p.address -}}
{{- else -}}
{{- printf "dns:///%s.%s.svc.%s:%d" (include "backplane.pieceFullname" (list $root $name)) $root.Release.Namespace $root.Values.clusterDomain (int $root.Values.ports.grpc) -}}
{{- end -}}
{{- end -}}

{{/*
(list $ piece) → true when the piece opens HTTPS egress: its own switch, or, for asset,
an object-store URL that is reached over HTTPS.
*/}}
{{- define "backplane.httpsEgress" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $p := index $root.Values.pieces $name -}}
{{- if or $p.httpsEgress (and (eq $name "asset") (regexMatch "^(s3|gs|azblob)://" (default "" $root.Values.config.asset.blobURL))) -}}
true
{{- end -}}
{{- end -}}

{{/*
Checks that hold across values, which the schema cannot express. Included by the
ConfigMap, so any render fails on them.
*/}}
{{- define "backplane.validate" -}}
{{- $root := . -}}
{{- $services := include "backplane.serviceNames" . | fromJsonArray -}}
{{- range $name := include "backplane.pieceNames" . | fromJsonArray -}}
{{- $p := index $root.Values.pieces $name -}}
{{- if $p.enabled -}}
{{- range $callee := $p.calls -}}
{{- if not (has $callee $services) -}}
{{- fail (printf "pieces.%s.calls: %q is not a service (want one of %s)" $name $callee (join ", " $services)) -}}
{{- end -}}
{{- $c := index $root.Values.pieces $callee -}}
{{- if and (not $c.enabled) (not $c.address) -}}
{{- fail (printf "pieces.%s calls %s, which is disabled: enable it or give pieces.%s.address" $name $callee $callee) -}}
{{- end -}}
{{- end -}}
{{- if and $p.autoscaling.enabled (lt (int $p.autoscaling.maxReplicas) (int $p.autoscaling.minReplicas)) -}}
{{- fail (printf "pieces.%s.autoscaling: maxReplicas is below minReplicas" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $secretKeys := include "backplane.secretKeys" . | fromYaml -}}
{{- range $k, $_ := .Values.extraConfig -}}
{{- if hasKey $secretKeys $k -}}
{{- fail (printf "extraConfig.%s: this is a secret; put it in the Secret (secret.values or your own Secret), never in the ConfigMap" $k) -}}
{{- end -}}
{{- end -}}
{{- if .Values.secret.create -}}
{{- range $k, $v := $secretKeys -}}
{{- if and $v.required (not (index $root.Values.secret.values $k)) -}}
{{- fail (printf "secret.values.%s is required when secret.create is true" $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.mtls.enabled .Values.mtls.certManager.enabled (not .Values.mtls.certManager.issuerRef.name) -}}
{{- fail "mtls.certManager.issuerRef.name is required when mtls.certManager.enabled is true" -}}
{{- end -}}
{{- if and .Values.gatewayTLS.enabled (not .Values.gatewayTLS.secretName) -}}
{{- fail "gatewayTLS.secretName is required when gatewayTLS.enabled is true" -}}
{{- end -}}
{{- end -}}

{{/* (list $ piece) → the Secret holding the piece's mutual-TLS certificate. */}}
{{- define "backplane.mtlsSecretName" -}}
{{- $root := index . 0 -}}
{{- printf $root.Values.mtls.secretNameTemplate (include "backplane.pieceFullname" .) -}}
{{- end -}}

{{/* (list $ piece) → the pod template shared by the Deployments. */}}
{{- define "backplane.podTemplate" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $p := index $root.Values.pieces $name -}}
{{- $secretKeys := include "backplane.secretKeys" $root | fromYaml -}}
metadata:
  labels:
    {{- include "backplane.componentLabels" (list $root $name) | nindent 4 }}
    {{- with merge (dict) $p.podLabels $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- if $root.Values.secret.create }}
    checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
    {{- end }}
    {{- with merge (dict) $p.podAnnotations $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "backplane.serviceAccountName" $root }}
  # The pieces never talk to the Kubernetes API.
  automountServiceAccountToken: false
  # Service links would put BACKPLANE_*_PORT variables, named after the chart's Services,
  # into the environment the binary reads its settings from.
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with default $root.Values.priorityClassName $p.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- with default $root.Values.nodeSelector $p.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with default $root.Values.tolerations $p.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with default $root.Values.affinity $p.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $p.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml $p.topologySpreadConstraints | nindent 4 }}
  {{- else if $root.Values.topologySpread.enabled }}
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: topology.kubernetes.io/zone
      whenUnsatisfiable: {{ $root.Values.topologySpread.zone }}
      labelSelector:
        matchLabels:
          {{- include "backplane.componentSelectorLabels" (list $root $name) | nindent 10 }}
      # Spread each rollout's new ReplicaSet on its own, not counted with the old one.
      matchLabelKeys: [pod-template-hash]
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: {{ $root.Values.topologySpread.hostname }}
      labelSelector:
        matchLabels:
          {{- include "backplane.componentSelectorLabels" (list $root $name) | nindent 10 }}
      matchLabelKeys: [pod-template-hash]
  {{- end }}
  containers:
    - name: {{ $name }}
      image: {{ include "backplane.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: [serve, {{ $name }}]
      ports:
        {{- if eq $name "gateway" }}
        - {name: http, containerPort: {{ $root.Values.ports.http }}, protocol: TCP}
        {{- end }}
        - {name: grpc, containerPort: {{ $root.Values.ports.grpc }}, protocol: TCP}
        - {name: admin, containerPort: {{ $root.Values.ports.admin }}, protocol: TCP}
      envFrom:
        - configMapRef:
            name: {{ include "backplane.fullname" $root }}-config
      env:
        {{- range $key := keys $secretKeys | sortAlpha }}
        {{- $s := index $secretKeys $key }}
        {{- if has $name $s.pieces }}
        - name: {{ $key }}
          valueFrom:
            secretKeyRef:
              name: {{ include "backplane.secretName" $root }}
              key: {{ $key }}
              {{- if not $s.required }}
              optional: true
              {{- end }}
        {{- end }}
        {{- end }}
        {{- if and $p.resources $p.resources.limits $p.resources.limits.memory }}
        # The Go runtime collects harder as the heap nears the container's limit,
        # instead of being killed at it.
        - name: GOMEMLIMIT
          valueFrom:
            resourceFieldRef:
              resource: limits.memory
        {{- end }}
        {{- if and (eq $name "gateway") $root.Values.gatewayTLS.enabled }}
        - {name: BACKPLANE_TLS_CERT_FILE, value: /etc/backplane/tls/tls.crt}
        - {name: BACKPLANE_TLS_KEY_FILE, value: /etc/backplane/tls/tls.key}
        {{- end }}
        {{- if $root.Values.extraCA.configMap }}
        # Go reads every PEM file here, beside the image's own roots, for PostgreSQL,
        # Redis and HTTPS alike.
        - {name: SSL_CERT_DIR, value: /etc/backplane/ca}
        {{- end }}
        {{- range $k, $v := $p.env }}
        - name: {{ $k }}
          value: {{ $v | toString | quote }}
        {{- end }}
        {{- with $root.Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $p.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      startupProbe:
        httpGet: {path: /healthz, port: admin}
        {{- toYaml $root.Values.probes.startup | nindent 8 }}
      livenessProbe:
        httpGet: {path: /healthz, port: admin}
        {{- toYaml $root.Values.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet: {path: /readyz, port: admin}
        {{- toYaml $root.Values.probes.readiness | nindent 8 }}
      {{- if gt (int $root.Values.lifecycle.preStopSleepSeconds) 0 }}
      lifecycle:
        preStop:
          sleep:
            seconds: {{ $root.Values.lifecycle.preStopSleepSeconds }}
      {{- end }}
      {{- with $p.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      volumeMounts:
        - {name: tmp, mountPath: /tmp}
        {{- if and (eq $name "gateway") $root.Values.gatewayTLS.enabled }}
        - {name: tls, mountPath: /etc/backplane/tls, readOnly: true}
        {{- end }}
        {{- if $root.Values.mtls.enabled }}
        - {name: mtls, mountPath: /etc/backplane/mtls, readOnly: true}
        {{- end }}
        {{- if $root.Values.extraCA.configMap }}
        - {name: extra-ca, mountPath: /etc/backplane/ca, readOnly: true}
        {{- end }}
        {{- if $root.Values.catalog }}
        - {name: catalog, mountPath: /etc/backplane/catalog, readOnly: true}
        {{- end }}
        {{- with $root.Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $root.Values.tmpVolume.sizeLimit }}
        {{- with $root.Values.tmpVolume.medium }}
        medium: {{ . }}
        {{- end }}
    {{- if and (eq $name "gateway") $root.Values.gatewayTLS.enabled }}
    - name: tls
      secret:
        secretName: {{ $root.Values.gatewayTLS.secretName }}
    {{- end }}
    {{- if $root.Values.mtls.enabled }}
    # Mounted whole (no subPath), so the kubelet's update of a rotated Secret reaches
    # the files, which the process reloads on its next connection.
    - name: mtls
      secret:
        secretName: {{ include "backplane.mtlsSecretName" (list $root $name) }}
    {{- end }}
    {{- with $root.Values.extraCA.configMap }}
    - name: extra-ca
      configMap:
        name: {{ . }}
    {{- end }}
    {{- if $root.Values.catalog }}
    - name: catalog
      configMap:
        name: {{ include "backplane.fullname" $root }}-catalog
    {{- end }}
    {{- with $root.Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
