package helm

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

const chartDir = "enricher"

// rendered is one rendering of the chart, every object decoded into its API type.
type rendered struct {
	sets     []appsv1.StatefulSet
	services []corev1.Service
	pdbs     []policyv1.PodDisruptionBudget
	monitors []monitoringv1.ServiceMonitor
}

// render renders the chart as `helm template` does, with values over its defaults, and decodes
// every object strictly: a field the API type does not have fails.
func render(t *testing.T, values map[string]any) (rendered, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	require.NoError(t, err)
	vals, err := chartutil.ToRenderValues(ch, values,
		chartutil.ReleaseOptions{Name: "scores", Namespace: "streams", IsInstall: true}, chartutil.DefaultCapabilities)
	require.NoError(t, err)
	files, err := engine.Render(ch, vals)
	if err != nil {
		return rendered{}, err
	}
	var out rendered
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if filepath.Ext(name) != ".yaml" {
			continue // _helpers.tpl, NOTES.txt
		}
		for _, doc := range strings.Split(files[name], "\n---") {
			var head struct{ Kind string }
			require.NoError(t, yaml.Unmarshal([]byte(doc), &head), name)
			var err error
			switch head.Kind {
			case "":
				continue // a template that rendered nothing
			case "StatefulSet":
				err = decodeStrict(doc, &out.sets)
			case "Service":
				err = decodeStrict(doc, &out.services)
			case "PodDisruptionBudget":
				err = decodeStrict(doc, &out.pdbs)
			case "ServiceMonitor":
				err = decodeStrict(doc, &out.monitors)
			default:
				t.Fatalf("%s renders a %s, which this test does not decode", name, head.Kind)
			}
			require.NoError(t, err, "%s: every field is one of %s's", name, head.Kind)
		}
	}
	return out, nil
}

// decodeStrict decodes doc into a new T, appended to list; a field T does not have is an error.
func decodeStrict[T any](doc string, list *[]T) error {
	var v T
	err := yaml.UnmarshalStrict([]byte(doc), &v)
	*list = append(*list, v)
	return err
}

func TestChartLints(t *testing.T) {
	l := lint.All(chartDir, nil, "streams", false)
	for _, m := range l.Messages {
		assert.Less(t, m.Severity, support.WarningSev, "%s", m)
	}
}

// secured is a release with every option on: exactly-once, standbys, TLS with a client
// certificate, SASL, a web token and a ServiceMonitor.
var secured = map[string]any{
	"guarantee": "exactly-once", "standbyReplicas": 1, "memory": "2Gi",
	"kafka": map[string]any{
		"brokers": "kafka-0.kafka:9093,kafka-1.kafka:9093",
		"tls":     map[string]any{"enabled": true, "secretName": "kafka-tls", "clientCertificate": true},
		"sasl": map[string]any{"mechanism": "SCRAM-SHA-512", "user": "enricher",
			"passwordSecret": map[string]any{"name": "kafka-user", "key": "password"}},
	},
	"web":            map[string]any{"tokenSecret": map[string]any{"name": "enricher-web", "key": "token"}},
	"serviceMonitor": map[string]any{"enabled": true},
}

func TestChartRenders(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
	}{
		{"defaults", nil},
		{"everything on", secured},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := render(t, tc.values)
			require.NoError(t, err)
			require.Len(t, r.sets, 1)
			require.Len(t, r.services, 2)
			require.Len(t, r.pdbs, 1)
			sts := r.sets[0]
			pod := sts.Spec.Template.Spec
			require.Len(t, pod.Containers, 1)
			c := pod.Containers[0]
			env := map[string]corev1.EnvVar{}
			for _, e := range c.Env {
				env[e.Name] = e
			}

			// Each pod is a static member named after itself, reachable by the others by the
			// headless Service's DNS name.
			var headless corev1.Service
			for _, s := range r.services {
				if s.Spec.ClusterIP == corev1.ClusterIPNone {
					headless = s
				}
			}
			require.NotEmpty(t, headless.Name, "a headless Service")
			assert.Equal(t, headless.Name, sts.Spec.ServiceName)
			assert.True(t, headless.Spec.PublishNotReadyAddresses, "a restoring replica still answers its peers")
			assert.Equal(t, "metadata.name", env["POD_NAME"].ValueFrom.FieldRef.FieldPath)
			assert.Equal(t, "$(POD_NAME)", env["ENRICHER_INSTANCE_ID"].Value)
			assert.Equal(t, fmt.Sprintf("$(POD_NAME).%s.$(POD_NAMESPACE).svc:9095", headless.Name), env["ENRICHER_ADVERTISE_ADDR"].Value)
			for _, s := range r.services {
				assert.True(t, selects(s.Spec.Selector, sts.Spec.Template.Labels), "%s selects the pods", s.Name)
			}

			// A volume of its own for the state directory.
			require.Len(t, sts.Spec.VolumeClaimTemplates, 1)
			claim := sts.Spec.VolumeClaimTemplates[0]
			assert.Contains(t, c.VolumeMounts, corev1.VolumeMount{Name: claim.Name, MountPath: env["ENRICHER_STATE_DIR"].Value})

			// Ready on /readyz, alive on /healthz, on the web port.
			assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
			assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
			assert.Equal(t, "web", c.ReadinessProbe.HTTPGet.Port.String())
			assert.Equal(t, "0.0.0.0:9095", env["ENRICHER_WEB_ADDR"].Value)

			// Kubernetes waits longer than the process's own stop.
			shutdown, err := time.ParseDuration(env["ENRICHER_SHUTDOWN_TIMEOUT"].Value)
			require.NoError(t, err)
			require.NotNil(t, pod.TerminationGracePeriodSeconds)
			assert.Greater(t, time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second, shutdown)

			// The memory request and limit are the process's budget.
			budget := resource.MustParse(env["ENRICHER_MEMORY_LIMIT"].Value)
			assert.True(t, budget.Equal(c.Resources.Requests[corev1.ResourceMemory]), "request %v, budget %v", c.Resources.Requests.Memory(), budget)
			assert.True(t, budget.Equal(c.Resources.Limits[corev1.ResourceMemory]), "limit %v, budget %v", c.Resources.Limits.Memory(), budget)

			// One replica down at a time, of these pods.
			assert.Equal(t, 1, r.pdbs[0].Spec.MaxUnavailable.IntValue())
			assert.Equal(t, sts.Spec.Selector, r.pdbs[0].Spec.Selector)

			if tc.values == nil {
				assert.Empty(t, r.monitors, "no ServiceMonitor unless asked")
				assert.NotContains(t, env, "ENRICHER_WEB_TOKEN")
				return
			}
			// Secrets, not values, carry the password and the token; TLS files from a Secret.
			assert.Equal(t, "kafka-user", env["ENRICHER_SASL_PASSWORD"].ValueFrom.SecretKeyRef.Name)
			assert.Equal(t, "enricher-web", env["ENRICHER_WEB_TOKEN"].ValueFrom.SecretKeyRef.Name)
			assert.Equal(t, "2Gi", env["ENRICHER_MEMORY_LIMIT"].Value)
			var tlsVolume *corev1.Volume
			for i := range pod.Volumes {
				if pod.Volumes[i].Secret != nil {
					tlsVolume = &pod.Volumes[i]
				}
			}
			require.NotNil(t, tlsVolume)
			assert.Equal(t, "kafka-tls", tlsVolume.Secret.SecretName)
			assert.Equal(t, "/etc/enricher/tls/ca.pem", env["ENRICHER_TLS_CA"].Value)
			// The ServiceMonitor scrapes each pod once, through the headless Service, with the token.
			require.Len(t, r.monitors, 1)
			sm := r.monitors[0]
			assert.True(t, selects(sm.Spec.Selector.MatchLabels, headless.Labels))
			for _, s := range r.services {
				if s.Name != headless.Name {
					assert.False(t, selects(sm.Spec.Selector.MatchLabels, s.Labels), "the ClusterIP Service is not scraped too")
				}
			}
			require.Len(t, sm.Spec.Endpoints, 1)
			assert.Equal(t, "enricher-web", sm.Spec.Endpoints[0].BearerTokenSecret.Name)
		})
	}
}

// Values that cannot work fail the rendering with a message, not the pods at run time.
func TestChartRefusesValuesThatCannotWork(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"a stop shorter than the last commit", map[string]any{"guarantee": "exactly-once", "shutdownTimeout": "30s"}, "shutdownTimeout must exceed"},
		{"an unknown guarantee", map[string]any{"guarantee": "at-most-once"}, "guarantee must be"},
		{"SASL without a user", map[string]any{"kafka": map[string]any{"sasl": map[string]any{"mechanism": "PLAIN"}}}, "kafka.sasl.user"},
		{"TLS without a Secret", map[string]any{"kafka": map[string]any{"tls": map[string]any{"enabled": true}}}, "kafka.tls.secretName"},
		{"a timeout Go would not read as the chart does", map[string]any{"shutdownTimeout": "1h"}, "a timeout must be written"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.values)
			require.Error(t, err)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// Every variable the chart sets for enricher is one `enricher run` reads: its --help names each
// flag's variable.
func TestChartSetsOnlyFlagsThatExist(t *testing.T) {
	// --help exits 2, as any usage message does.
	cmd := exec.Command("go", "run", "./cmd/enricher", "run", "--help")
	cmd.Dir = "../.." // enricher's own module
	help, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("enricher run --help: %v\n%s", err, help)
	}
	require.Contains(t, string(help), "[ENRICHER_BROKERS]", "the help lists the variables")
	seen := 0
	for _, values := range []map[string]any{nil, secured} {
		r, err := render(t, values)
		require.NoError(t, err)
		for _, e := range r.sets[0].Spec.Template.Spec.Containers[0].Env {
			if strings.HasPrefix(e.Name, "ENRICHER_") {
				seen++
				assert.Contains(t, string(help), "["+e.Name+"]", "the chart sets %s, which no flag reads", e.Name)
			}
		}
		assert.Equal(t, []string{"run"}, r.sets[0].Spec.Template.Spec.Containers[0].Args)
	}
	assert.Greater(t, seen, 20)
}

// selects reports whether labels has every entry of selector.
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}
