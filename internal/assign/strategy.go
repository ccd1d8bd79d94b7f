package assign

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/enricher/enricher/internal/members"
)

// Name is the strategy's protocol name in the group: a group uses it once every member
// supports it.
const Name = "enricher-state-v1"

// MemberData is what a member reports in its group membership: its advert (which
// internal/members reads back) and what the plan needs.
type MemberData struct {
	members.Advert
	// Process is the id persisted in the member's state directory.
	Process string `json:"process,omitempty"`
	// Active are the partitions it processed in its last session.
	Active []int32 `json:"active,omitempty"`
	// Stores maps each partition it has a local store of to the changelog offset the store
	// has applied.
	Stores map[int32]int64 `json:"stores,omitempty"`
}

// Assignment is what a member is told: its active partitions and its standby and warm-up
// copies.
type Assignment struct {
	Generation int32   `json:"-"`
	Active     []int32 `json:"-"`
	Standby    []int32 `json:"standby,omitempty"`
	Warmup     []int32 `json:"warmup,omitempty"`
}

// Local is the member's own side: what it reports, and what it is told.
type Local interface {
	// MemberData returns the data to report, built fresh for every join.
	MemberData() MemberData
	// Assigned is called with each assignment before its session starts.
	Assigned(Assignment)
}

// Config configures a Strategy.
type Config struct {
	Settings
	Local Local
	// Bounds reads the changelog's start and end offsets per partition, for the lags; the
	// leader calls it once per plan.
	Bounds func(ctx context.Context) (map[int32]Bounds, error)
	// BoundsTimeout bounds that read; 0 is 5 s. Past it the highest offset a member reports
	// stands in for each end.
	BoundsTimeout time.Duration
	Logger        *slog.Logger
}

// Strategy is the sarama BalanceStrategy of the job: sarama calls SubscriptionUserData on
// every member before it joins, Plan and AssignmentData on the leader, and OnAssignment on
// every member with what the leader planned for it.
type Strategy struct {
	cfg Config

	mu      sync.Mutex
	pending map[string]Assignment // the last plan's copies per member id, for AssignmentData
}

// New returns a Strategy for cfg.
func New(cfg Config) *Strategy {
	if cfg.BoundsTimeout <= 0 {
		cfg.BoundsTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Strategy{cfg: cfg}
}

// Name implements sarama.BalanceStrategy.
func (s *Strategy) Name() string { return Name }

// SubscriptionUserData implements sarama.SubscriptionUserDataBalanceStrategy: the member's
// data, current at every join.
func (s *Strategy) SubscriptionUserData([]string) ([]byte, error) {
	return json.Marshal(s.cfg.Local.MemberData())
}

// Plan implements sarama.BalanceStrategy: partition p of every topic goes to the same member.
func (s *Strategy) Plan(group map[string]sarama.ConsumerGroupMemberMetadata, topics map[string][]int32) (sarama.BalanceStrategyPlan, error) {
	partitions, err := copartitioned(topics)
	if err != nil {
		return nil, err
	}
	ms := make([]Member, 0, len(group))
	for id, meta := range group {
		var d MemberData
		if len(meta.UserData) > 0 {
			if err := json.Unmarshal(meta.UserData, &d); err != nil {
				// A member with data the plan cannot read is planned as one without stores.
				s.cfg.Logger.Warn("member data unreadable: planning the member without stores", "member", id, "error", err.Error())
			}
		}
		ms = append(ms, Member{ID: id, Process: d.Process, Active: d.Active, Stores: d.Stores})
	}
	bounds := s.bounds(ms)
	res := Compute(ms, partitions, bounds, s.cfg.Settings)
	plan := sarama.BalanceStrategyPlan{}
	pending := map[string]Assignment{}
	for _, m := range ms {
		plan[m.ID] = map[string][]int32{}
		for topic := range topics {
			plan[m.ID][topic] = slices.Clone(res.Active[m.ID])
		}
		pending[m.ID] = Assignment{Standby: res.Standby[m.ID], Warmup: res.Warmup[m.ID]}
	}
	s.mu.Lock()
	s.pending = pending
	s.mu.Unlock()
	s.cfg.Logger.Info("group planned", "members", len(ms), "partitions", len(partitions),
		"active", res.Active, "standby", res.Standby, "warmup", res.Warmup)
	return plan, nil
}

// bounds reads the changelog's bounds; where that fails, the highest offset a member reports,
// plus one, stands in for each end (the previous owner's store is the freshest copy).
func (s *Strategy) bounds(ms []Member) map[int32]Bounds {
	if s.cfg.Bounds != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.BoundsTimeout)
		b, err := s.cfg.Bounds(ctx)
		cancel()
		if err == nil {
			return b
		}
		s.cfg.Logger.Warn("changelog offsets unreadable: lags estimated from the members' stores", "error", err.Error())
	}
	out := map[int32]Bounds{}
	for _, m := range ms {
		for p, off := range m.Stores {
			if b := out[p]; off+1 > b.End {
				out[p] = Bounds{End: off + 1}
			}
		}
	}
	return out
}

// copartitioned returns the partitions every topic has, or an error when they differ.
func copartitioned(topics map[string][]int32) ([]int32, error) {
	var first string
	var partitions []int32
	for topic, ps := range topics {
		sorted := slices.Sorted(slices.Values(ps))
		if first == "" {
			first, partitions = topic, sorted
			continue
		}
		if !slices.Equal(sorted, partitions) {
			return nil, fmt.Errorf("topics %s and %s are not co-partitioned: partitions %v and %v", first, topic, partitions, sorted)
		}
	}
	return partitions, nil
}

// AssignmentData implements sarama.BalanceStrategy: the member's standby and warm-up copies
// from the plan just made.
func (s *Strategy) AssignmentData(memberID string, _ map[string][]int32, _ int32) ([]byte, error) {
	s.mu.Lock()
	a := s.pending[memberID]
	s.mu.Unlock()
	return json.Marshal(a)
}

// OnAssignment implements sarama.OnAssignmentBalanceStrategy: it hands the member's
// assignment to Local before the session starts.
func (s *Strategy) OnAssignment(got *sarama.ConsumerGroupMemberAssignment, generation int32) {
	var a Assignment
	if got == nil {
		s.cfg.Local.Assigned(Assignment{Generation: generation})
		return
	}
	if len(got.UserData) > 0 {
		if err := json.Unmarshal(got.UserData, &a); err != nil {
			s.cfg.Logger.Warn("assignment data unreadable: no standby or warm-up copies this session", "error", err.Error())
			a = Assignment{}
		}
	}
	a.Generation = generation
	for _, ps := range got.Topics {
		a.Active = slices.Sorted(slices.Values(ps))
		break // the topics are co-partitioned: any one names the partitions
	}
	s.cfg.Local.Assigned(a)
}
