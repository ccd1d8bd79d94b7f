package kafkaconf

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"net"
	"os"
	"strings"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	xscram "github.com/xdg-go/scram"

	"github.com/enricher/enricher/internal/kafkaauth"
)

// The SASL mechanisms enricher speaks.
const (
	SASLPlain       = kafkaauth.Plain
	SASLScramSHA256 = kafkaauth.ScramSHA256
	SASLScramSHA512 = kafkaauth.ScramSHA512
)

// Security holds TLS and SASL settings. TLS is on when TLS or TLSConfig is set or any file is.
type Security struct {
	TLS bool
	// TLSConfig, when set, is the TLS client config as the caller built it (a library user's);
	// the files below are then not read.
	TLSConfig     *tls.Config
	CAFile        string
	CertFile      string
	KeyFile       string
	SASLMechanism string
	SASLUser      string
	// SASLPassword is a secret: it never appears in logs, errors or --help.
	SASLPassword string
}

func (s Security) tlsOn() bool {
	return s.TLS || s.TLSConfig != nil || s.CAFile != "" || s.CertFile != "" || s.KeyFile != ""
}

// validate reports the first inconsistent setting.
func (s Security) validate() error {
	if (s.CertFile == "") != (s.KeyFile == "") {
		return errors.New("tls-cert and tls-key go together")
	}
	return kafkaauth.Validate(s.SASLMechanism, s.SASLUser, s.SASLPassword)
}

// tlsConfig builds the TLS client config, or returns nil when TLS is off.
func (s Security) tlsConfig() (*tls.Config, error) {
	if !s.tlsOn() {
		return nil, nil
	}
	if s.TLSConfig != nil {
		return s.TLSConfig.Clone(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pool, err := CAPool(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls-ca: %w", err)
		}
		cfg.RootCAs = pool
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls-cert/tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// applySarama sets TLS and SASL on a sarama config.
func (s Security) applySarama(cfg *sarama.Config) error {
	tc, err := s.tlsConfig()
	if err != nil {
		return err
	}
	if tc != nil {
		cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, tc
	}
	if s.SASLMechanism == "" {
		return nil
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.User, cfg.Net.SASL.Password = s.SASLUser, s.SASLPassword
	switch s.SASLMechanism {
	case SASLPlain:
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case SASLScramSHA256:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha256.New} }
	case SASLScramSHA512:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha512.New} }
	}
	return nil
}

// kgoOpts returns the franz-go options for TLS and SASL.
func (s Security) kgoOpts() ([]kgo.Opt, error) {
	tc, err := s.tlsConfig()
	if err != nil {
		return nil, err
	}
	return kafkaauth.KgoOpts(tc, s.SASLMechanism, s.SASLUser, s.SASLPassword), nil
}

// scramClient is sarama's SCRAM conversation, on xdg-go/scram.
type scramClient struct {
	hash func() hash.Hash
	conv *xscram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := xscram.HashGeneratorFcn(c.hash).NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = client.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }
func (c *scramClient) Done() bool                            { return c.conv.Done() }

// ErrAccessDenied is a connection the brokers refused to authenticate or authorize, or whose
// TLS handshake failed: retrying with the same settings cannot succeed.
var ErrAccessDenied = errors.New("access to the Kafka cluster denied")

// AccessDenied wraps err with ErrAccessDenied when it is an authentication, authorization or
// TLS failure; otherwise it returns nil.
func AccessDenied(err error) error {
	if err == nil {
		return nil
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recordHeader tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState),
		errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed):
		return fmt.Errorf("%w: %v", ErrAccessDenied, err)
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &recordHeader), errors.As(err, &alert):
		return fmt.Errorf("%w: TLS: %v", ErrAccessDenied, err)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && strings.Contains(opErr.Error(), "tls:") {
		return fmt.Errorf("%w: TLS: %v", ErrAccessDenied, err)
	}
	// franz-go reports a plaintext client on a TLS listener only in its message.
	if strings.Contains(err.Error(), "plaintext connection speaking to a tls endpoint") {
		return fmt.Errorf("%w: the brokers speak TLS (set --tls or --tls-ca): %v", ErrAccessDenied, err)
	}
	return nil
}

// CAPool reads the PEM certificates of file into a pool of roots to trust.
func CAPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
