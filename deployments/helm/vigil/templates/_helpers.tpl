{{/* vim: set filetype=mustache: */}}

{{- define "vigil.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vigil.fullname" -}}
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

{{- define "vigil.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The roles the chart can run, and the subcommand of each. */}}
{{- define "vigil.roles" -}}
processor: process
sink: sink
{{- end -}}

{{/* Name of a role's objects: (dict "root" $ "role" "processor") */}}
{{- define "vigil.roleName" -}}
{{- printf "%s-%s" (include "vigil.fullname" .root | trunc 52 | trimSuffix "-") .role -}}
{{- end -}}

{{- define "vigil.labels" -}}
helm.sh/chart: {{ include "vigil.chart" . }}
{{ include "vigil.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vigil
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "vigil.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vigil.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* (dict "root" $ "role" "processor") */}}
{{- define "vigil.roleLabels" -}}
{{ include "vigil.labels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "vigil.roleSelectorLabels" -}}
{{ include "vigil.selectorLabels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "vigil.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vigil.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "vigil.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret the chart creates for secret values given inline. */}}
{{- define "vigil.secretName" -}}
{{- include "vigil.fullname" . -}}
{{- end -}}

{{/* The secrets as (env var, values key) pairs. */}}
{{- define "vigil.secretEnv" -}}
VIGIL_TENANT_KEY_SECRET: tenantKeySecret
VIGIL_REDIS_PASSWORD: redisPassword
VIGIL_KAFKA_SASL_PASSWORD: kafkaSaslPassword
VIGIL_SINK_LOCK_SIGNING_KEY: lockSigningKey
{{- end -}}

{{/*
Data of the chart-created Secret: values given inline and not overridden by an
existingSecret. Renders "{}" when there is nothing to create.
*/}}
{{- define "vigil.secretData" -}}
{{- $out := dict -}}
{{- range $env, $name := include "vigil.secretEnv" . | fromYaml -}}
{{- $s := index $.Values.secrets $name -}}
{{- if and $s.value (not $s.existingSecret) -}}
{{- $_ := set $out $s.key ($s.value | b64enc) -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
Data of a chart-created TLS Secret: (dict "tls" .Values.tls.kafka). Renders
"{}" when the TLS material comes from an existing Secret or is not given.
*/}}
{{- define "vigil.tlsSecretData" -}}
{{- $out := dict -}}
{{- if not .tls.existingSecret -}}
{{- with .tls.ca }}{{ $_ := set $out "ca.crt" (b64enc .) }}{{ end -}}
{{- with .tls.cert }}{{ $_ := set $out "tls.crt" (b64enc .) }}{{ end -}}
{{- with .tls.key }}{{ $_ := set $out "tls.key" (b64enc .) }}{{ end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
What a TLS volume holds: (dict "root" $ "which" "kafka" ["suffix" "-topics"]) renders a YAML map
{secretName, items: [{key, path}], files: {ca_file, cert_file, key_file}}, or
"{}" when there is no TLS material to mount.
*/}}
{{- define "vigil.tlsVolume" -}}
{{- $t := index .root.Values.tls .which -}}
{{- $suffix := .suffix | default "" -}}
{{- $dir := printf "/etc/vigil/tls/%s" .which -}}
{{- $items := list -}}
{{- $files := dict -}}
{{- $secret := "" -}}
{{- if $t.existingSecret -}}
{{- $secret = $t.existingSecret -}}
{{- with $t.caKey }}{{ $items = append $items (dict "key" . "path" "ca.crt") }}{{ $_ := set $files "ca_file" (printf "%s/ca.crt" $dir) }}{{ end -}}
{{- with $t.certKey }}{{ $items = append $items (dict "key" . "path" "tls.crt") }}{{ $_ := set $files "cert_file" (printf "%s/tls.crt" $dir) }}{{ end -}}
{{- with $t.keyKey }}{{ $items = append $items (dict "key" . "path" "tls.key") }}{{ $_ := set $files "key_file" (printf "%s/tls.key" $dir) }}{{ end -}}
{{- else -}}
{{- $secret = printf "%s%s-%s-tls" (include "vigil.fullname" .root) $suffix .which -}}
{{- with $t.ca }}{{ $items = append $items (dict "key" "ca.crt" "path" "ca.crt") }}{{ $_ := set $files "ca_file" (printf "%s/ca.crt" $dir) }}{{ end -}}
{{- with $t.cert }}{{ $items = append $items (dict "key" "tls.crt" "path" "tls.crt") }}{{ $_ := set $files "cert_file" (printf "%s/tls.crt" $dir) }}{{ end -}}
{{- with $t.key }}{{ $items = append $items (dict "key" "tls.key" "path" "tls.key") }}{{ $_ := set $files "key_file" (printf "%s/tls.key" $dir) }}{{ end -}}
{{- end -}}
{{- if $items -}}
{{- toYaml (dict "secretName" $secret "items" $items "files" $files "dir" $dir) -}}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{/*
vigil.yaml: .Values.config plus what the chart owns (TLS file paths, http.addr).
*/}}
{{- define "vigil.config" -}}
{{- $c := deepCopy .Values.config -}}
{{- range $which := list "kafka" "redis" -}}
{{- $sec := get $c $which | default dict -}}
{{- $tls := get $sec "tls" | default dict -}}
{{- $vol := include "vigil.tlsVolume" (dict "root" $ "which" $which) | fromYaml -}}
{{- if $vol.files -}}
{{- $tls = merge $tls $vol.files -}}
{{- end -}}
{{- if $tls -}}
{{- $_ := set $sec "tls" $tls -}}
{{- end -}}
{{- $_ := set $c $which $sec -}}
{{- end -}}
{{- $_ := set $c "http" (dict "addr" (printf ":%d" (int .Values.metrics.port))) -}}
{{- toYaml $c -}}
{{- end -}}

{{/*
Checks that need more than the JSON schema. Fails the render with a message
naming the value.
*/}}
{{- define "vigil.validate" -}}
{{- $k := .Values.config.kafka -}}
{{- $mech := dig "sasl" "mechanism" "none" $k -}}
{{- $pw := .Values.secrets.kafkaSaslPassword -}}
{{- if and (ne $mech "none") (not (or $pw.value $pw.existingSecret)) -}}
{{- fail (printf "config.kafka.sasl.mechanism is %s: set secrets.kafkaSaslPassword.existingSecret (recommended) or secrets.kafkaSaslPassword.value" $mech) -}}
{{- end -}}
{{- $r := .Values.config.redis | default dict -}}
{{- $cluster := $r.cluster_addrs | default list -}}
{{- if and $r.addr $cluster -}}
{{- fail "config.redis.addr and config.redis.cluster_addrs are mutually exclusive: for a Redis Cluster set config.redis.addr to \"\"" -}}
{{- end -}}
{{- if not (or $r.addr $cluster) -}}
{{- fail "config.redis.addr (or config.redis.cluster_addrs for a Redis Cluster) must be set: empty would make Vigil start a throw-away local Redis" -}}
{{- end -}}
{{- if and $cluster (ne (int (default 0 $r.db)) 0) -}}
{{- fail "config.redis.db must be 0 with config.redis.cluster_addrs (a Redis Cluster has only database 0)" -}}
{{- end -}}
{{- range $which := list "kafka" "redis" -}}
{{- $t := index $.Values.tls $which -}}
{{- $enabled := dig "tls" "enabled" false (index $.Values.config $which | default dict) -}}
{{- $vol := include "vigil.tlsVolume" (dict "root" $ "which" $which) | fromYaml -}}
{{- if and $vol.items (not $enabled) -}}
{{- fail (printf "tls.%s holds TLS material but config.%s.tls.enabled is false" $which $which) -}}
{{- end -}}
{{- if ne (hasKey ($vol.files | default dict) "cert_file") (hasKey ($vol.files | default dict) "key_file") -}}
{{- fail (printf "tls.%s: a client certificate and its key must be given together (certKey/keyKey or cert/key)" $which) -}}
{{- end -}}
{{- if and $t.existingSecret (or $t.ca $t.cert $t.key) -}}
{{- fail (printf "tls.%s: give either existingSecret or inline ca/cert/key, not both" $which) -}}
{{- end -}}
{{- end -}}
{{- range $env, $name := include "vigil.secretEnv" . | fromYaml -}}
{{- $s := index $.Values.secrets $name -}}
{{- if and $s.value $s.existingSecret -}}
{{- fail (printf "secrets.%s: give either existingSecret or value, not both" $name) -}}
{{- end -}}
{{- end -}}
{{- range $role, $_ := include "vigil.roles" . | fromYaml -}}
{{- $r := index $.Values $role -}}
{{- if and $r.enabled $r.autoscaling.enabled $r.keda.enabled -}}
{{- fail (printf "%s: enable either autoscaling (HPA) or keda, not both (KEDA manages its own HPA)" $role) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Pod spec shared by the role Deployments and the topics Job:
(dict "root" $ "role" "processor" "args" (list …) "r" <role values> "suffix" "")
"suffix" selects the chart-created ConfigMap/Secrets ("" for the regular ones,
"-topics" for the hook copies the pre-install Job can see).
*/}}
{{- define "vigil.podSpec" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $r := .r -}}
{{- $suffix := .suffix | default "" -}}
{{- $full := include "vigil.fullname" $root -}}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .job }}
{{- if not $v.serviceAccount.create }}
serviceAccountName: {{ include "vigil.serviceAccountName" $root }}
{{- end }}
automountServiceAccountToken: false
restartPolicy: Never
{{- else }}
serviceAccountName: {{ include "vigil.serviceAccountName" $root }}
automountServiceAccountToken: {{ $v.serviceAccount.automountServiceAccountToken }}
{{- end }}
{{- with $r.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $r.terminationGracePeriodSeconds }}
terminationGracePeriodSeconds: {{ . }}
{{- end }}
securityContext:
  {{- toYaml $v.podSecurityContext | nindent 2 }}
containers:
  - name: {{ .role }}
    image: {{ include "vigil.image" $root | quote }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    args:
      {{- range .args }}
      - {{ . | quote }}
      {{- end }}
      - "--config"
      - "/etc/vigil/vigil.yaml"
      {{- range $r.extraArgs }}
      - {{ . | quote }}
      {{- end }}
    env:
      - name: POD_NAME
        valueFrom:
          fieldRef:
            fieldPath: metadata.name
      - name: POD_NAMESPACE
        valueFrom:
          fieldRef:
            fieldPath: metadata.namespace
      {{- range $env, $name := include "vigil.secretEnv" $root | fromYaml }}
      {{- $s := index $v.secrets $name }}
      {{- if $s.existingSecret }}
      - name: {{ $env }}
        valueFrom:
          secretKeyRef:
            name: {{ $s.existingSecret }}
            key: {{ $s.key }}
      {{- else if $s.value }}
      - name: {{ $env }}
        valueFrom:
          secretKeyRef:
            name: {{ printf "%s%s" $full $suffix }}
            key: {{ $s.key }}
      {{- end }}
      {{- end }}
      {{- with $v.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
      {{- with $r.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- if not .job }}
    ports:
      - name: metrics
        containerPort: {{ $v.metrics.port }}
        protocol: TCP
    {{- with $r.livenessProbe }}
    livenessProbe:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $r.readinessProbe }}
    readinessProbe:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- end }}
    {{- with $r.resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    securityContext:
      {{- toYaml $v.securityContext | nindent 6 }}
    volumeMounts:
      - name: config
        mountPath: /etc/vigil/vigil.yaml
        subPath: vigil.yaml
        readOnly: true
      - name: tmp
        mountPath: /tmp
      {{- range $which := list "kafka" "redis" }}
      {{- $vol := include "vigil.tlsVolume" (dict "root" $root "which" $which "suffix" $suffix) | fromYaml }}
      {{- if $vol.items }}
      - name: {{ $which }}-tls
        mountPath: {{ $vol.dir }}
        readOnly: true
      {{- end }}
      {{- end }}
volumes:
  - name: config
    configMap:
      name: {{ printf "%s%s" $full $suffix }}
  - name: tmp
    emptyDir:
      sizeLimit: {{ $v.tmpSizeLimit }}
  {{- range $which := list "kafka" "redis" }}
  {{- $vol := include "vigil.tlsVolume" (dict "root" $root "which" $which "suffix" $suffix) | fromYaml }}
  {{- if $vol.items }}
  - name: {{ $which }}-tls
    secret:
      secretName: {{ $vol.secretName }}
      defaultMode: 0440
      items:
        {{- toYaml $vol.items | nindent 8 }}
  {{- end }}
  {{- end }}
{{- with (default $v.nodeSelector $r.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (concat ($v.tolerations | default list) ($r.tolerations | default list)) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default $v.affinity $r.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
