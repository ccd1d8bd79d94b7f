package members

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/enricher/enricher/internal/changelog"
)

// Advert is what a replica tells the rest of its group about itself.
type Advert struct {
	// ID tells a replica its own membership apart from the others'; it is new in every process.
	ID string `json:"id"`
	// Web is the host:port its web server answers on; empty when it runs none.
	Web string `json:"web,omitempty"`
}

// NewAdvert returns an advert with a fresh id for a replica whose web server answers on web.
func NewAdvert(web string) (Advert, error) {
	if web != "" {
		if _, _, err := net.SplitHostPort(web); err != nil {
			return Advert{}, fmt.Errorf("advertised address %q: %w", web, err)
		}
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return Advert{}, fmt.Errorf("advert id: %w", err)
	}
	return Advert{ID: hex.EncodeToString(b), Web: web}, nil
}

// Encode returns the advert as member user data.
func (a Advert) Encode() []byte {
	b, _ := json.Marshal(a) // two strings: cannot fail
	return b
}

// ErrNoAdvert is returned by Decode for a member that advertised nothing: a client other than
// an enricher replica, or an enricher from before adverts.
var ErrNoAdvert = errors.New("the member advertises no address")

// maxAdvert bounds the user data Decode reads: an advert is two short strings, and the
// assignor (internal/assign) adds about 25 bytes per partition with a local store.
const maxAdvert = 256 << 10

// Decode parses a member's user data.
func Decode(data []byte) (Advert, error) {
	if len(data) == 0 {
		return Advert{}, ErrNoAdvert
	}
	if len(data) > maxAdvert {
		return Advert{}, fmt.Errorf("member user data of %d bytes is no advert", len(data))
	}
	var a Advert
	if err := json.Unmarshal(data, &a); err != nil {
		return Advert{}, fmt.Errorf("member user data: %w", err)
	}
	if a.ID == "" {
		return Advert{}, ErrNoAdvert
	}
	if a.Web != "" {
		if _, _, err := net.SplitHostPort(a.Web); err != nil {
			return Advert{}, fmt.Errorf("advertised address %q: %w", a.Web, err)
		}
	}
	return a, nil
}

// Member is one member of the group as the group coordinator describes it.
type Member struct {
	ID         string `json:"member_id"`
	InstanceID string `json:"instance_id,omitempty"`
	ClientID   string `json:"client_id"`
	Host       string `json:"client_host"`
	// Advert is the member's advert; AdvertErr says why there is none.
	Advert    Advert `json:"advert"`
	AdvertErr string `json:"advert_error,omitempty"`
	// Partitions are the partitions of the described topic assigned to the member, sorted.
	Partitions []int32 `json:"partitions"`
}

// Group is a consumer group as its coordinator describes it.
type Group struct {
	Name string `json:"group"`
	// State is the coordinator's: Stable, PreparingRebalance, CompletingRebalance, Empty or Dead.
	State   string   `json:"state"`
	Members []Member `json:"members"`
}

// Stable reports whether the group's assignment is settled: in any other state a rebalance is
// under way and an owner may be giving its partitions up.
func (g Group) Stable() bool { return g.State == "Stable" }

// Owner returns the member assigned partition p.
func (g Group) Owner(p int32) (Member, bool) {
	for _, m := range g.Members {
		if slices.Contains(m.Partitions, p) {
			return m, true
		}
	}
	return Member{}, false
}

// Directory describes one group, by the partitions of one of its topics (the input topic: the
// group's topics are co-partitioned, so its partitions stand for all of them).
type Directory struct {
	adm   *kadm.Client
	group string
	topic string
}

// NewDirectory returns a directory of group, whose members are assigned partitions of topic.
func NewDirectory(adm *kadm.Client, group, topic string) *Directory {
	return &Directory{adm: adm, group: group, topic: topic}
}

// Describe asks the group's coordinator for the group.
func (d *Directory) Describe(ctx context.Context) (Group, error) {
	described, err := d.adm.DescribeGroups(ctx, d.group)
	if err != nil {
		return Group{}, fmt.Errorf("describe group %s: %w", d.group, err)
	}
	dg, ok := described[d.group]
	if !ok {
		return Group{}, fmt.Errorf("describe group %s: no answer for it", d.group)
	}
	if dg.Err != nil {
		return Group{}, fmt.Errorf("describe group %s: %w", d.group, dg.Err)
	}
	return fromDescription(dg, d.topic), nil
}

// fromDescription turns a description into a Group, with each member's partitions of topic.
func fromDescription(dg kadm.DescribedGroup, topic string) Group {
	g := Group{Name: dg.Group, State: dg.State, Members: make([]Member, 0, len(dg.Members))}
	for _, dm := range dg.Members {
		// The coordinator prints the host as Java's InetAddress does: "/127.0.0.1".
		m := Member{ID: dm.MemberID, ClientID: dm.ClientID, Host: strings.TrimPrefix(dm.ClientHost, "/"), Partitions: []int32{}}
		if dm.InstanceID != nil {
			m.InstanceID = *dm.InstanceID
		}
		if join, ok := dm.Join.AsConsumer(); ok {
			var err error
			if m.Advert, err = Decode(join.UserData); err != nil {
				m.AdvertErr = err.Error()
			}
		} else {
			m.AdvertErr = ErrNoAdvert.Error()
		}
		if assigned, ok := dm.Assigned.AsConsumer(); ok {
			for _, t := range assigned.Topics {
				if t.Topic == topic {
					m.Partitions = append(m.Partitions, t.Partitions...)
				}
			}
		}
		slices.Sort(m.Partitions)
		g.Members = append(g.Members, m)
	}
	return g
}

// Lag returns, by partition, how many records of topics the group has still to consume: the
// last stable offset (read_committed, so a transaction marker is not counted as a record)
// minus the committed offset, or minus the log start where the group committed none.
func (d *Directory) Lag(ctx context.Context, topics ...string) (map[int32]int64, error) {
	commits, err := d.adm.FetchOffsetsForTopics(ctx, d.group, topics...)
	if err != nil {
		return nil, fmt.Errorf("committed offsets of %s: %w", d.group, err)
	}
	lag := map[int32]int64{}
	for _, topic := range topics {
		starts, err := changelog.StartOffsets(ctx, d.adm, topic)
		if err != nil {
			return nil, err
		}
		ends, err := changelog.StableEnds(ctx, d.adm, topic)
		if err != nil {
			return nil, err
		}
		for p, end := range ends {
			from := starts[p]
			if c, ok := commits.Lookup(topic, p); ok && c.Err == nil && c.At >= 0 {
				from = c.At
			}
			lag[p] += max(0, end-from)
		}
	}
	return lag, nil
}
