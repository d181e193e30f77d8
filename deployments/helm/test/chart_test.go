// Package test renders the Vigil Helm chart with `helm template` for the
// default values and every ci/*-values.yaml, and checks the result without a
// cluster: every manifest is decoded strictly (unknown fields are errors) into
// the Kubernetes API types, custom resources get a required-fields check, and
// the pods, configuration and secrets are checked against what Vigil needs.
//
// helm is taken from $HELM or PATH; without it the tests skip and say so
// (deployments/helm/check.sh installs it).
package test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "../vigil"
	release     = "vigil"
	namespace   = "vigil"
	kubeVersion = "1.30.0"
	configPath  = "/etc/vigil/vigil.yaml"
)

// knownSections are the top-level sections of Vigil's configuration file
// (config.Config in the main module).
var knownSections = []string{"kafka", "redis", "tenant", "processor", "sink", "simulate", "log", "http"}

func helmBin(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	h, err := exec.LookPath("helm")
	if err != nil {
		t.Skip("helm not found: set $HELM or put helm on PATH (deployments/helm/check.sh installs helm v3.22.0 into a cache dir and runs this test)")
	}
	return h
}

// valuesFiles returns "" (the chart's defaults) and every ci/*-values.yaml.
func valuesFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("want at least 4 ci/*-values.yaml variants, found %d", len(files))
	}
	return append([]string{""}, files...)
}

func caseName(file string) string {
	if file == "" {
		return "defaults"
	}
	return strings.TrimSuffix(filepath.Base(file), "-values.yaml")
}

// helmTemplate runs helm template and returns stdout, stderr and the error.
func helmTemplate(t *testing.T, helm string, valueFiles ...string) (string, string, error) {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion}
	for _, f := range valueFiles {
		if f != "" {
			args = append(args, "--values", f)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helm, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// object is one rendered manifest: its kind, name and the decoded value.
type object struct {
	APIVersion, Kind, Name string
	Source                 string // "# Source:" comment
	Obj                    any
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeStrict decodes every manifest of a helm template output into its
// Kubernetes API type, refusing unknown and duplicate fields.
func decodeStrict(t *testing.T, out string) []object {
	t.Helper()
	var objs []object
	for _, doc := range docSep.Split(out, -1) {
		src := ""
		if m := regexp.MustCompile(`(?m)^# Source: (.*)$`).FindStringSubmatch(doc); m != nil {
			src = m[1]
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s: not YAML: %v\n%s", src, err, doc)
		}
		if head.Kind == "" && head.APIVersion == "" {
			if strings.TrimSpace(stripComments(doc)) != "" {
				t.Errorf("%s: document without apiVersion/kind:\n%s", src, doc)
			}
			continue
		}
		var into any
		switch head.APIVersion + "/" + head.Kind {
		case "v1/ConfigMap":
			into = &corev1.ConfigMap{}
		case "v1/Secret":
			into = &corev1.Secret{}
		case "v1/Service":
			into = &corev1.Service{}
		case "v1/ServiceAccount":
			into = &corev1.ServiceAccount{}
		case "apps/v1/Deployment":
			into = &appsv1.Deployment{}
		case "batch/v1/Job":
			into = &batchv1.Job{}
		case "policy/v1/PodDisruptionBudget":
			into = &policyv1.PodDisruptionBudget{}
		case "autoscaling/v2/HorizontalPodAutoscaler":
			into = &autoscalingv2.HorizontalPodAutoscaler{}
		case "networking.k8s.io/v1/NetworkPolicy":
			into = &networkingv1.NetworkPolicy{}
		case "monitoring.coreos.com/v1/ServiceMonitor", "keda.sh/v1alpha1/ScaledObject":
			into = &unstructured.Unstructured{}
		default:
			t.Errorf("%s: unexpected kind %s %s", src, head.APIVersion, head.Kind)
			continue
		}
		if u, ok := into.(*unstructured.Unstructured); ok {
			j, err := yaml.YAMLToJSONStrict([]byte(doc))
			if err != nil {
				t.Errorf("%s: %v", src, err)
				continue
			}
			if err := u.UnmarshalJSON(j); err != nil {
				t.Errorf("%s: %v", src, err)
				continue
			}
		} else if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			t.Errorf("%s: %s %s does not decode strictly into the API type: %v", src, head.Kind, head.Metadata.Name, err)
			continue
		}
		for _, msg := range validation.IsDNS1123Subdomain(head.Metadata.Name) {
			t.Errorf("%s: %s name %q: %s", src, head.Kind, head.Metadata.Name, msg)
		}
		if head.Metadata.Namespace != namespace {
			t.Errorf("%s: %s %s: namespace %q, want %q", src, head.Kind, head.Metadata.Name, head.Metadata.Namespace, namespace)
		}
		objs = append(objs, object{APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, Source: src, Obj: into})
	}
	if len(objs) == 0 {
		t.Fatal("helm template rendered nothing")
	}
	return objs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// valuesOf reads a values file (nil map for the defaults).
func valuesOf(t *testing.T, file string) map[string]any {
	t.Helper()
	m := map[string]any{}
	if file == "" {
		return m
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func dig(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func TestRenderedManifests(t *testing.T) {
	helm := helmBin(t)
	for _, file := range valuesFiles(t) {
		t.Run(caseName(file), func(t *testing.T) {
			out, stderr, err := helmTemplate(t, helm, file)
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, stderr)
			}
			objs := decodeStrict(t, out)
			checkObjects(t, objs, valuesOf(t, file))
		})
	}
}

func checkObjects(t *testing.T, objs []object, values map[string]any) {
	byKind := map[string]map[string]any{}
	for _, o := range objs {
		if byKind[o.Kind] == nil {
			byKind[o.Kind] = map[string]any{}
		}
		if _, dup := byKind[o.Kind][o.Name]; dup {
			t.Errorf("%s %s rendered twice", o.Kind, o.Name)
		}
		byKind[o.Kind][o.Name] = o.Obj
	}
	// Secret names the values file points at (not rendered by the chart).
	external := map[string]bool{}
	for _, s := range secretValues {
		if n, _ := dig(values, "secrets", s, "existingSecret").(string); n != "" {
			external[n] = true
		}
	}
	for _, s := range []string{"kafka", "redis"} {
		if n, _ := dig(values, "tls", s, "existingSecret").(string); n != "" {
			external[n] = true
		}
	}
	secretExists := func(name string) bool { _, ok := byKind["Secret"][name]; return ok || external[name] }
	configMapExists := func(name string) bool { _, ok := byKind["ConfigMap"][name]; return ok }

	// Every ConfigMap is a vigil.yaml; check what is in it.
	if len(byKind["ConfigMap"]) == 0 {
		t.Fatal("no ConfigMap rendered")
	}
	for name, o := range byKind["ConfigMap"] {
		checkConfigMap(t, name, o.(*corev1.ConfigMap), values)
	}

	deployments := byKind["Deployment"]
	roles := map[string]bool{}
	for name, o := range deployments {
		d := o.(*appsv1.Deployment)
		role := d.Labels["app.kubernetes.io/component"]
		roles[role] = true
		sub := map[string]string{"processor": "process", "sink": "sink"}[role]
		if sub == "" {
			t.Errorf("Deployment %s: unexpected component %q", name, role)
			continue
		}
		spec := d.Spec.Template.Spec
		checkPod(t, "Deployment "+name, spec, secretExists, configMapExists)
		c := spec.Containers[0]
		wantArgs := []string{sub, "--instance", "$(POD_NAME)", "--config", configPath}
		if !hasSubsequence(c.Args, wantArgs[:3]) || !hasSubsequence(c.Args, wantArgs[3:]) {
			t.Errorf("Deployment %s: args %q, want %q", name, c.Args, wantArgs)
		}
		if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
			return e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
		}) {
			t.Errorf("Deployment %s: POD_NAME not from the downward API", name)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.LivenessProbe.HTTPGet.Port.String() != "metrics" {
			t.Errorf("Deployment %s: liveness probe %+v, want HTTP GET /healthz on port metrics", name, c.LivenessProbe)
		}
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port.String() != "metrics" {
			t.Errorf("Deployment %s: readiness probe %+v, want HTTP GET /readyz on port metrics", name, c.ReadinessProbe)
		}
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" }) {
			t.Errorf("Deployment %s: no container port named metrics", name)
		}
		if d.Spec.Template.Annotations["checksum/config"] == "" {
			t.Errorf("Deployment %s: no checksum/config annotation (pods would not roll on config change)", name)
		}
		if d.Spec.Selector == nil || !subset(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("Deployment %s: selector does not match the pod labels", name)
		}
		if d.Spec.Replicas != nil && *d.Spec.Replicas < 0 {
			t.Errorf("Deployment %s: negative replicas", name)
		}
	}
	if len(deployments) == 0 {
		t.Error("no Deployment rendered")
	}
	for name, o := range byKind["Job"] {
		j := o.(*batchv1.Job)
		checkPod(t, "Job "+name, j.Spec.Template.Spec, secretExists, configMapExists)
		if !hasSubsequence(j.Spec.Template.Spec.Containers[0].Args, []string{"topics", "create"}) {
			t.Errorf("Job %s: args %q, want vigil topics create", name, j.Spec.Template.Spec.Containers[0].Args)
		}
		if !strings.Contains(j.Annotations["helm.sh/hook"], "pre-install") {
			t.Errorf("Job %s: not a pre-install hook", name)
		}
	}
	if create, _ := dig(values, "topics", "create").(bool); create != (len(byKind["Job"]) == 1) {
		t.Errorf("topics.create=%v but %d Jobs rendered", create, len(byKind["Job"]))
	}

	// Services select pods of a Deployment and expose the metrics port.
	for name, o := range byKind["Service"] {
		s := o.(*corev1.Service)
		if !selectsDeployment(s.Spec.Selector, deployments) {
			t.Errorf("Service %s: selector %v matches no Deployment's pods", name, s.Spec.Selector)
		}
		if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Name != "metrics" || s.Spec.Ports[0].TargetPort.String() != "metrics" {
			t.Errorf("Service %s: ports %+v, want one named metrics", name, s.Spec.Ports)
		}
	}
	for name, o := range byKind["PodDisruptionBudget"] {
		p := o.(*policyv1.PodDisruptionBudget)
		if p.Spec.Selector == nil || !selectsDeployment(p.Spec.Selector.MatchLabels, deployments) {
			t.Errorf("PDB %s: selects no Deployment", name)
		}
		if (p.Spec.MaxUnavailable == nil) == (p.Spec.MinAvailable == nil) {
			t.Errorf("PDB %s: needs exactly one of maxUnavailable/minAvailable", name)
		}
	}
	for name, o := range byKind["HorizontalPodAutoscaler"] {
		h := o.(*autoscalingv2.HorizontalPodAutoscaler)
		d, ok := deployments[h.Spec.ScaleTargetRef.Name].(*appsv1.Deployment)
		if !ok || h.Spec.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("HPA %s: target %+v is not a rendered Deployment", name, h.Spec.ScaleTargetRef)
		} else if d.Spec.Replicas != nil {
			t.Errorf("HPA %s: Deployment %s also sets replicas (they would fight on every upgrade)", name, d.Name)
		}
		if len(h.Spec.Metrics) == 0 || h.Spec.MinReplicas == nil || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			t.Errorf("HPA %s: metrics %d, min %v, max %d", name, len(h.Spec.Metrics), h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
	}
	for name, o := range byKind["NetworkPolicy"] {
		np := o.(*networkingv1.NetworkPolicy)
		if !selectsDeployment(np.Spec.PodSelector.MatchLabels, deployments) {
			t.Errorf("NetworkPolicy %s: selects no Deployment", name)
		}
		for _, r := range np.Spec.Egress {
			for _, p := range r.Ports {
				if p.Port == nil || p.Port.IntValue() < 1 || p.Port.IntValue() > 65535 {
					t.Errorf("NetworkPolicy %s: bad egress port %v", name, p.Port)
				}
			}
		}
	}
	for name, o := range byKind["ServiceMonitor"] {
		u := o.(*unstructured.Unstructured)
		requireFields(t, "ServiceMonitor "+name, u.Object, [][]string{{"spec", "selector", "matchLabels"}})
		eps, _, _ := unstructured.NestedSlice(u.Object, "spec", "endpoints")
		if len(eps) == 0 {
			t.Errorf("ServiceMonitor %s: no endpoints", name)
		}
		for _, ep := range eps {
			m, _ := ep.(map[string]any)
			if m["port"] != "metrics" || m["path"] != "/metrics" {
				t.Errorf("ServiceMonitor %s: endpoint %v, want port metrics path /metrics", name, ep)
			}
		}
		sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
		matched := false
		for _, so := range byKind["Service"] {
			matched = matched || subset(sel, so.(*corev1.Service).Labels)
		}
		if !matched {
			t.Errorf("ServiceMonitor %s: selector %v matches no Service", name, sel)
		}
	}
	for name, o := range byKind["ScaledObject"] {
		u := o.(*unstructured.Unstructured)
		requireFields(t, "ScaledObject "+name, u.Object, [][]string{{"spec", "scaleTargetRef", "name"}, {"spec", "triggers"}})
		target, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "name")
		if d, ok := deployments[target].(*appsv1.Deployment); !ok {
			t.Errorf("ScaledObject %s: target %q is not a rendered Deployment", name, target)
		} else if d.Spec.Replicas != nil {
			t.Errorf("ScaledObject %s: Deployment %s also sets replicas", name, target)
		}
		if _, hpa := byKind["HorizontalPodAutoscaler"][target]; hpa {
			t.Errorf("ScaledObject %s: the chart also renders an HPA for %s", name, target)
		}
		triggers, _, _ := unstructured.NestedSlice(u.Object, "spec", "triggers")
		for _, tr := range triggers {
			m, _ := tr.(map[string]any)
			if m["type"] != "kafka" {
				t.Errorf("ScaledObject %s: trigger type %v, want kafka", name, m["type"])
			}
			md, _ := m["metadata"].(map[string]any)
			for _, k := range []string{"bootstrapServers", "consumerGroup", "topic", "lagThreshold"} {
				if s, ok := md[k].(string); !ok || s == "" {
					t.Errorf("ScaledObject %s: trigger metadata %s must be a non-empty string, got %#v", name, k, md[k])
				}
			}
		}
	}
	// Secrets: never hold the TLS material or passwords anywhere but in Secrets.
	for name, o := range byKind["Secret"] {
		s := o.(*corev1.Secret)
		if len(s.Data) == 0 && len(s.StringData) == 0 {
			t.Errorf("Secret %s is empty", name)
		}
	}
	if !roles["processor"] {
		t.Error("no processor Deployment")
	}
}

func requireFields(t *testing.T, what string, obj map[string]any, paths [][]string) {
	t.Helper()
	for _, p := range paths {
		v, found, err := unstructured.NestedFieldNoCopy(obj, p...)
		if err != nil || !found || v == nil {
			t.Errorf("%s: missing required field %s", what, strings.Join(p, "."))
		}
	}
}

// checkPod asserts the restricted pod security profile and that every
// referenced ConfigMap/Secret is rendered (or named by the values).
func checkPod(t *testing.T, what string, spec corev1.PodSpec, secretExists, configMapExists func(string) bool) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", what)
	}
	if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod runs as uid 0 or unset", what)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile is not RuntimeDefault", what)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", what, len(spec.Containers))
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		if v.ConfigMap != nil && !configMapExists(v.ConfigMap.Name) {
			t.Errorf("%s: volume %s: ConfigMap %s is not rendered", what, v.Name, v.ConfigMap.Name)
		}
		if v.Secret != nil && !secretExists(v.Secret.SecretName) {
			t.Errorf("%s: volume %s: Secret %s is neither rendered nor named in the values", what, v.Name, v.Secret.SecretName)
		}
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		sc := c.SecurityContext
		cw := what + " container " + c.Name
		if sc == nil {
			t.Errorf("%s: no securityContext", cw)
			continue
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: root file system is not read-only", cw)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", cw)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", cw)
		}
		if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot || sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			t.Errorf("%s: may run as root", cw)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities %+v, want drop ALL and add nothing", cw, sc.Capabilities)
		}
		if c.Image == "" || strings.HasSuffix(c.Image, ":") {
			t.Errorf("%s: image %q", cw, c.Image)
		}
		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = m.Name
			if _, ok := volumes[m.Name]; !ok {
				t.Errorf("%s: mount %s: no volume %s", cw, m.MountPath, m.Name)
			}
		}
		if v, ok := volumes[mounts["/tmp"]]; !ok || v.EmptyDir == nil {
			t.Errorf("%s: /tmp is not an emptyDir", cw)
		}
		if v, ok := volumes[mounts[configPath]]; !ok || v.ConfigMap == nil {
			t.Errorf("%s: %s is not mounted from a ConfigMap", cw, configPath)
		}
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "VIGIL_") {
				if e.Value != "" {
					t.Errorf("%s: env %s has an inline value; secrets must come from a Secret", cw, e.Name)
				}
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					t.Errorf("%s: env %s is not from a Secret", cw, e.Name)
				} else if !secretExists(e.ValueFrom.SecretKeyRef.Name) {
					t.Errorf("%s: env %s: Secret %s is neither rendered nor named in the values", cw, e.Name, e.ValueFrom.SecretKeyRef.Name)
				}
			}
		}
	}
}

// checkConfigMap asserts that vigil.yaml has only known sections and no
// secrets.
func checkConfigMap(t *testing.T, name string, cm *corev1.ConfigMap, values map[string]any) {
	t.Helper()
	raw, ok := cm.Data["vigil.yaml"]
	if !ok || len(cm.Data) != 1 {
		t.Errorf("ConfigMap %s: data keys %v, want only vigil.yaml", name, keys(cm.Data))
		return
	}
	var cfg map[string]any
	if err := yaml.UnmarshalStrict([]byte(raw), &cfg); err != nil {
		t.Errorf("ConfigMap %s: vigil.yaml: %v", name, err)
		return
	}
	for k := range cfg {
		if !slices.Contains(knownSections, k) {
			t.Errorf("ConfigMap %s: vigil.yaml has unknown top-level section %q (known: %v)", name, k, knownSections)
		}
	}
	for _, want := range []string{"kafka", "redis", "http"} {
		if _, ok := cfg[want]; !ok {
			t.Errorf("ConfigMap %s: vigil.yaml has no %s section", name, want)
		}
	}
	if b, _ := dig(cfg, "kafka", "brokers").([]any); len(b) == 0 {
		t.Errorf("ConfigMap %s: kafka.brokers is empty (Vigil would start its embedded demo broker)", name)
	}
	a, _ := dig(cfg, "redis", "addr").(string)
	seeds, _ := dig(cfg, "redis", "cluster_addrs").([]any)
	if (a == "") == (len(seeds) == 0) {
		t.Errorf("ConfigMap %s: want exactly one of redis.addr (%q) and redis.cluster_addrs (%v): neither would start a throw-away Redis, both are refused", name, a, seeds)
	}
	if a, _ := dig(cfg, "http", "addr").(string); !regexp.MustCompile(`^:[0-9]+$`).MatchString(a) {
		t.Errorf("ConfigMap %s: http.addr %q, want :<port>", name, a)
	}
	// No secret keys at any depth.
	walk(cfg, "", func(path string, v any) {
		leaf := path[strings.LastIndex(path, ".")+1:]
		if leaf == "password" || leaf == "key_secret" {
			t.Errorf("ConfigMap %s: vigil.yaml holds secret key %s", name, path)
		}
	})
	// No secret value or private key material from the values anywhere.
	if strings.Contains(raw, "BEGIN") {
		t.Errorf("ConfigMap %s: vigil.yaml holds PEM material", name)
	}
	for _, s := range secretValues {
		if v, _ := dig(values, "secrets", s, "value").(string); v != "" && strings.Contains(raw, v) {
			t.Errorf("ConfigMap %s: vigil.yaml contains the value of secrets.%s", name, s)
		}
	}
}

// secretValues are the secrets.* entries of values.yaml.
var secretValues = []string{"tenantKeySecret", "redisPassword", "kafkaSaslPassword", "lockSigningKey"}

func walk(v any, path string, f func(string, any)) {
	switch m := v.(type) {
	case map[string]any:
		for k, x := range m {
			p := k
			if path != "" {
				p = path + "." + k
			}
			f(p, x)
			walk(x, p, f)
		}
	case []any:
		for i, x := range m {
			walk(x, fmt.Sprintf("%s[%d]", path, i), f)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func selectsDeployment(sel map[string]string, deployments map[string]any) bool {
	for _, o := range deployments {
		if subset(sel, o.(*appsv1.Deployment).Spec.Template.Labels) {
			return true
		}
	}
	return false
}

func hasSubsequence(args, want []string) bool {
	for i := 0; i+len(want) <= len(args); i++ {
		if slices.Equal(args[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

// TestBadValues: values the chart must refuse at render time, by the JSON
// schema or by the chart's own checks, each with the message naming the
// problem.
func TestBadValues(t *testing.T) {
	helm := helmBin(t)
	cases := []struct {
		name, values, wantErr string
	}{
		{"negative replicas", "processor: {replicaCount: -1}", "replicaCount"},
		{"sasl mechanism md5", "config: {kafka: {sasl: {mechanism: md5, username: u}}}", "mechanism"},
		{"log level verbose", "config: {log: {level: verbose}}", "level"},
		{"log format xml", "config: {log: {format: xml}}", "format"},
		{"no brokers", "config: {kafka: {brokers: []}}", "brokers"},
		{"broker without port", "config: {kafka: {brokers: [kafka]}}", "brokers"},
		{"no redis", `config: {redis: {addr: ""}}`, "addr"},
		{"redis addr and cluster together", "config: {redis: {cluster_addrs: [r-0:6379]}}", "mutually exclusive"},
		{"redis cluster node without port", `config: {redis: {addr: "", cluster_addrs: [r-0]}}`, "cluster_addrs"},
		{"redis cluster with db", `config: {redis: {addr: "", cluster_addrs: [r-0:6379], db: 1}}`, "db"},
		{"replicas as string", `sink: {replicaCount: "two"}`, "replicaCount"},
		{"typo in config key", "config: {kafka: {borkers: [k:9092]}}", "borkers"},
		{"unknown top-level value", "replicaCount: 3", "replicaCount"},
		{"password inlined in config", "config: {redis: {password: hunter2}}", "password"},
		{"sasl password inlined in config", "config: {kafka: {sasl: {mechanism: plain, username: u, password: p}}}", "password"},
		{"tenant secret inlined in config", "config: {tenant: {key_secret: 0123456789abcdef}}", "key_secret"},
		{"tls file path in config", "config: {kafka: {tls: {enabled: true, ca_file: /ca.pem}}}", "ca_file"},
		{"duration without unit", "config: {redis: {dial_timeout: 5}}", "dial_timeout"},
		{"threshold out of range", "config: {processor: {lock_threshold: 1.5}}", "lock_threshold"},
		{"sasl without username", "config: {kafka: {sasl: {mechanism: scram-sha-256}}}\nsecrets: {kafkaSaslPassword: {value: x}}", "username"},
		{"sasl without password", "config: {kafka: {sasl: {mechanism: scram-sha-256, username: u}}}", "kafkaSaslPassword"},
		{"short tenant key secret", "secrets: {tenantKeySecret: {value: short}}", "tenantKeySecret"},
		{"secret value and existingSecret", "secrets: {redisPassword: {value: x, existingSecret: redis}}", "redisPassword"},
		{"tls material without tls enabled", "tls: {kafka: {ca: PEM}}", "tls.enabled"},
		{"client cert without key", "config: {kafka: {tls: {enabled: true}}}\ntls: {kafka: {cert: PEM}}", "together"},
		{"hpa and keda together", "processor: {autoscaling: {enabled: true}, keda: {enabled: true}}", "keda"},
		{"bad pull policy", "image: {pullPolicy: Sometimes}", "pullPolicy"},
		{"metrics port out of range", "metrics: {port: 70000}", "port"},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(dir, fmt.Sprintf("bad-%02d-values.yaml", i))
			if err := os.WriteFile(f, []byte(c.values+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, err := helmTemplate(t, helm, f)
			if err == nil {
				t.Fatalf("helm template accepted %q", c.values)
			}
			if !strings.Contains(stderr, c.wantErr) {
				t.Errorf("helm template refused %q, but the message does not mention %q:\n%s", c.values, c.wantErr, stderr)
			}
		})
	}
}

// TestConfigAcceptedByVigil loads every rendered vigil.yaml with the real
// binary (`vigil config check`, built from the main module two directories
// up), with the TLS paths pointed at dummy files and the secrets in the
// environment as the pods get them. It catches chart keys the binary does not
// know. Skipped with -short, or when the main module does not build.
func TestConfigAcceptedByVigil(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not building vigil")
	}
	helm := helmBin(t)
	vigil := buildVigil(t)
	for _, file := range valuesFiles(t) {
		t.Run(caseName(file), func(t *testing.T) {
			out, stderr, err := helmTemplate(t, helm, file)
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, stderr)
			}
			var env []string
			var cfg string
			for _, o := range decodeStrict(t, out) {
				switch x := o.Obj.(type) {
				case *corev1.ConfigMap:
					if cfg == "" || !strings.HasSuffix(x.Name, "-topics") {
						cfg = x.Data["vigil.yaml"]
					}
				case *appsv1.Deployment:
					if env == nil {
						for _, e := range x.Spec.Template.Spec.Containers[0].Env {
							if strings.HasPrefix(e.Name, "VIGIL_") {
								// Any value of the right shape: the real one is in the Secret.
								v := "ci-dummy-secret-0123456789"
								if e.Name == "VIGIL_SINK_LOCK_SIGNING_KEY" {
									v = strings.Repeat("ab", 32) // hex, 32 bytes
								}
								env = append(env, e.Name+"="+v)
							}
						}
					}
				}
			}
			dir := t.TempDir()
			tlsDir := filepath.Join(dir, "tls")
			cfg = strings.ReplaceAll(cfg, "/etc/vigil/tls", tlsDir)
			for _, sub := range []string{"kafka", "redis"} {
				_ = os.MkdirAll(filepath.Join(tlsDir, sub), 0o755)
				for _, f := range []string{"ca.crt", "tls.crt", "tls.key"} {
					_ = os.WriteFile(filepath.Join(tlsDir, sub, f), []byte("dummy"), 0o600)
				}
			}
			path := filepath.Join(dir, "vigil.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(vigil, "config", "check", "--config", path)
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "VIGIL_") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, env...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("vigil config check refused the rendered vigil.yaml: %v\n%s\n--- vigil.yaml ---\n%s", err, b, cfg)
			}
		})
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	vigilPath string
	buildErr  error
	buildOut  []byte
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func buildVigil(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		buildDir, err = os.MkdirTemp("", "vigil-chart-test")
		if err != nil {
			buildErr = err
			return
		}
		vigilPath = filepath.Join(buildDir, "vigil")
		cmd := exec.Command(goBin, "build", "-o", vigilPath, "./cmd/vigil")
		cmd.Dir = filepath.Join("..", "..", "..")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Skipf("cannot build vigil from the main module (%v), skipping the config check:\n%s", buildErr, buildOut)
	}
	return vigilPath
}
