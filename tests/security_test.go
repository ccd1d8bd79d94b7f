package tests

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/enricher/enricher/internal/kafkaconf"
)

// The processor runs through a SASL_SSL listener (SCRAM-SHA-256 over TLS with the test's own
// CA); wrong credentials and a missing CA fail fast with one clear line that holds no password.
func TestSASLSSL(t *testing.T) {
	t.Parallel()
	addr, ca := ownSecureBroker(t)
	const password = "enricher-secret"
	j := newJobOn(t, addr, kafkaconf.Security{CAFile: ca, SASLMechanism: kafkaconf.SASLScramSHA256,
		SASLUser: "enricher", SASLPassword: password})
	j.flags = []string{"--tls-ca", ca, "--sasl-mechanism", "SCRAM-SHA-256", "--sasl-user", "enricher"}
	j.env = []string{"ENRICHER_SASL_PASSWORD=" + password}

	j.createTopics(partitions)
	p := j.start(t.TempDir())
	p.waitRunning(partitions)
	j.scoreRound(10, 40)
	j.waitChangelog(10)
	assert.Equal(t, want(10, 40), j.enrichOn(j.topics.Output, 10, "over-sasl-ssl"))
	assert.NotContains(t, p.logs(), password, "the password never reaches the logs")
	require.Equal(t, 0, p.stop(syscall.SIGTERM))

	const wrong = "not-the-password-3141"
	for _, tc := range []struct {
		name  string
		flags []string
		env   string
		want  string
	}{
		{"wrong password", j.flags, "ENRICHER_SASL_PASSWORD=" + wrong, "SASL_AUTHENTICATION_FAILED"},
		{"PLAIN with a wrong password", []string{"--tls-ca", ca, "--sasl-mechanism", "PLAIN", "--sasl-user", "enricher"},
			"ENRICHER_SASL_PASSWORD=" + wrong, "SASL_AUTHENTICATION_FAILED"},
		{"no CA", []string{"--tls", "--sasl-mechanism", "SCRAM-SHA-256", "--sasl-user", "enricher"},
			"ENRICHER_SASL_PASSWORD=" + password, "certificate signed by unknown authority"},
		{"no TLS", nil, "", "the brokers speak TLS"},
	} {
		bad := *j
		bad.flags, bad.env = tc.flags, []string{tc.env}
		start := time.Now()
		code, _, stderr := bad.enricher("", append([]string{"run", "--state-dir", t.TempDir(), "--web-addr", ""}, bad.topicArgs()...)...)
		took := time.Since(start)
		assert.Equal(t, 1, code, tc.name)
		assert.Contains(t, stderr, "access to the Kafka cluster denied", tc.name)
		assert.Contains(t, stderr, tc.want, tc.name)
		assert.NotContains(t, stderr, wrong, "%s: no password in the error", tc.name)
		assert.Len(t, strings.Split(strings.TrimSpace(stderr), "\n"), 1, "%s: one line: %s", tc.name, stderr)
		assert.Less(t, took, 15*time.Second, "%s fails fast, not after the connect timeout", tc.name)
	}
}
