package packaging

import (
	"flag"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "write configs/k8s/base/prometheusrule.yaml from configs/prometheus/rules")

// objects is a kustomization's output, each object decoded strictly
// (unknown fields are errors) into its k8s.io/api type.
type objects struct {
	deployment    *appsv1.Deployment
	configMap     *corev1.ConfigMap
	service       *corev1.Service // the one the ServiceMonitor selects
	peers         *corev1.Service // the headless one (feedback.peers)
	pdb           *policyv1.PodDisruptionBudget
	hpa           *autoscalingv2.HorizontalPodAutoscaler
	pvcs          map[string]*corev1.PersistentVolumeClaim
	monitor       *monitoringv1.ServiceMonitor
	rule          *monitoringv1.PrometheusRule
	namespaceSeen map[string]bool
}

// build runs kustomize's Go API on a kustomization folder.
func build(t *testing.T, dir string) *objects {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	o := &objects{pvcs: map[string]*corev1.PersistentVolumeClaim{}, namespaceSeen: map[string]bool{}}
	for _, r := range resources.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var into any
		switch r.GetKind() {
		case "Deployment":
			o.deployment = &appsv1.Deployment{}
			into = o.deployment
		case "ConfigMap":
			o.configMap = &corev1.ConfigMap{}
			into = o.configMap
		case "Service":
			svc := &corev1.Service{}
			if r.GetName() == "infergate-peers" || strings.HasSuffix(r.GetName(), "-infergate-peers") {
				o.peers = svc
			} else {
				o.service = svc
			}
			into = svc
		case "PodDisruptionBudget":
			o.pdb = &policyv1.PodDisruptionBudget{}
			into = o.pdb
		case "HorizontalPodAutoscaler":
			o.hpa = &autoscalingv2.HorizontalPodAutoscaler{}
			into = o.hpa
		case "PersistentVolumeClaim":
			pvc := &corev1.PersistentVolumeClaim{}
			o.pvcs[r.GetName()] = pvc
			into = pvc
		case "ServiceMonitor":
			o.monitor = &monitoringv1.ServiceMonitor{}
			into = o.monitor
		case "PrometheusRule":
			o.rule = &monitoringv1.PrometheusRule{}
			into = o.rule
		default:
			t.Fatalf("%s: an object of kind %s that no test decodes", dir, r.GetKind())
		}
		if err := yaml.UnmarshalStrict(b, into); err != nil {
			t.Fatalf("%s: %s %s does not decode strictly: %v", dir, r.GetKind(), r.GetName(), err)
		}
		o.namespaceSeen[r.GetNamespace()] = true
	}
	for what, got := range map[string]bool{"Deployment": o.deployment != nil, "ConfigMap": o.configMap != nil, "Service": o.service != nil, "headless Service": o.peers != nil,
		"PodDisruptionBudget": o.pdb != nil, "HorizontalPodAutoscaler": o.hpa != nil, "ServiceMonitor": o.monitor != nil, "PrometheusRule": o.rule != nil} {
		if !got {
			t.Errorf("%s: no %s", dir, what)
		}
	}
	return o
}

// gatewayConfig is the part of infergate's config these checks read.
type gatewayConfig struct {
	HTTP struct {
		Port  int    `json:"port"`
		Drain string `json:"drain_delay"`
	} `json:"http"`
	GRPC struct {
		Port int `json:"port"`
	} `json:"grpc"`
	Exit  string `json:"exit_timeout"`
	Admin struct {
		TrustLoopback *bool `json:"trust_loopback"`
	} `json:"admin"`
	ModelControl string `json:"model_control_mode"`
	Audit        struct {
		File string `json:"file"`
	} `json:"audit"`
	Feedback struct {
		Peers     []string `json:"peers"`
		Advertise string   `json:"advertise"`
	} `json:"feedback"`
}

// TestKubernetesManifests builds the base and the example overlay with
// kustomize, decodes every object strictly into its k8s.io/api type, and
// checks them against each other and against the real server: the
// ConfigMap validates (infergate validate), the server started with the
// Deployment's arguments and the ConfigMap answers every probe's path,
// and the grace period covers preStop, the drain delay and the exit
// timeout (issue 13).
func TestKubernetesManifests(t *testing.T) {
	for _, dir := range []string{"base", "overlays/example"} {
		t.Run(dir, func(t *testing.T) {
			o := build(t, filepath.Join(root(t), "configs", "k8s", dir))
			if t.Failed() {
				return
			}
			checkObjects(t, o)
			if dir == "overlays/example" && !o.namespaceSeen["ml"] {
				t.Error("the overlay's namespace is not applied")
			}
		})
	}
}

func checkObjects(t *testing.T, o *objects) {
	d := o.deployment
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]

	// The gateway config: infergate validate accepts it, and its values
	// agree with the Deployment's.
	cfgText := o.configMap.Data["infergate.yaml"]
	var cfg gatewayConfig
	if err := yaml.Unmarshal([]byte(cfgText), &cfg); err != nil {
		t.Fatalf("the ConfigMap's infergate.yaml: %v", err)
	}
	cfgFile := filepath.Join(t.TempDir(), "infergate.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "validate", "--config", cfgFile, "--model-repository", filepath.Join(root(t), "configs", "example-repository")); err != nil || strings.TrimSpace(out) != "ok" {
		t.Errorf("infergate validate on the ConfigMap: %v\n%s", err, out)
	}
	if cfg.Admin.TrustLoopback == nil || *cfg.Admin.TrustLoopback {
		t.Error("admin.trust_loopback is not false: behind a sidecar every request comes from 127.0.0.1")
	}
	if cfg.ModelControl != "poll" {
		t.Errorf("model_control_mode %q: the replicas share one repository in poll mode", cfg.ModelControl)
	}
	port := containerPort(t, c, "http")
	if port != cfg.HTTP.Port {
		t.Errorf("container port http is %d, the config's http.port %d", port, cfg.HTTP.Port)
	}
	drain, err1 := time.ParseDuration(cfg.HTTP.Drain)
	exit, err2 := time.ParseDuration(cfg.Exit)
	if err1 != nil || err2 != nil || drain <= 0 {
		t.Fatalf("http.drain_delay %q, exit_timeout %q: want durations, the drain positive", cfg.HTTP.Drain, cfg.Exit)
	}
	var preStop time.Duration
	if h := c.Lifecycle; h == nil || h.PreStop == nil || h.PreStop.Sleep == nil {
		t.Error("no preStop sleep: SIGTERM would come before the endpoints drop the pod")
	} else {
		preStop = time.Duration(h.PreStop.Sleep.Seconds) * time.Second
	}
	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	if need := preStop + drain + exit; grace < need+5*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v < preStop %v + drain_delay %v + exit_timeout %v + 5s", grace, preStop, drain, exit)
	}

	// Probes: the paths and ports of the server.
	probes := map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe}
	want := map[string]string{"startup": "/v2/health/live", "readiness": "/v2/health/ready", "liveness": "/v2/health/live"}
	for name, p := range probes {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", name)
			continue
		}
		if p.HTTPGet.Path != want[name] || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe GET %s on port %s, want %s on http", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), want[name])
		}
	}
	if p := c.StartupProbe; p != nil && time.Duration(p.PeriodSeconds*p.FailureThreshold)*time.Second < 5*time.Minute {
		t.Errorf("the startup probe gives model loading %ds, want 5 minutes at least", p.PeriodSeconds*p.FailureThreshold)
	}

	// Security: non-root as the image's user, a read-only root, writable
	// volumes only where infergate writes.
	psc, csc := spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 10001 {
		t.Error("the pod does not run as non-root user 10001 (the image's)")
	}
	if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
		csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
		t.Error("the container's security context lacks a read-only root, no privilege escalation, or dropping every capability")
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	writable := map[string]string{}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Errorf("mount %s: no such volume", m.Name)
			continue
		}
		if v.PersistentVolumeClaim != nil {
			if _, ok := o.pvcs[v.PersistentVolumeClaim.ClaimName]; !ok {
				t.Errorf("volume %s: no PersistentVolumeClaim %s", v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
		if !m.ReadOnly {
			writable[m.MountPath] = m.Name
		}
	}
	if !reflect.DeepEqual(writable, map[string]string{"/models": "models", "/var/lib/infergate": "state", "/var/lib/infergate/audit": "audit"}) {
		t.Errorf("writable mounts %v: want the repository, the state emptyDir and the audit volume only", writable)
	}
	if pvc := o.pvcs["infergate-models"]; pvc == nil || !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
		t.Error("the models volume is not ReadWriteMany: the replicas share it")
	}
	if v := volumes["state"]; v.EmptyDir == nil {
		t.Error("the state volume is not an emptyDir")
	}

	// Service, monitor, PDB and HPA point at the Deployment.
	labels := d.Spec.Template.Labels
	scrapedOnce := false // the ServiceMonitor does not select the headless Service
	if o.pdb.Spec.Selector == nil || d.Spec.Selector == nil {
		t.Fatal("the PodDisruptionBudget or the Deployment has no selector")
	}
	for what, sel := range map[string]map[string]string{"Service": o.service.Spec.Selector, "headless Service": o.peers.Spec.Selector, "PodDisruptionBudget": o.pdb.Spec.Selector.MatchLabels,
		"Deployment": d.Spec.Selector.MatchLabels, "ServiceMonitor": o.monitor.Spec.Selector.MatchLabels} {
		if len(sel) == 0 {
			t.Errorf("%s: no selector", what)
		}
		for k, v := range sel {
			if labels[k] != v && what != "ServiceMonitor" {
				t.Errorf("%s selects %s=%s, which the pods lack", what, k, v)
			}
			if what == "ServiceMonitor" && o.service.Labels[k] != v {
				t.Errorf("the ServiceMonitor selects %s=%s, which the Service lacks", k, v)
			}
			if what == "ServiceMonitor" && o.peers.Labels[k] != v {
				scrapedOnce = true
			}
		}
	}
	if !scrapedOnce {
		t.Error("the ServiceMonitor selects the headless Service too: every pod would be scraped twice")
	}
	// The headless Service is feedback.peers, on the HTTP port, and every
	// pod is its address; advertise is the pod's own.
	if o.peers.Spec.ClusterIP != "None" {
		t.Errorf("the peers Service has clusterIP %q, want None (headless)", o.peers.Spec.ClusterIP)
	}
	if want := o.peers.Name + ":" + itoa(cfg.HTTP.Port); !slices.Equal(cfg.Feedback.Peers, []string{want}) {
		t.Errorf("feedback.peers %v, want [%s] (the headless Service)", cfg.Feedback.Peers, want)
	}
	if cfg.Feedback.Advertise != "${POD_IP}:"+itoa(cfg.HTTP.Port) {
		t.Errorf("feedback.advertise %q, want the pod's IP and HTTP port", cfg.Feedback.Advertise)
	}
	// Every ${VAR} of the config is in the container's environment, and
	// the audit file is a pod's own on the audit volume.
	env := map[string]bool{}
	for _, e := range c.Env {
		env[e.Name] = true
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(cfgText, -1) {
		if !env[m[1]] {
			t.Errorf("the config refers to ${%s}, which the container's env lacks", m[1])
		}
	}
	if !strings.HasPrefix(cfg.Audit.File, "/var/lib/infergate/audit/") || !strings.Contains(cfg.Audit.File, "${POD_NAME}") {
		t.Errorf("audit.file %q: want a file a pod under the audit volume", cfg.Audit.File)
	}
	svcPorts := map[string]bool{}
	wantPorts := map[string]int{"http": cfg.HTTP.Port, "grpc": cfg.GRPC.Port}
	if got := containerPort(t, c, "grpc"); got != cfg.GRPC.Port {
		t.Errorf("container port grpc is %d, the config's grpc.port %d", got, cfg.GRPC.Port)
	}
	for _, p := range o.service.Spec.Ports {
		svcPorts[p.Name] = true
		if want, ok := wantPorts[p.Name]; !ok || p.TargetPort.String() != p.Name || int(p.Port) != want {
			t.Errorf("Service port %s: %d → %s, want %d → %s", p.Name, p.Port, p.TargetPort.String(), want, p.Name)
		}
	}
	if len(svcPorts) != 2 {
		t.Errorf("Service ports %v: want http and grpc", svcPorts)
	}
	for _, e := range o.monitor.Spec.Endpoints {
		if e.Port != "http" || e.Path != "/metrics" {
			t.Errorf("the ServiceMonitor scrapes port %q path %q: want a Service port and /metrics", e.Port, e.Path)
		}
	}
	if ref := o.hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != d.Name {
		t.Errorf("the HPA scales %s %s, not the Deployment %s", ref.Kind, ref.Name, d.Name)
	}
	podMetrics := checkHPAMetrics(t, o.hpa)

	// The real server, with the Deployment's arguments and the ConfigMap
	// (the pod's paths mapped onto temporary folders), answers the probes.
	state := t.TempDir()
	models := filepath.Join(state, "models")
	copyDir(t, filepath.Join(root(t), "configs", "example-repository"), models)
	local := strings.NewReplacer("/var/lib/infergate", state, "model_repository: /models", "model_repository: "+models).Replace(cfgText)
	if err := os.WriteFile(cfgFile, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := slices.Clone(c.Args)
	for i, a := range argv {
		if a == "/etc/infergate/infergate.yaml" {
			argv[i] = cfgFile
		}
	}
	free := freePort(t)
	// No drain delay here: the test's server stops at once.
	s := startBinary(t, free, append(append([]string{"serve"}, argv...), "--http-port", itoa(free), "--drain-delay-secs", "0")...)
	for name, p := range probes {
		if p != nil && p.HTTPGet != nil {
			t.Run(name+" probe", func(t *testing.T) { s.mustGet(t, p.HTTPGet.Path) })
		}
	}
	exposition := s.body(t, "/metrics")
	for _, name := range podMetrics {
		if !strings.Contains(exposition, "\n"+name+"{") {
			t.Errorf("the HPA reads %s, which the server does not export", name)
		}
	}
}

func containerPort(t *testing.T, c corev1.Container, name string) int {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return int(p.ContainerPort)
		}
	}
	t.Fatalf("container %s has no port %s", c.Name, name)
	return 0
}

// checkHPAMetrics: the HPA's custom metrics are ones that the
// prometheus-adapter rules serve; it returns their names.
func checkHPAMetrics(t *testing.T, hpa *autoscalingv2.HorizontalPodAutoscaler) []string {
	t.Helper()
	var adapter corev1.ConfigMap
	readStrict(t, filepath.Join(root(t), "configs", "k8s", "prometheus-adapter", "rules.yaml"), &adapter)
	var rules struct {
		Rules []struct {
			SeriesQuery string `json:"seriesQuery"`
			Resources   struct {
				Overrides map[string]struct {
					Resource string `json:"resource"`
				} `json:"overrides"`
			} `json:"resources"`
			Name struct {
				Matches string `json:"matches"`
				As      string `json:"as"`
			} `json:"name"`
			MetricsQuery string `json:"metricsQuery"`
		} `json:"rules"`
	}
	if err := yaml.UnmarshalStrict([]byte(adapter.Data["config.yaml"]), &rules); err != nil {
		t.Fatalf("the prometheus-adapter rules: %v", err)
	}
	served := map[string]bool{}
	for _, r := range rules.Rules {
		served[r.Name.As] = true
		if !strings.Contains(r.MetricsQuery, "<<.Series>>") || r.Resources.Overrides["pod"].Resource != "pod" {
			t.Errorf("adapter rule %s: want a per-pod rule over <<.Series>>", r.Name.As)
		}
	}
	var names []string
	for _, m := range hpa.Spec.Metrics {
		switch m.Type {
		case autoscalingv2.ResourceMetricSourceType:
			if m.Resource.Name != corev1.ResourceCPU {
				t.Errorf("the HPA scales on resource %s", m.Resource.Name)
			}
		case autoscalingv2.PodsMetricSourceType:
			name := m.Pods.Metric.Name
			names = append(names, name)
			if !served[name] {
				t.Errorf("the HPA reads %s, which no prometheus-adapter rule serves", name)
			}
		}
	}
	if len(names) == 0 {
		t.Error("the HPA has no queue-depth metric")
	}
	return names
}

func readStrict(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s does not decode strictly: %v", path, err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPrometheusRule: the PrometheusRule carries the shipped rules of
// configs/prometheus/rules, group for group (go test -update writes it).
func TestPrometheusRule(t *testing.T) {
	var groups []monitoringv1.RuleGroup
	for _, f := range []string{"recording.yml", "alerts.yml"} {
		var file struct {
			Groups []monitoringv1.RuleGroup `json:"groups"`
		}
		readStrict(t, filepath.Join(root(t), "configs", "prometheus", "rules", f), &file)
		groups = append(groups, file.Groups...)
	}
	path := filepath.Join(root(t), "configs", "k8s", "base", "prometheusrule.yaml")
	if *update {
		rule := monitoringv1.PrometheusRule{Spec: monitoringv1.PrometheusRuleSpec{Groups: groups}}
		rule.APIVersion, rule.Kind, rule.Name = "monitoring.coreos.com/v1", "PrometheusRule", "infergate"
		b, err := yaml.Marshal(rule)
		if err != nil {
			t.Fatal(err)
		}
		header := "# Generated from configs/prometheus/rules (edit those) by: cd test/packaging && go test -run TestPrometheusRule -update\n"
		if err := os.WriteFile(path, append([]byte(header), b...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var rule monitoringv1.PrometheusRule
	readStrict(t, path, &rule)
	if !reflect.DeepEqual(rule.Spec.Groups, groups) {
		t.Errorf("%s differs from configs/prometheus/rules: run go test -run TestPrometheusRule -update in test/packaging", path)
	}
	if len(groups) == 0 {
		t.Error("no rule groups")
	}
}

// TestKServe: the ServingRuntime names the ONNX format and the v2
// protocol, its container decodes strictly into a Kubernetes Container,
// and the real server, started with its arguments, serves readiness on
// its port; the example InferenceService uses it (issue 13).
func TestKServe(t *testing.T) {
	dir := filepath.Join(root(t), "configs", "k8s", "kserve")
	rt := readUnstructured(t, filepath.Join(dir, "servingruntime.yaml"))
	if rt.GetAPIVersion() != "serving.kserve.io/v1alpha1" || rt.GetKind() != "ServingRuntime" {
		t.Fatalf("servingruntime.yaml is %s %s", rt.GetAPIVersion(), rt.GetKind())
	}
	formats, _, _ := unstructured.NestedSlice(rt.Object, "spec", "supportedModelFormats")
	onnx := false
	for _, f := range formats {
		if m, ok := f.(map[string]any); ok && m["name"] == "onnx" {
			onnx = true
		}
	}
	protocols, _, _ := unstructured.NestedStringSlice(rt.Object, "spec", "protocolVersions")
	if !slices.Contains(protocols, "grpc-v2") {
		t.Errorf("the runtime's protocolVersions %v lack grpc-v2", protocols)
	}
	if !onnx || !slices.Contains(protocols, "v2") {
		t.Errorf("supportedModelFormats %v, protocolVersions %v: want onnx and v2", formats, protocols)
	}
	containers, _, _ := unstructured.NestedSlice(rt.Object, "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("%d containers, want 1", len(containers))
	}
	b, err := yaml.Marshal(containers[0])
	if err != nil {
		t.Fatal(err)
	}
	var c corev1.Container
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		t.Fatalf("the runtime's container: %v", err)
	}
	if c.Name != "kserve-container" || len(c.Ports) != 1 {
		t.Fatalf("container %s with ports %v: KServe wants kserve-container with its one HTTP port", c.Name, c.Ports)
	}
	port := itoa(int(c.Ports[0].ContainerPort))
	free, grpcFree := freePort(t), freePort(t)
	argv := []string{"serve"}
	grpcPort := false
	for _, a := range c.Args {
		switch a {
		case "--grpc-port=9000":
			a, grpcPort = "--grpc-port="+itoa(grpcFree), true
		case "--model-repository=/mnt/models":
			a = "--model-repository=" + filepath.Join(root(t), "configs", "example-repository")
		case "--http-port=" + port:
			a = "--http-port=" + itoa(free)
		case "--admin-trust-loopback=false":
		default:
			if strings.HasPrefix(a, "--model-repository") || strings.HasPrefix(a, "--http-port") {
				t.Errorf("argument %s: the repository must be /mnt/models and the port the container's (%s)", a, port)
			}
		}
		argv = append(argv, a)
	}
	if !slices.Contains(c.Args, "--admin-trust-loopback=false") {
		t.Error("the runtime trusts loopback: KServe's queue-proxy makes every request come from 127.0.0.1")
	}
	if !grpcPort {
		t.Error("the runtime does not serve gRPC on 9000 (--grpc-port=9000), where KServe's grpc-v2 predictors expect it")
	}
	s := startBinary(t, free, argv...)
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+itoa(grpcFree), 5*time.Second); err != nil {
		t.Errorf("the gRPC port: %v", err)
	} else {
		conn.Close()
	}
	s.mustGet(t, "/v2/health/ready")
	s.mustGet(t, "/v2/models/mlp/ready")
	if status, _ := s.get(t, "/v2/repository/index"); status == 200 {
		t.Error("the repository API answers a loopback client without a token")
	}

	isvc := readUnstructured(t, filepath.Join(dir, "inferenceservice.yaml"))
	runtime, _, _ := unstructured.NestedString(isvc.Object, "spec", "predictor", "model", "runtime")
	protocol, _, _ := unstructured.NestedString(isvc.Object, "spec", "predictor", "model", "protocolVersion")
	format, _, _ := unstructured.NestedString(isvc.Object, "spec", "predictor", "model", "modelFormat", "name")
	if isvc.GetKind() != "InferenceService" || runtime != rt.GetName() || protocol != "v2" || format != "onnx" {
		t.Errorf("the InferenceService: kind %s, runtime %q, protocol %q, format %q", isvc.GetKind(), runtime, protocol, format)
	}
}

func readUnstructured(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(b, &obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if obj == nil {
		t.Fatalf("%s: empty", path)
	}
	return &unstructured.Unstructured{Object: obj}
}
