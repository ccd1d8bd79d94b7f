package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/lovoo/goka"

	"github.com/enricher/enricher/internal/job"
	"github.com/enricher/enricher/internal/members"
)

// answer is the body of GET /scores/{key}.
type answer struct {
	Key string `json:"key"`
	// Score is the key's score, null when it has none (404) or when no store could answer (503).
	Score     *int64 `json:"score"`
	Partition int32  `json:"partition"`
	// Owner is the web address of the replica the group assigned the key's partition to, when
	// known; AnsweredBy is the one whose store answered.
	Owner      string `json:"owner"`
	AnsweredBy string `json:"answered_by,omitempty"`
	// Standby is true for an answer from a standby or warm-up copy (--standby-replicas), given
	// because the owner could not answer: Reason says why. A copy can lag its owner.
	Standby bool   `json:"standby,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Note    string `json:"note,omitempty"`
}

// noScore is the note of a 404.
const noScore = "no score: inputs of this key get -1"

// localAnswer is what this replica's own store says about a key.
type localAnswer struct {
	status int
	answer answer
	mode   string // active, standby, or empty when the partition is not here
}

// local looks key up in this replica's copy of partition part. It answers 200 or 404 only
// from a partition that is recovered and running, and 503 with the reason otherwise: a store
// that is still restoring would give false "no score" answers.
func (s *Server) local(ctx context.Context, key string, part int32) localAnswer {
	return s.localIn(ctx, s.attached.Load(), key, part)
}

// localIn is local for the processor of attached (nil: none yet). goka's query page asks the
// processor its router was built for.
func (s *Server) localIn(ctx context.Context, attached *job.Attached, key string, part int32) localAnswer {
	la := localAnswer{status: http.StatusServiceUnavailable, answer: answer{Key: key, Partition: part, AnsweredBy: s.advert.Web}}
	if attached == nil {
		la.answer.Reason = "the processor has not started on this replica"
		return la
	}
	p := attached.Processor
	var pv *partitionView
	for _, v := range s.partitionViews(ctx, attached) {
		if v.Partition == part {
			pv = &v
			break
		}
	}
	switch {
	case pv == nil:
		la.answer.Reason = fmt.Sprintf("partition %d is not on this replica", part)
		return la
	case pv.Mode == active && !p.StateReader().IsState(goka.ProcStateRunning):
		la.mode = pv.Mode
		la.answer.Reason = "the processor on this replica is joining its group or recovering"
		return la
	case pv.State != "running":
		la.mode = pv.Mode
		la.answer.Reason = fmt.Sprintf("partition %d is %s on this replica (%d changelog records to restore)", part, pv.State, pv.Remaining)
		return la
	}
	la.mode = pv.Mode
	l, err := attached.Lookup(part, key)
	switch {
	case err != nil:
		la.answer.Reason = fmt.Sprintf("reading partition %d: %v", part, err)
	case !l.Open:
		la.answer.Reason = fmt.Sprintf("the store of partition %d is not open on this replica", part)
	case !l.Found:
		la.status, la.answer.Note = http.StatusNotFound, noScore
	default:
		la.status, la.answer.Score = http.StatusOK, &l.Score
	}
	return la
}

// router finds the answer to a key lookup anywhere in the group.
type router struct {
	self     members.Advert
	local    func(ctx context.Context, key string, part int32) localAnswer
	describe func(ctx context.Context) (members.Group, error)
	peer     func(ctx context.Context, web, path string, out any) (int, error)
}

// lookup answers for key, whose partition is part. The replica that owns the partition answers
// from its store; any other asks the owner the group's coordinator names. When no owner can
// answer (unreachable, rebalancing, recovering), a standby or warm-up copy here answers and
// says so; without one the answer is 503 with the reason, never a "no score" that may be false.
func (rt router) lookup(ctx context.Context, key string, part int32) (int, answer) {
	here := rt.local(ctx, key, part)
	if here.mode == active && here.status != http.StatusServiceUnavailable {
		here.answer.Owner = rt.self.Web
		return here.status, here.answer
	}
	var owner, why string
	g, err := rt.describe(ctx)
	switch {
	case err != nil:
		why = fmt.Sprintf("cannot learn the partition's owner: %v", err)
	case !g.Stable():
		why = fmt.Sprintf("the group is rebalancing (%s)", g.State)
	default:
		m, ok := g.Owner(part)
		owner = m.Advert.Web
		switch {
		case !ok:
			why = fmt.Sprintf("no member of the group owns partition %d", part)
		case m.Advert.ID == rt.self.ID && here.mode == active:
			why = here.answer.Reason
		case m.Advert.ID == rt.self.ID:
			why = fmt.Sprintf("the group assigned partition %d to this replica, which has not started it yet", part)
		case m.Advert.Web == "":
			why = fmt.Sprintf("the owner of partition %d, member %s, advertises no web server (%s)", part, m.ID, m.AdvertErr)
		default:
			var a answer
			status, err := rt.peer(ctx, m.Advert.Web, "/scores/"+url.PathEscape(key)+"?local=1", &a)
			switch {
			case err != nil:
				why = fmt.Sprintf("the owner of partition %d at %s is unreachable: %v", part, m.Advert.Web, err)
			case status == http.StatusOK || status == http.StatusNotFound:
				a.Owner = m.Advert.Web
				return status, a
			case a.Reason != "":
				why = fmt.Sprintf("the owner of partition %d at %s cannot answer: %s", part, m.Advert.Web, a.Reason)
			default:
				why = fmt.Sprintf("the owner of partition %d at %s answered %d", part, m.Advert.Web, status)
			}
		}
	}
	if (here.mode == standby || here.mode == warmup) && here.status != http.StatusServiceUnavailable {
		here.answer.Owner, here.answer.Standby = owner, true
		here.answer.Reason = why + "; this answer is from this replica's " + here.mode + " copy"
		return here.status, here.answer
	}
	return http.StatusServiceUnavailable, answer{Key: key, Partition: part, Owner: owner, Reason: why}
}

// scores answers GET /scores/{key}; with ?local=1 (a call from another replica) it answers
// from this replica's own partitions only, and only for a partition the group assigned here.
func (s *Server) scores(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if key == "" {
		writeJSON(w, http.StatusBadRequest, answer{Partition: -1, Reason: "no key: GET /scores/{key}"})
		return
	}
	a := s.attached.Load()
	if a == nil {
		writeJSON(w, http.StatusServiceUnavailable, answer{Key: key, Partition: -1, Reason: "the processor has not started on this replica"})
		return
	}
	part := s.partitionOf(a, key)
	if r.URL.Query().Has("local") {
		la := s.local(r.Context(), key, part)
		if la.mode != active && la.status != http.StatusServiceUnavailable {
			la.status, la.answer.Score, la.answer.Note = http.StatusServiceUnavailable, nil, ""
			la.answer.Reason = fmt.Sprintf("partition %d is not owned by this replica", part)
		}
		la.answer.Owner = s.advert.Web
		writeJSON(w, la.status, la.answer)
		return
	}
	rt := router{self: s.advert, local: s.local, describe: s.describe, peer: s.peer}
	status, body := rt.lookup(r.Context(), key, part)
	writeJSON(w, status, body)
}

// partitionOf is key's partition in a's table, hashed as the job's producers hash keys.
func (s *Server) partitionOf(a *job.Attached, key string) int32 {
	return s.cfg.Scheme.Partition([]byte(key), a.Layout.Partitions)
}

// describe asks the directory for the group.
func (s *Server) describe(ctx context.Context) (members.Group, error) {
	if s.cfg.Directory == nil {
		return members.Group{}, fmt.Errorf("this replica has no view of its group")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return s.cfg.Directory.Describe(ctx)
}
