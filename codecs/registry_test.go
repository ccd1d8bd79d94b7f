package codecs

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"
)

// Each registry format reports its registry as waiting from its first failed request until one
// succeeds, counts the failures, and takes an unknown ID for an answer.
func TestRegistryStateFollowsRequests(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, reg *fakeRegistry, url string) (RegistryReporter, func() error)
	}{
		{"avro", func(t *testing.T, reg *fakeRegistry, url string) (RegistryReporter, func() error) {
			in := reg.add(orderSchema)
			a := newTestAvro(t, url)
			value := wire(t, in, orderSchema, order("o1"))
			return a, func() error { _, err := a.Enrich(nil, "c1", value, 1); return err }
		}},
		{"protobuf", func(t *testing.T, reg *fakeRegistry, url string) (RegistryReporter, func() error) {
			in := reg.addTyped(orderProto, sr.TypeProtobuf)
			p := newTestProtobuf(t, url)
			value := protoWire(t, in, []int{0}, protoOrder(t, protoMessage(t, orderProto, 0), orderProtoJSON))
			return p, func() error { _, err := p.Enrich(nil, "c1", value, 1); return err }
		}},
		{"json-schema", func(t *testing.T, reg *fakeRegistry, url string) (RegistryReporter, func() error) {
			in := reg.addTyped(orderJSONSchema, sr.TypeJSON)
			j := newTestJSONSchema(t, url)
			value := jsonWire(t, in, orderJSON)
			return j, func() error { _, err := j.Enrich(nil, "c1", value, 1); return err }
		}},
		{"split", func(t *testing.T, reg *fakeRegistry, url string) (RegistryReporter, func() error) {
			in := reg.add(orderSchema)
			s := Split{Inputs: newTestAvro(t, url), Scores: JSONMerge{}}
			value := wire(t, in, orderSchema, order("o1"))
			return s, func() error { _, err := s.Enrich(nil, "c1", value, 1); return err }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, url := newFakeRegistry(t)
			f, enrich := tc.setup(t, reg, url)
			assert.NoError(t, f.RegistryState().Waiting, "no request yet")
			down := func(d bool) {
				reg.mu.Lock()
				reg.down = d
				reg.mu.Unlock()
			}
			down(true)
			require.Error(t, enrich())
			require.Error(t, enrich())
			st := f.RegistryState()
			assert.Error(t, st.Waiting, "waiting while the registry fails")
			assert.False(t, st.Since.IsZero())
			assert.Equal(t, int64(2), st.Failures)

			down(false)
			require.NoError(t, enrich())
			st = f.RegistryState()
			assert.NoError(t, st.Waiting, "the registry answered")
			assert.Equal(t, int64(2), st.Failures, "failures are kept")
		})
	}
	// An ID the registry does not know is an answer, not a wait.
	_, url := newFakeRegistry(t)
	a := newTestAvro(t, url)
	_, err := a.Enrich(nil, "c1", []byte{0, 0, 0, 0, 42, 1}, 1)
	require.Equal(t, ReasonUnknownSchema, ReasonOf(err))
	assert.NoError(t, a.RegistryState().Waiting)
}

// A registry behind TLS and basic authentication: the format trusts the CA it is given and
// sends the credentials; refused credentials are a wait for the registry, not bad input.
func TestRegistryTLSAndBasicAuth(t *testing.T) {
	reg := newFake(t)
	in := reg.add(orderSchema)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "enricher" || pass != "s3cret" {
			http.Error(w, `{"error_code":40101,"message":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	value := wire(t, in, orderSchema, order("o1"))
	for _, tc := range []struct {
		name, password string
		tls            *tls.Config
		ok             bool
	}{
		{"the CA and the right password", "s3cret", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, true},
		{"a wrong password", "wrong", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, false},
		{"the system's roots only", "s3cret", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAvro(AvroConfig{Registry: Registry{URL: srv.URL, Username: "enricher", Password: tc.password, TLS: tc.tls},
				OutputSubject: "out-value"})
			require.NoError(t, err)
			_, err = a.Enrich(nil, "c1", value, 1)
			if tc.ok {
				require.NoError(t, err)
				assert.NoError(t, a.RegistryState().Waiting)
				return
			}
			require.Error(t, err)
			assert.Empty(t, ReasonOf(err), "not bad input: %v", err)
			assert.Error(t, a.RegistryState().Waiting, "a wait for the registry")
		})
	}
}
