package codecs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync"
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

// RegistryState is what a registry format knows of its schema registry from its own requests.
// The processor shows it in /readyz and the metrics: while Waiting is set, records whose schemas
// are not cached wait for the registry (the processor restarts on them with backoff).
type RegistryState struct {
	// Waiting is the error of the last request when it failed (no answer, a refused connection,
	// a 5xx, refused credentials); nil when it succeeded or no request was made. An answer that a schema is unknown
	// is an answer: the registry is up.
	Waiting error
	// Since is when the failures Waiting belongs to began.
	Since time.Time
	// Failures counts the requests that failed, since the format was made.
	Failures int64
}

// RegistryReporter is implemented by the formats that read schemas from a registry (Avro,
// Protobuf, JSONSchema, and a Split holding one).
type RegistryReporter interface {
	RegistryState() RegistryState
}

// registryClient looks schemas up by ID and registers schemas under subjects, and keeps the
// outcome of its requests.
type registryClient struct {
	cl *sr.Client

	mu    sync.Mutex
	state RegistryState
}

// observe records the outcome of a request: err nil or an answer means the registry is up. A
// refusal of the credentials (401, 403) counts as a failure: the records wait for it to be
// mended, and /readyz shows why.
func (c *registryClient) observe(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var re *sr.ResponseError
	answered := errors.As(err, &re) && re.StatusCode < 500 &&
		re.StatusCode != http.StatusUnauthorized && re.StatusCode != http.StatusForbidden
	if err == nil || answered {
		c.state.Waiting, c.state.Since = nil, time.Time{}
		return
	}
	if c.state.Waiting == nil {
		c.state.Since = time.Now()
	}
	c.state.Waiting = err
	c.state.Failures++
}

// registryState returns the state observe has recorded.
func (c *registryClient) registryState() RegistryState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

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
	c.observe(err)
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
	c.observe(err)
	if err != nil {
		return 0, fmt.Errorf("schema registry: register under %s: %w", subject, err)
	}
	return id, nil
}

// schemaText is a schema from the registry: its text, its own references, and the text of
// every schema it references, references of references included, by the name it uses for each.
type schemaText struct {
	text       string
	references []sr.SchemaReference
	// refs are in dependency order: a referenced schema comes after those it references.
	refs []namedSchema
}

// namedSchema is a referenced schema's text under the name its referrer uses for it: an Avro
// type's full name, a .proto import path, or a JSON Schema $ref.
type namedSchema struct{ name, text string }

// Bounds on following references, which come from the registry: the job does not control them.
const (
	maxReferences     = 64
	maxReferenceDepth = 16
)

// fetch reads schema id, which must be of type typ, and the schemas it references. An ID the
// registry does not know, a schema of another type and a reference the registry lacks are bad
// input (ReasonUnknownSchema, ReasonSchemaMismatch); a registry that cannot answer is a
// failure.
func (c *registryClient) fetch(ctx context.Context, id int, typ sr.SchemaType) (schemaText, error) {
	s, err := c.schemaByID(ctx, id)
	if errors.Is(err, errUnknownSchema) {
		return schemaText{}, Reject(ReasonUnknownSchema, "%v", err)
	}
	if err != nil {
		return schemaText{}, err
	}
	if s.Type != typ {
		return schemaText{}, Reject(ReasonSchemaMismatch, "schema %d is %s, not %s", id, s.Type, typ)
	}
	out := schemaText{text: s.Schema, references: s.References}
	err = c.follow(ctx, id, typ, s.References, map[string]bool{}, &out.refs, 0)
	return out, err
}

// follow appends the schemas refs name, each after those it references itself, to out.
func (c *registryClient) follow(ctx context.Context, id int, typ sr.SchemaType, refs []sr.SchemaReference, seen map[string]bool, out *[]namedSchema, depth int) error {
	for _, ref := range refs {
		if seen[ref.Name] {
			continue
		}
		if depth >= maxReferenceDepth || len(seen) >= maxReferences {
			return Reject(ReasonSchemaMismatch, "schema %d: references nested deeper than %d or more than %d", id, maxReferenceDepth, maxReferences)
		}
		seen[ref.Name] = true
		ss, err := c.cl.SchemaByVersion(ctx, ref.Subject, ref.Version)
		c.observe(err)
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			return Reject(ReasonSchemaMismatch, "schema %d references %s (%s version %d), which the registry does not have", id, ref.Name, ref.Subject, ref.Version)
		}
		if err != nil {
			return fmt.Errorf("schema registry: schema %d's reference %s: %w", id, ref.Name, err)
		}
		if ss.Type != typ {
			return Reject(ReasonSchemaMismatch, "schema %d references %s, which is %s, not %s", id, ref.Name, ss.Type, typ)
		}
		if err := c.follow(ctx, id, typ, ss.References, seen, out, depth+1); err != nil {
			return err
		}
		*out = append(*out, namedSchema{name: ref.Name, text: ss.Schema.Schema})
	}
	return nil
}

// registerOutput registers s, the output schema made from input schema inputID, under subject
// and returns its ID. A registry that refuses it for good (incompatible with the subject's
// earlier versions) makes the inputs of that schema bad input: they can never be written.
func (c *registryClient) registerOutput(ctx context.Context, subject string, s sr.Schema, inputID int) (int, error) {
	id, err := c.register(ctx, subject, s)
	var re *sr.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusConflict || re.StatusCode == http.StatusUnprocessableEntity) {
		return 0, Reject(ReasonSchemaMismatch, "the registry refused the output schema of %d under %s: %v", inputID, subject, err)
	}
	return id, err
}

// schemaCache holds what a format made of each schema ID (or message type), loading each once: lookups are
// serialized, so a burst of records of a new schema asks the registry once. Its zero value is
// ready to use.
type schemaCache[K comparable, V any] struct {
	mu       sync.Mutex // guards m
	fetching sync.Mutex // held by every load
	m        map[K]V
}

// get returns the entry for id, loading it with load on a miss.
func (c *schemaCache[K, V]) get(id K, load func() (V, error)) (V, error) {
	c.mu.Lock()
	v, ok := c.m[id]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	c.fetching.Lock()
	defer c.fetching.Unlock()
	c.mu.Lock()
	v, ok = c.m[id]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[K]V{}
	}
	c.m[id] = v
	c.mu.Unlock()
	return v, nil
}

// newRegistryFormat checks what every registry format's configuration needs, fills the field
// names' defaults ("score") and makes the registry client.
func newRegistryFormat(format string, r Registry, subject string, scoreField, outputScoreField *string) (*registryClient, error) {
	if subject == "" {
		return nil, fmt.Errorf("%s: no output subject", format)
	}
	if *scoreField == "" {
		*scoreField = "score"
	}
	if *outputScoreField == "" {
		*outputScoreField = "score"
	}
	return r.client()
}

// checkSize applies a registry format's size limits to a value: not empty, and within max
// bytes when max is positive. (The JSON formats' Limits.check also wants UTF-8, which binary
// formats are not.)
func checkSize(value []byte, max int) error {
	if len(value) == 0 {
		return Reject(ReasonEmptyValue, "empty value")
	}
	if max > 0 && len(value) > max {
		return Reject(ReasonTooLarge, "value of %d bytes, over the limit of %d", len(value), max)
	}
	return nil
}
