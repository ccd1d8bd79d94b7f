package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The alert rules pass promtool's checks and their unit tests (deploy/prometheus).
func TestAlertRules(t *testing.T) {
	t.Parallel()
	promtool := needTool(t, "promtool")
	dir := filepath.Join(repoRoot, "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "enricher-alerts.yml"}, {"test", "rules", "enricher-alerts.test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
		assert.Contains(t, string(out), "SUCCESS")
	}
}

// A real Prometheus scrapes a real replica with the alert rules loaded: a bad input raises
// EnricherDeadLetters, and every query of the Grafana dashboard runs against the scraped data,
// answering with series wherever one replica has them.
func TestPrometheusScrapesAndAlerts(t *testing.T) {
	t.Parallel()
	prometheus := needTool(t, "prometheus")
	j, p, _ := runningJob(t, "--memory-limit", "512MiB")
	target := strings.TrimPrefix(p.webAddr(), "http://")

	dir := t.TempDir()
	config := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: enricher
    static_configs: [{targets: [%q]}]
`, filepath.Join(repoRoot, "deploy", "prometheus", "enricher-alerts.yml"), target)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644))
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(prometheus, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	logs, err := os.Create(filepath.Join(dir, "prometheus.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	base := "http://" + addr

	// The bad input comes once Prometheus has scraped the counter at 0: an increase needs two
	// samples.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		res, err := promQuery(base, `enricher_dlq_records_total{reason="invalid_json"} == 0`)
		if assert.NoError(c, err) {
			assert.Len(c, res, 1)
		}
	}, 60*time.Second, 500*time.Millisecond, "Prometheus never scraped the replica")
	j.produce("score", scoreLine("k1", 5))
	j.produce("input", inputLine("k1", "a"), inputLine("k2", "b"))
	j.produceRaw(j.topics.Input, &kgo.Record{Key: []byte("k3"), Value: []byte("not json")})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		res, err := promQuery(base, `ALERTS{alertname="EnricherDeadLetters", alertstate="firing", reason="invalid_json"}`)
		if assert.NoError(c, err) {
			up, _ := promQuery(base, `up`)
			dlq, _ := promQuery(base, `enricher_dlq_records_total{reason="invalid_json"}`)
			assert.Len(c, res, 1, "the alert fires for the dead letter (up: %s; dead letters: %s)", up, dlq)
		}
	}, 90*time.Second, time.Second)

	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "grafana", "enricher-dashboard.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &dash))
	require.NotEmpty(t, dash.Panels)
	// One replica has no standby or warm-up copies: that panel's query can only be checked to run.
	mayBeEmpty := map[string]bool{"Standby and warm-up copy lag": true}
	for _, panel := range dash.Panels {
		for _, tgt := range panel.Targets {
			expr := strings.NewReplacer(`$job`, "enricher", `$instance`, ".*").Replace(tgt.Expr)
			res, err := promQuery(base, expr)
			require.NoError(t, err, "%s: %s", panel.Title, expr)
			if !mayBeEmpty[panel.Title] {
				assert.NotEmpty(t, res, "%s: %s returned no series", panel.Title, expr)
			}
		}
	}
	require.Equal(t, 0, p.stop(syscall.SIGTERM))
}

// promQuery runs an instant query and returns its result vector.
func promQuery(base, expr string) ([]json.RawMessage, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s: %s", body.Status, body.Error)
	}
	return body.Data.Result, nil
}
