package members

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdvertRoundTrip(t *testing.T) {
	for _, web := range []string{"127.0.0.1:9095", "enricher-0.enricher.svc:9095", "[::1]:80", ""} {
		a, err := NewAdvert(web)
		require.NoError(t, err)
		assert.Len(t, a.ID, 16)
		back, err := Decode(a.Encode())
		require.NoError(t, err)
		assert.Equal(t, a, back)
	}
	a, _ := NewAdvert("")
	b, _ := NewAdvert("")
	assert.NotEqual(t, a.ID, b.ID, "every process gets its own id")
	_, err := NewAdvert("no-port")
	assert.Error(t, err)
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       Advert
		err        string
	}{
		{"advert", `{"id":"ab","web":"h:1"}`, Advert{ID: "ab", Web: "h:1"}, ""},
		{"no web server", `{"id":"ab"}`, Advert{ID: "ab"}, ""},
		{"unknown fields are ignored", `{"id":"ab","web":"h:1","zone":"x"}`, Advert{ID: "ab", Web: "h:1"}, ""},
		{"empty: another client", ``, Advert{}, ErrNoAdvert.Error()},
		{"no id", `{"web":"h:1"}`, Advert{}, ErrNoAdvert.Error()},
		{"not JSON: a sticky assignor's data", "\x00\x01\x00", Advert{}, "member user data"},
		{"bad address", `{"id":"ab","web":"nope"}`, Advert{}, "advertised address"},
		{"too large", `{"id":"` + strings.Repeat("a", maxAdvert) + `"}`, Advert{}, "is no advert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.data))
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"ab","web":"h:1"}`))
	f.Add([]byte(`{"id":""}`))
	f.Add([]byte("\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Decode(data)
		if err != nil {
			return
		}
		// What decodes is an advert that encodes and decodes to itself.
		back, err := Decode(a.Encode())
		require.NoError(t, err)
		require.Equal(t, a, back)
		require.NotEmpty(t, a.ID)
	})
}

func TestGroupOwner(t *testing.T) {
	g := Group{State: "Stable", Members: []Member{
		{ID: "a", Partitions: []int32{0, 2}},
		{ID: "b", Partitions: []int32{1}},
	}}
	for part, want := range map[int32]string{0: "a", 1: "b", 2: "a", 3: ""} {
		m, ok := g.Owner(part)
		assert.Equal(t, want != "", ok, part)
		assert.Equal(t, want, m.ID, part)
	}
	for state, stable := range map[string]bool{"Stable": true, "PreparingRebalance": false, "CompletingRebalance": false, "Empty": false, "Dead": false} {
		assert.Equal(t, stable, Group{State: state}.Stable(), state)
	}
}
