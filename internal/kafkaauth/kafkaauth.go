package kafkaauth

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The SASL mechanisms enricher speaks.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Validate reports a SASL setting that cannot work: an unknown mechanism, a mechanism without a
// user, or credentials without a mechanism.
func Validate(mechanism, user, password string) error {
	switch mechanism {
	case "":
		if user != "" || password != "" {
			return errors.New("sasl-user and sasl-password need sasl-mechanism")
		}
	case Plain, ScramSHA256, ScramSHA512:
		if user == "" {
			return fmt.Errorf("sasl-mechanism %s needs sasl-user", mechanism)
		}
	default:
		return fmt.Errorf("sasl-mechanism %q is not %s, %s or %s", mechanism, Plain, ScramSHA256, ScramSHA512)
	}
	return nil
}

// KgoOpts returns the franz-go options that dial with tc (none when nil) and authenticate with
// the SASL mechanism (none when empty).
func KgoOpts(tc *tls.Config, mechanism, user, password string) []kgo.Opt {
	var opts []kgo.Opt
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch mechanism {
	case Plain:
		opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: password}.AsMechanism()))
	case ScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha256Mechanism()))
	case ScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()))
	}
	return opts
}
