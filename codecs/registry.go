package codecs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// Registry is where a registry format finds its schemas: a schema registry that speaks
// Confluent's REST API (Confluent Schema Registry, or Apicurio Registry under
// /apis/ccompat/v7).
type Registry struct {
	// URL is the registry's base URL, such as http://registry:8081 or
	// http://apicurio:8080/apis/ccompat/v7.
	URL string
	// Username and Password, when Username is set, are sent as HTTP basic authentication.
	Username, Password string
	// TLS, when set, is used for https URLs; nil uses the system's roots.
	TLS *tls.Config
	// Timeout bounds one request; zero is 10 s.
	Timeout time.Duration
}

// registryClient looks schemas up by ID and registers schemas under subjects.
type registryClient struct{ cl *sr.Client }

func (r Registry) client() (*registryClient, error) {
	if r.URL == "" {
		return nil, errors.New("schema registry: no URL")
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	httpcl := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: r.TLS, Proxy: nil}}
	opts := []sr.ClientOpt{sr.URLs(r.URL), sr.HTTPClient(httpcl)}
	if r.Username != "" {
		opts = append(opts, sr.BasicAuth(r.Username, r.Password))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry %s: %w", r.URL, err)
	}
	return &registryClient{cl: cl}, nil
}

// errUnknownSchema is an ID the registry answered it does not know: bad input, not a failure.
var errUnknownSchema = errors.New("the schema registry does not know this schema ID")

// schemaByID returns the text of the schema with id. An ID the registry does not know wraps
// errUnknownSchema; any other error (the registry cannot be reached, or answers 5xx) is a
// failure to try again.
func (c *registryClient) schemaByID(ctx context.Context, id int) (sr.Schema, error) {
	s, err := c.cl.SchemaByID(ctx, id)
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return sr.Schema{}, fmt.Errorf("schema %d: %w", id, errUnknownSchema)
	}
	if err != nil {
		return sr.Schema{}, fmt.Errorf("schema registry: schema %d: %w", id, err)
	}
	return s, nil
}

// register registers s under subject (or finds it there) and returns its ID.
func (c *registryClient) register(ctx context.Context, subject string, s sr.Schema) (int, error) {
	id, err := c.cl.RegisterSchema(ctx, subject, s, -1, -1)
	if err != nil {
		return 0, fmt.Errorf("schema registry: register under %s: %w", subject, err)
	}
	return id, nil
}
