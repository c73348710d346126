package deploy_test

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pieces are the chart's Deployments, as named by their component label.
var pieces = []string{"gateway", "notification", "auth", "subscription", "usage", "asset"}

// The parts of Kubernetes objects these tests read; the schemas check the rest.
type (
	podTemplate struct {
		Metadata struct {
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Spec podSpec `yaml:"spec"`
	}
	podSpec struct {
		AutomountServiceAccountToken *bool               `yaml:"automountServiceAccountToken"`
		EnableServiceLinks           *bool               `yaml:"enableServiceLinks"`
		SecurityContext              securityContext     `yaml:"securityContext"`
		Containers                   []container         `yaml:"containers"`
		Volumes                      []volume            `yaml:"volumes"`
		TopologySpreadConstraints    []map[string]any    `yaml:"topologySpreadConstraints"`
		TerminationGracePeriod       *int                `yaml:"terminationGracePeriodSeconds"`
		NodeSelector                 map[string]string   `yaml:"nodeSelector"`
		Tolerations                  []map[string]any    `yaml:"tolerations"`
		Affinity                     map[string]any      `yaml:"affinity"`
		ImagePullSecrets             []map[string]string `yaml:"imagePullSecrets"`
	}
	securityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		RunAsUser                *int  `yaml:"runAsUser"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Privileged               *bool `yaml:"privileged"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	}
	container struct {
		Name            string           `yaml:"name"`
		Image           string           `yaml:"image"`
		Args            []string         `yaml:"args"`
		Env             []envVar         `yaml:"env"`
		EnvFrom         []map[string]any `yaml:"envFrom"`
		SecurityContext securityContext  `yaml:"securityContext"`
		StartupProbe    *probe           `yaml:"startupProbe"`
		LivenessProbe   *probe           `yaml:"livenessProbe"`
		ReadinessProbe  *probe           `yaml:"readinessProbe"`
		Resources       struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		VolumeMounts []volumeMount `yaml:"volumeMounts"`
	}
	envVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name     string `yaml:"name"`
				Key      string `yaml:"key"`
				Optional bool   `yaml:"optional"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	}
	probe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	}
	volumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	}
	volume struct {
		Name      string         `yaml:"name"`
		EmptyDir  map[string]any `yaml:"emptyDir"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	}
	deployment struct {
		Spec struct {
			Replicas *int          `yaml:"replicas"`
			Selector labelSelector `yaml:"selector"`
			Template podTemplate   `yaml:"template"`
		} `yaml:"spec"`
	}
	job struct {
		Spec struct {
			Template podTemplate `yaml:"template"`
		} `yaml:"spec"`
	}
	labelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	configMap struct {
		Data map[string]string `yaml:"data"`
	}
	secret struct {
		Data map[string]string `yaml:"data"`
	}
)

// workloads returns the pod templates of every Deployment and Job, by component.
func workloads(t testing.TB, objs []object) map[string]podTemplate {
	t.Helper()
	out := map[string]podTemplate{}
	for _, o := range objs {
		switch o.Kind {
		case "Deployment":
			var d deployment
			o.decode(t, &d)
			out[o.component()] = d.Spec.Template
		case "Job":
			var j job
			o.decode(t, &j)
			out[o.component()] = j.Spec.Template
		}
	}
	return out
}

func TestChartLintsStrictly(t *testing.T) {
	t.Parallel()
	for _, vs := range valuesSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"lint", "--strict", chartDir}, helmArgs(vs.file, kubeVersions[0].version)...)
			out := run(t, tool(t, "helm"), args...)
			require.Contains(t, out, "0 chart(s) failed")
		})
	}
}

func TestEveryPieceIsADeploymentWithItsServeCommand(t *testing.T) {
	t.Parallel()
	objs := render(t, "")
	w := workloads(t, objs)
	for _, p := range pieces {
		require.Contains(t, w, p)
		c := w[p].Spec.Containers
		require.Len(t, c, 1, p)
		assert.Equal(t, []string{"serve", p}, c[0].Args, p)
		assert.Equal(t, "ghcr.io/backplane/backplane:0.1.0", c[0].Image, "the image tag defaults to the appVersion")
	}

	// A piece turned off has no Deployment, Service, budget or policy; scaling is per piece.
	objs = render(t, "", "pieces.asset.enabled=false", "pieces.gateway.calls={auth,subscription,usage,notification}", "pieces.usage.replicas=5")
	for _, o := range objs {
		assert.NotEqual(t, "asset", o.component(), "%s %s rendered for a disabled piece", o.Kind, o.Metadata.Name)
	}
	var usage deployment
	find(t, objs, "Deployment", "bp-backplane-usage").decode(t, &usage)
	require.NotNil(t, usage.Spec.Replicas)
	assert.Equal(t, 5, *usage.Spec.Replicas)

	// Autoscaled, the Deployment leaves replicas to the HorizontalPodAutoscaler.
	objs = render(t, "ci/prod-values.yaml")
	var gw deployment
	find(t, objs, "Deployment", "bp-backplane-gateway").decode(t, &gw)
	assert.Nil(t, gw.Spec.Replicas, "an autoscaled Deployment must not fight its HPA over replicas")
	find(t, objs, "HorizontalPodAutoscaler", "bp-backplane-gateway")
	assert.Len(t, only(objs, "HorizontalPodAutoscaler"), 2, "only gateway and auth autoscale in prod-values")

	// The image by digest.
	w = workloads(t, objs)
	assert.Equal(t, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/backplane@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945", w["auth"].Spec.Containers[0].Image)
}

func TestEveryContainerRunsLockedDown(t *testing.T) {
	t.Parallel()
	for _, vs := range valuesSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			w := workloads(t, render(t, vs.file))
			require.Len(t, w, len(pieces)+1, "six pieces and the migrations Job")
			for name, pod := range w {
				spec := pod.Spec
				require.NotNil(t, spec.AutomountServiceAccountToken, name)
				assert.False(t, *spec.AutomountServiceAccountToken, "%s: no Kubernetes API token in the pod", name)
				require.NotNil(t, spec.EnableServiceLinks, name)
				assert.False(t, *spec.EnableServiceLinks, "%s: service links would inject BACKPLANE_*_PORT variables", name)
				assert.Equal(t, "RuntimeDefault", spec.SecurityContext.SeccompProfile.Type, name)
				tmp := false
				for _, v := range spec.Volumes {
					if v.Name == "tmp" && v.EmptyDir != nil {
						tmp = true
					}
				}
				assert.True(t, tmp, "%s: /tmp must be an emptyDir, the only writable path", name)
				for _, c := range spec.Containers {
					sc := c.SecurityContext
					nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot)
					assert.True(t, nonRoot, "%s/%s: runAsNonRoot", name, c.Name)
					if sc.RunAsUser != nil {
						assert.NotZero(t, *sc.RunAsUser, "%s/%s runs as root", name, c.Name)
					}
					if spec.SecurityContext.RunAsUser != nil {
						assert.NotZero(t, *spec.SecurityContext.RunAsUser, "%s runs as root", name)
					}
					assert.True(t, sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem, "%s/%s: readOnlyRootFilesystem", name, c.Name)
					assert.True(t, sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation, "%s/%s: allowPrivilegeEscalation false", name, c.Name)
					assert.False(t, sc.Privileged != nil && *sc.Privileged, "%s/%s: privileged", name, c.Name)
					assert.Equal(t, []string{"ALL"}, sc.Capabilities.Drop, "%s/%s: drop every capability", name, c.Name)
					assert.Empty(t, sc.Capabilities.Add, "%s/%s: add no capability", name, c.Name)
					assert.Equal(t, "RuntimeDefault", sc.SeccompProfile.Type, "%s/%s", name, c.Name)
					assert.NotContains(t, c.Image, ":latest", "%s/%s", name, c.Name)
					mounted := slices.ContainsFunc(c.VolumeMounts, func(m volumeMount) bool {
						return m.Name == "tmp" && m.MountPath == "/tmp"
					})
					assert.True(t, mounted, "%s/%s: /tmp mounted", name, c.Name)
					assert.NotEmpty(t, c.Resources.Requests, "%s/%s: resource requests", name, c.Name)
					assert.NotEmpty(t, c.Resources.Limits["memory"], "%s/%s: a memory limit", name, c.Name)
				}
			}
		})
	}
}

func TestEveryPieceHasProbesABudgetAndSpreads(t *testing.T) {
	t.Parallel()
	for _, vs := range valuesSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			objs := render(t, vs.file)
			w := workloads(t, objs)
			budgets := map[string]bool{}
			for _, o := range only(objs, "PodDisruptionBudget") {
				var pdb struct {
					Spec struct {
						Selector                   labelSelector `yaml:"selector"`
						UnhealthyPodEvictionPolicy string        `yaml:"unhealthyPodEvictionPolicy"`
					} `yaml:"spec"`
				}
				o.decode(t, &pdb)
				budgets[pdb.Spec.Selector.MatchLabels["app.kubernetes.io/component"]] = true
				assert.Equal(t, "AlwaysAllow", pdb.Spec.UnhealthyPodEvictionPolicy, o.Metadata.Name)
			}
			for _, p := range pieces {
				c := w[p].Spec.Containers[0]
				for kind, pr := range map[string]*probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
					require.NotNil(t, pr, "%s has no %s probe", p, kind)
					assert.Equal(t, "admin", pr.HTTPGet.Port, "%s %s probe port", p, kind)
				}
				assert.Equal(t, "/healthz", c.StartupProbe.HTTPGet.Path, p)
				assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path, p)
				assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path, p)
				assert.True(t, budgets[p], "%s has no PodDisruptionBudget", p)
				assert.NotEmpty(t, w[p].Spec.TopologySpreadConstraints, "%s does not spread", p)
				require.NotNil(t, w[p].Spec.TerminationGracePeriod)
			}
		})
	}
}

// TestNoSecretLeavesTheSecret renders a trial whose Secret the chart makes from
// distinctive values, and looks for each of them everywhere but in Secrets.
func TestNoSecretLeavesTheSecret(t *testing.T) {
	t.Parallel()
	trial := chartFileValues(t, "ci/trial-values.yaml")
	secrets := trial["secret"].(map[string]any)["values"].(map[string]any)
	require.NotEmpty(t, secrets)
	text, err := renderText(t, "ci/trial-values.yaml")
	require.NoError(t, err)
	objs := parseObjects(t, text)

	for _, o := range objs {
		if o.Kind == "Secret" {
			continue
		}
		var whole map[string]any
		o.decode(t, &whole)
		flat := fmt.Sprint(whole)
		for key, value := range secrets {
			assert.NotContains(t, flat, value.(string), "the value of %s appears in %s %s", key, o.Kind, o.Metadata.Name)
		}
	}
	var cm configMap
	find(t, objs, "ConfigMap", "bp-backplane-config").decode(t, &cm)
	for key := range secrets {
		assert.NotContains(t, cm.Data, key, "%s in the ConfigMap", key)
	}

	// Each piece receives only the keys it uses, by reference.
	want := map[string][]string{
		"gateway":      {"BACKPLANE_REDIS_URL", "BACKPLANE_SERVICE_TOKEN_SECRET"},
		"auth":         {"BACKPLANE_DATABASE_URL", "BACKPLANE_KEY_ENCRYPTION_KEY", "BACKPLANE_REDIS_URL", "BACKPLANE_SERVICE_TOKEN_SECRET"},
		"notification": {"BACKPLANE_DATABASE_URL", "BACKPLANE_NOTIFY_SIGNING_KEY", "BACKPLANE_REDIS_URL", "BACKPLANE_SENDGRID_API_KEY", "BACKPLANE_SERVICE_TOKEN_SECRET"},
		"subscription": {"BACKPLANE_DATABASE_URL", "BACKPLANE_REDIS_URL", "BACKPLANE_SERVICE_TOKEN_SECRET", "BACKPLANE_STRIPE_SECRET_KEY", "BACKPLANE_STRIPE_WEBHOOK_SECRET"},
		"usage":        {"BACKPLANE_DATABASE_URL", "BACKPLANE_REDIS_URL", "BACKPLANE_SERVICE_TOKEN_SECRET", "BACKPLANE_STRIPE_SECRET_KEY"},
		"asset":        {"BACKPLANE_ASSET_SIGNING_KEY", "BACKPLANE_DATABASE_URL", "BACKPLANE_REDIS_URL", "BACKPLANE_SERVICE_TOKEN_SECRET"},
		"migrate":      {"BACKPLANE_DATABASE_URL"},
	}
	for component, pod := range workloads(t, objs) {
		var got []string
		for _, e := range pod.Spec.Containers[0].Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				got = append(got, e.Name)
				assert.Equal(t, e.Name, e.ValueFrom.SecretKeyRef.Key, "%s: the Secret's keys are the variables' names", component)
			}
		}
		sort.Strings(got)
		assert.Equal(t, want[component], got, "secret keys given to %s", component)
	}

	// The chart-made Secret holds every value; the migration's hook Secret the URL alone.
	var s secret
	find(t, objs, "Secret", "bp-backplane").decode(t, &s)
	assert.ElementsMatch(t, slices.Collect(maps.Keys(secrets)), slices.Collect(maps.Keys(s.Data)))
	var hook secret
	find(t, objs, "Secret", "bp-backplane-migrate").decode(t, &hook)
	assert.Equal(t, []string{"BACKPLANE_DATABASE_URL"}, slices.Collect(maps.Keys(hook.Data)))
}

func TestMigrationsRunBeforeInstallAndUpgrade(t *testing.T) {
	t.Parallel()
	for _, vs := range valuesSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			objs := render(t, vs.file)
			jobs := only(objs, "Job")
			require.Len(t, jobs, 1)
			j := jobs[0]
			assert.Equal(t, "pre-install,pre-upgrade", j.Metadata.Annotations["helm.sh/hook"])
			assert.Contains(t, j.Metadata.Annotations["helm.sh/hook-delete-policy"], "before-hook-creation")
			pod := workloads(t, objs)["migrate"]
			assert.Equal(t, []string{"migrate"}, pod.Spec.Containers[0].Args)

			var cm configMap
			find(t, objs, "ConfigMap", "bp-backplane-config").decode(t, &cm)
			assert.Equal(t, "false", cm.Data["BACKPLANE_MIGRATE_ON_START"], "the pieces must not migrate when the Job does")

			// Anything the hook needs exists before it: hook objects with a lower weight.
			for _, o := range objs {
				if o.Metadata.Annotations["helm.sh/hook"] == "" || o.Kind == "Job" {
					continue
				}
				assert.Equal(t, "pre-install,pre-upgrade", o.Metadata.Annotations["helm.sh/hook"], "%s %s", o.Kind, o.Metadata.Name)
				assert.Less(t, hookWeight(t, o), hookWeight(t, j), "%s %s must exist before the Job", o.Kind, o.Metadata.Name)
			}
		})
	}

	// Without the Job, each service migrates its own schema at start.
	objs := render(t, "", "migrations.enabled=false")
	assert.Empty(t, only(objs, "Job"))
	var cm configMap
	find(t, objs, "ConfigMap", "bp-backplane-config").decode(t, &cm)
	assert.NotContains(t, cm.Data, "BACKPLANE_MIGRATE_ON_START")
}

func TestConfigReachesThePieces(t *testing.T) {
	t.Parallel()
	objs := render(t, "ci/prod-values.yaml")
	var cm configMap
	find(t, objs, "ConfigMap", "bp-backplane-config").decode(t, &cm)
	for key, want := range map[string]string{
		"BACKPLANE_PUBLIC_URL":                "https://app.example.com",
		"BACKPLANE_AUTH_ADDR":                 "dns:///bp-backplane-auth.apps.svc.cluster.local:9090",
		"BACKPLANE_NOTIFICATION_ADDR":         "dns:///bp-backplane-notification.apps.svc.cluster.local:9090",
		"BACKPLANE_GRPC_ADDR":                 ":9090",
		"BACKPLANE_ADMIN_ADDR":                ":8081",
		"BACKPLANE_DATA_DIR":                  "/tmp/backplane",
		"BACKPLANE_TRUSTED_PROXIES":           "10.0.0.0/16,173.245.48.0/20,103.21.244.0/22",
		"BACKPLANE_CLIENT_IP_HEADER":          "CF-Connecting-IP",
		"BACKPLANE_CORS_ALLOW_CREDENTIALS":    "true",
		"BACKPLANE_MAX_BODY_BYTES":            "2097152",
		"BACKPLANE_RATE_LIMIT_ANONYMOUS":      "120/m,burst=30",
		"BACKPLANE_PASSWORD_HASH_CONCURRENCY": "2",
		"BACKPLANE_SIGNUP_MODE":               "verify",
		"BACKPLANE_NOTIFY_WORKERS":            "8",
		"BACKPLANE_BLOB_URL":                  "s3://example-backplane-assets?region=eu-west-1",
		"OTEL_EXPORTER_OTLP_ENDPOINT":         "http://otel-collector.observability.svc:4317",
		"OTEL_RESOURCE_ATTRIBUTES":            "deployment.environment=production",
	} {
		assert.Equal(t, want, cm.Data[key], key)
	}
	// Unset typed keys leave the binary's defaults alone.
	assert.NotContains(t, cm.Data, "BACKPLANE_REFRESH_TOKEN_TTL")

	w := workloads(t, objs)
	env := func(piece string) map[string]envVar {
		out := map[string]envVar{}
		for _, e := range w[piece].Spec.Containers[0].Env {
			out[e.Name] = e
		}
		return out
	}
	assert.Equal(t, "debug", env("usage")["BACKPLANE_LOG_LEVEL"].Value, "a piece's env overrides the ConfigMap")
	assert.Equal(t, "backplane-notify", env("notification")["BACKPLANE_NOTIFY_SIGNING_KEY"].ValueFrom.SecretKeyRef.Name, "extraEnv reaches the piece")
	assert.Contains(t, env("gateway"), "GOMEMLIMIT")
	// The extra certificate authorities reach every piece and the migrations Job.
	for name, pod := range w {
		c := pod.Spec.Containers[0]
		assert.True(t, slices.ContainsFunc(c.Env, func(e envVar) bool { return e.Name == "SSL_CERT_DIR" && e.Value == "/etc/backplane/ca" }), name)
		assert.True(t, slices.ContainsFunc(c.VolumeMounts, func(m volumeMount) bool {
			return m.MountPath == "/etc/backplane/ca"
		}), name)
	}
	for _, p := range pieces {
		require.Len(t, w[p].Spec.Containers[0].EnvFrom, 1, p)
		assert.NotEmpty(t, w[p].Metadata.Annotations["checksum/config"], "%s restarts when its configuration changes", p)
	}
}

// TestEveryVariableIsReachable finds every BACKPLANE_* variable the binary reads (in the
// Go source) and checks that the chart can set it from a typed value: a setting added
// to the binary fails here until the chart knows it.
func TestEveryVariableIsReachable(t *testing.T) {
	t.Parallel()
	read := readVariables(t)
	require.Contains(t, read, "BACKPLANE_PUBLIC_URL", "the scan of the Go source found nothing")

	objs := render(t, mustAbs("testdata/every-setting-values.yaml"))
	reachable := map[string]bool{}
	var cm configMap
	find(t, objs, "ConfigMap", "bp-backplane-config").decode(t, &cm)
	for k := range cm.Data {
		reachable[k] = true
	}
	for _, pod := range workloads(t, objs) {
		for _, e := range pod.Spec.Containers[0].Env {
			reachable[e.Name] = true
		}
	}
	var missing []string
	for _, v := range read {
		if !reachable[v] {
			missing = append(missing, v)
		}
	}
	assert.Empty(t, missing, "variables the binary reads that no typed chart value sets: add them to values.yaml (config or secret), "+
		"values.schema.json and templates/configmap.yaml or the secretKeys table in templates/_helpers.tpl")
}

func TestValuesSchemaAndChecksRefuseMistakes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		set  []string
		want string
	}{
		{"misspelt piece", []string{"pieces.gatway.replicas=3"}, "gatway"},
		{"misspelt setting", []string{"config.publicUrl=https://x.example.com"}, "publicUrl"},
		{"unknown top-level key", []string{"replicaCount=3"}, "replicaCount"},
		{"bad log level", []string{"config.logLevel=verbose"}, "logLevel"},
		{"bad duration", []string{"config.shutdownTimeout=twenty"}, "shutdownTimeout"},
		{"bad rate limit", []string{"config.edge.rateLimitAnonymous=lots"}, "rateLimitAnonymous"},
		{"public URL without a scheme", []string{"config.publicURL=app.example.com"}, "publicURL"},
		{"misspelt secret key", []string{"secret.values.BACKPLANE_DATABASE_URI=x"}, "BACKPLANE_DATABASE_URI"},
		{"a secret in the ConfigMap", []string{"extraConfig.BACKPLANE_DATABASE_URL=postgres://u:p@h/db"}, "put it in the Secret"},
		{"extraConfig outside our names", []string{"extraConfig.PATH=/bin"}, "PATH"},
		{"calling an unknown service", []string{"pieces.usage.calls={billing}"}, "/pieces/usage/calls/0"},
		{"calling a disabled service", []string{"pieces.subscription.enabled=false"}, "calls subscription, which is disabled"},
		{"a made Secret without its required keys", []string{"secret.create=true"}, "secret.values.BACKPLANE_"},
		{"autoscaling bounds upside down", []string{"pieces.auth.autoscaling.enabled=true", "pieces.auth.autoscaling.minReplicas=5", "pieces.auth.autoscaling.maxReplicas=2"}, "maxReplicas is below minReplicas"},
		{"gateway TLS without its Secret", []string{"gatewayTLS.enabled=true"}, "gatewayTLS.secretName"},
		{"cert-manager without an issuer", []string{"mtls.enabled=true", "mtls.certManager.enabled=true"}, "mtls.certManager.issuerRef.name"},
		{"an issuer of an unknown kind", []string{"mtls.certManager.issuerRef.kind=Vault"}, "kind"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out, err := renderText(t, "", c.set...)
			require.Error(t, err, "helm template accepted %v", c.set)
			assert.Contains(t, out, c.want)
		})
	}
}

func TestIngressSplitsRESTAndGRPC(t *testing.T) {
	t.Parallel()
	type ingress struct {
		Spec struct {
			TLS []struct {
				SecretName string   `yaml:"secretName"`
				Hosts      []string `yaml:"hosts"`
			} `yaml:"tls"`
			Rules []struct {
				Host string `yaml:"host"`
				HTTP struct {
					Paths []struct {
						Path    string `yaml:"path"`
						Backend struct {
							Service struct {
								Name string `yaml:"name"`
								Port struct {
									Name string `yaml:"name"`
								} `yaml:"port"`
							} `yaml:"service"`
						} `yaml:"backend"`
					} `yaml:"paths"`
				} `yaml:"http"`
			} `yaml:"rules"`
		} `yaml:"spec"`
	}
	backends := func(in ingress) map[string]string {
		out := map[string]string{}
		for _, r := range in.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				out[r.Host+p.Path] = p.Backend.Service.Name + ":" + p.Backend.Service.Port.Name
			}
		}
		return out
	}

	// Shared hosts (trial): gRPC claims exactly the gRPC services' paths.
	objs := render(t, "ci/trial-values.yaml")
	var rest, grpc ingress
	restObj := find(t, objs, "Ingress", "bp-backplane-rest")
	grpcObj := find(t, objs, "Ingress", "bp-backplane-grpc")
	restObj.decode(t, &rest)
	grpcObj.decode(t, &grpc)
	assert.Equal(t, map[string]string{"trial.example.com/": "bp-backplane-gateway:http"}, backends(rest))
	assert.Equal(t, "GRPC", grpcObj.Metadata.Annotations["nginx.ingress.kubernetes.io/backend-protocol"])
	assert.Equal(t, "HTTP", restObj.Metadata.Annotations["nginx.ingress.kubernetes.io/backend-protocol"])
	g := backends(grpc)
	for _, svc := range edgeServiceNames(t) {
		assert.Equal(t, "bp-backplane-gateway:grpc", g["trial.example.com/"+svc], "gRPC service %s is not routed to the gRPC door", svc)
	}
	assert.NotContains(t, g, "trial.example.com/", "the gRPC Ingress must not take REST's paths")

	// Separate hosts (prod): gRPC takes its host whole; one certificate covers both.
	objs = render(t, "ci/prod-values.yaml")
	restObj = find(t, objs, "Ingress", "bp-backplane-rest")
	grpcObj = find(t, objs, "Ingress", "bp-backplane-grpc")
	restObj.decode(t, &rest)
	grpcObj.decode(t, &grpc)
	assert.Equal(t, map[string]string{"grpc.example.com/": "bp-backplane-gateway:grpc"}, backends(grpc))
	assert.Equal(t, "letsencrypt-prod", restObj.Metadata.Annotations["cert-manager.io/cluster-issuer"])
	assert.NotContains(t, grpcObj.Metadata.Annotations, "cert-manager.io/cluster-issuer", "two certificate requests would fight over one Secret")
	require.Len(t, rest.Spec.TLS, 1)
	assert.ElementsMatch(t, []string{"api.example.com", "grpc.example.com"}, rest.Spec.TLS[0].Hosts)
	assert.Equal(t, rest.Spec.TLS[0].SecretName, grpc.Spec.TLS[0].SecretName)

	// The gateway is the only way in: no other Service is exposed or carries REST or gRPC
	// front-door ports, and the service Services are headless.
	for _, o := range only(objs, "Service") {
		var svc struct {
			Spec struct {
				Type                     string `yaml:"type"`
				ClusterIP                string `yaml:"clusterIP"`
				PublishNotReadyAddresses bool   `yaml:"publishNotReadyAddresses"`
			} `yaml:"spec"`
		}
		o.decode(t, &svc)
		if o.component() == "gateway" {
			continue
		}
		assert.Equal(t, "None", svc.Spec.ClusterIP, "%s must be headless so dns:/// balances over replicas", o.Metadata.Name)
		if o.component() != "metrics" {
			// auth and notification are ready only once they reach each other by these
			// names: were unready replicas left out, neither would ever be.
			assert.True(t, svc.Spec.PublishNotReadyAddresses, "%s must resolve replicas that are not ready yet", o.Metadata.Name)
		}
		assert.Contains(t, []string{"", "ClusterIP"}, svc.Spec.Type, o.Metadata.Name)
	}
}

func hookWeight(t testing.TB, o object) int {
	t.Helper()
	w, err := strconv.Atoi(o.Metadata.Annotations["helm.sh/hook-weight"])
	require.NoError(t, err, "%s %s: hook weight", o.Kind, o.Metadata.Name)
	return w
}

func chartFileValues(t testing.TB, file string) map[string]any {
	t.Helper()
	return readYAMLFile(t, filepath.Join(chartDir, file))
}
