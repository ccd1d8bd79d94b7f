package assign

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/enricher/enricher/internal/members"
)

// fakeLocal is a member's own side: fixed data, and the assignments it was told.
type fakeLocal struct {
	data MemberData
	mu   sync.Mutex
	got  []Assignment
}

func (f *fakeLocal) MemberData() MemberData { return f.data }
func (f *fakeLocal) Assigned(a Assignment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, a)
}

// A whole round of the group protocol as sarama runs it: every member's data, the leader's
// plan and per-member data, each member told its copies.
func TestStrategyRoundTrip(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	locals := map[string]*fakeLocal{
		"m-a": {data: MemberData{Advert: members.Advert{ID: "a", Web: "127.0.0.1:1"}, Process: "p1", Active: []int32{0, 1, 2, 3},
			Stores: map[int32]int64{0: 99, 1: 99, 2: 99, 3: 99}}},
		"m-b": {data: MemberData{Advert: members.Advert{ID: "b"}, Process: "p2"}},
	}
	strategies := map[string]*Strategy{}
	group := map[string]sarama.ConsumerGroupMemberMetadata{}
	for id, l := range locals {
		strategies[id] = New(Config{Settings: Settings{StandbyReplicas: 1, MaxWarmups: 2, AcceptableLag: 10}, Local: l, Logger: quiet,
			Bounds: func(context.Context) (map[int32]Bounds, error) { return full(4, 100), nil }})
		ud, err := strategies[id].SubscriptionUserData([]string{"input", "scores"})
		require.NoError(t, err)
		adv, err := members.Decode(ud)
		require.NoError(t, err, "internal/members still reads the advert in the member data")
		assert.Equal(t, l.data.Advert, adv)
		group[id] = sarama.ConsumerGroupMemberMetadata{UserData: ud}
	}
	leader := strategies["m-a"]
	plan, err := leader.Plan(group, map[string][]int32{"input": {0, 1, 2, 3}, "scores": {3, 2, 1, 0}})
	require.NoError(t, err)
	assert.Equal(t, sarama.BalanceStrategyPlan{
		"m-a": {"input": {0, 1, 2, 3}, "scores": {0, 1, 2, 3}},
		"m-b": {"input": {}, "scores": {}},
	}, plan, "the joiner warms up; the owner keeps processing")
	for id, topics := range plan {
		ud, err := leader.AssignmentData(id, topics, 7)
		require.NoError(t, err)
		strategies[id].OnAssignment(&sarama.ConsumerGroupMemberAssignment{Topics: topics, UserData: ud}, 7)
	}
	assert.Equal(t, []Assignment{{Generation: 7, Active: []int32{0, 1, 2, 3}}}, locals["m-a"].got)
	assert.Equal(t, []Assignment{{Generation: 7, Standby: []int32{0, 1}, Warmup: []int32{2, 3}}}, locals["m-b"].got)
}

func TestStrategyRefusesTopicsNotCopartitioned(t *testing.T) {
	s := New(Config{Local: &fakeLocal{}})
	_, err := s.Plan(map[string]sarama.ConsumerGroupMemberMetadata{"m": {}}, map[string][]int32{"input": {0, 1}, "scores": {0, 1, 2}})
	assert.ErrorContains(t, err, "not co-partitioned")
}

// Without the changelog's offsets, the freshest store a member reports stands in for the end,
// and unreadable member data plans a member without stores.
func TestStrategyWithoutBounds(t *testing.T) {
	s := New(Config{Settings: Settings{MaxWarmups: 1, AcceptableLag: 5}, Local: &fakeLocal{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Bounds: func(context.Context) (map[int32]Bounds, error) { return nil, errors.New("broker away") }})
	owner, _ := json.Marshal(MemberData{Process: "1", Active: []int32{0, 1}, Stores: map[int32]int64{0: 500, 1: 500}})
	joiner, _ := json.Marshal(MemberData{Process: "2", Stores: map[int32]int64{1: 498}})
	plan, err := s.Plan(map[string]sarama.ConsumerGroupMemberMetadata{
		"o": {UserData: owner}, "j": {UserData: joiner}, "x": {UserData: []byte("{not json")},
	}, map[string][]int32{"input": {0, 1}})
	require.NoError(t, err)
	assert.Equal(t, []int32{1}, plan["j"]["input"], "a store 2 records behind the freshest one is caught up")
	assert.Equal(t, []int32{0}, plan["o"]["input"])
	assert.Empty(t, plan["x"]["input"])
}
