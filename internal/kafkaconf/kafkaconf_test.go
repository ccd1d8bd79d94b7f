package kafkaconf

import (
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestParseBrokers(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"127.0.0.1:9092", []string{"127.0.0.1:9092"}, false},
		{"a:1, b:2,", []string{"a:1", "b:2"}, false},
		{"", nil, true},
		{"localhost", nil, true},
		{"a:1,b", nil, true},
	} {
		got, err := ParseBrokers(tc.in)
		if tc.wantErr {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
	}
}

// The sarama config carries the settings that keep this job from losing data.
func TestSaramaIsHardened(t *testing.T) {
	c := Defaults()
	c.InstanceID = "replica-1"
	cfg, err := c.Sarama()
	require.NoError(t, err)
	assert.Equal(t, sarama.OffsetOldest, cfg.Consumer.Offsets.Initial, "new groups read from the start")
	assert.False(t, cfg.Metadata.AllowAutoTopicCreation)
	assert.Equal(t, 6*time.Second, cfg.Consumer.Group.Session.Timeout)
	assert.Equal(t, 300*time.Millisecond, cfg.Consumer.Group.Heartbeat.Interval)
	assert.Equal(t, time.Minute, cfg.Consumer.Group.Rebalance.Timeout, "room for the last exactly-once commit")
	assert.Equal(t, "replica-1", cfg.Consumer.Group.InstanceId)
	assert.False(t, cfg.Net.TLS.Enable)
	assert.False(t, cfg.Net.SASL.Enable)

	other, err := c.Sarama()
	require.NoError(t, err)
	assert.NotSame(t, cfg, other, "each call returns its own config")
}

func TestValidate(t *testing.T) {
	require.NoError(t, Defaults().Validate())
	for name, mutate := range map[string]func(*Config){
		"no brokers":             func(c *Config) { c.Brokers = nil },
		"bad version":            func(c *Config) { c.Version = "banana" },
		"bad partitioner":        func(c *Config) { c.Partitioner = "random" },
		"negative linger":        func(c *Config) { c.Linger = -time.Second },
		"heartbeat too slow":     func(c *Config) { c.HeartbeatInterval = 5 * time.Second },
		"rebalance timeout zero": func(c *Config) { c.RebalanceTimeout = 0 },
		"cert without key":       func(c *Config) { c.Security.CertFile = "c.pem" },
		"unknown SASL mechanism": func(c *Config) { c.Security.SASLMechanism = "GSSAPI"; c.Security.SASLUser = "u" },
		"SASL without a user":    func(c *Config) { c.Security.SASLMechanism = SASLPlain },
		"a user without SASL":    func(c *Config) { c.Security.SASLUser = "u" },
	} {
		c := Defaults()
		mutate(&c)
		assert.Error(t, c.Validate(), name)
	}
}

func TestSecurityOnSarama(t *testing.T) {
	for _, mech := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		c := Defaults()
		c.Security = Security{TLS: true, SASLMechanism: mech, SASLUser: "u", SASLPassword: "p"}
		cfg, err := c.Sarama()
		require.NoError(t, err, mech)
		assert.True(t, cfg.Net.TLS.Enable, mech)
		assert.True(t, cfg.Net.SASL.Enable, mech)
		assert.Equal(t, sarama.SASLMechanism(mech), cfg.Net.SASL.Mechanism)
		if mech != SASLPlain {
			client := cfg.Net.SASL.SCRAMClientGeneratorFunc()
			require.NoError(t, client.Begin("u", "p", ""))
			first, err := client.Step("")
			require.NoError(t, err)
			assert.Contains(t, first, "n=u,r=", "a SCRAM client-first message")
		}
	}
	c := Defaults()
	c.Security.CAFile = "/does/not/exist.pem"
	_, err := c.Sarama()
	assert.ErrorContains(t, err, "tls-ca")
}

func TestAccessDenied(t *testing.T) {
	for _, tc := range []struct {
		err    error
		denied bool
	}{
		{nil, false},
		{errors.New("dial tcp: connection refused"), false},
		{fmt.Errorf("list topics: %w", kerr.SaslAuthenticationFailed), true},
		{fmt.Errorf("x: %w", kerr.TopicAuthorizationFailed), true},
		{fmt.Errorf("dial: %w", x509.UnknownAuthorityError{}), true},
		{errors.New("invalid large response size; is this a plaintext connection speaking to a tls endpoint?"), true},
	} {
		got := AccessDenied(tc.err)
		assert.Equal(t, tc.denied, got != nil, "%v", tc.err)
		if got != nil {
			assert.ErrorIs(t, got, ErrAccessDenied)
		}
	}
}
