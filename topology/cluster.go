package topology

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/kafkaauth"
)

// Cluster says how to reach a Kafka cluster: where to start and how to connect.
type Cluster struct {
	// Brokers are the bootstrap brokers, host:port each. Required.
	Brokers []string
	// ClientID names the connections in the brokers' logs and quotas; empty is "enricher".
	ClientID string
	// TLS, when set, encrypts every connection with this client config; nil (the default) is
	// plaintext.
	TLS *tls.Config
	// SASL authenticates every connection; its zero value (the default) does not.
	SASL SASL
}

// SASL is the SASL authentication of a connection.
type SASL struct {
	// Mechanism is "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512"; empty turns SASL off.
	Mechanism string
	User      string
	// Password is a secret: enricher never logs it or puts it in an error.
	Password string
}

// Validate reports the first setting that cannot work.
func (c Cluster) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("brokers: none given")
	}
	return kafkaauth.Validate(c.SASL.Mechanism, c.SASL.User, c.SASL.Password)
}

// admin returns an admin client for the cluster; closing it closes its connections. Its
// metadata cache lives 100ms instead of franz-go's 5s, so a topic it just created is listed.
func (c Cluster) admin() (*kadm.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	id := c.ClientID
	if id == "" {
		id = "enricher"
	}
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(id), kgo.MetadataMinAge(100 * time.Millisecond)},
		kafkaauth.KgoOpts(c.TLS, c.SASL.Mechanism, c.SASL.User, c.SASL.Password)...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return kadm.NewClient(cl), nil
}
