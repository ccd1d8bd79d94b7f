package web

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/enricher/enricher/internal/members"
)

// memberView is one member of the group on the group page.
type memberView struct {
	members.Member
	// Self marks the replica that answered.
	Self bool `json:"self"`
	// State is the member's processor state as it reports it, or "unreachable" (Error says why).
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// Lag is how many input and score records of its partitions the group has not committed.
	Lag int64 `json:"lag"`
	// Running is the member's own view of the partitions assigned to it.
	Running []partitionView `json:"running"`
}

// groupView is /api/group's body.
type groupView struct {
	Group   string       `json:"group"`
	State   string       `json:"state"`
	Members []memberView `json:"members"`
	// Lag is the group's lag by partition, over the input and scores topics.
	Lag   map[int32]int64 `json:"lag"`
	Error string          `json:"error,omitempty"`
}

// group answers /api/group: every member of the group, from the coordinator, with each
// member's own report of its partitions (asked of it, 1.5 s at most) and the group's lag.
func (s *Server) group(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	g, err := s.describe(ctx)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, groupView{Group: s.cfg.Topics.Group, Members: []memberView{}, Error: err.Error()})
		return
	}
	gv := groupView{Group: g.Name, State: g.State, Members: make([]memberView, len(g.Members))}
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	gv.Lag, err = s.cfg.Directory.Lag(lctx, s.cfg.Topics.Input, s.cfg.Topics.Scores)
	cancel()
	if err != nil {
		gv.Error = fmt.Sprintf("lag: %v", err)
	}
	var wg sync.WaitGroup
	for i, m := range g.Members {
		mv := memberView{Member: m, Self: m.Advert.ID == s.advert.ID, Running: []partitionView{}}
		for _, p := range m.Partitions {
			mv.Lag += gv.Lag[p]
		}
		gv.Members[i] = mv
		wg.Add(1)
		go func(mv *memberView) {
			defer wg.Done()
			s.report(ctx, mv)
		}(&gv.Members[i])
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, gv)
}

// report fills in a member's state and partitions from its own replica view.
func (s *Server) report(ctx context.Context, mv *memberView) {
	var rv replicaView
	switch {
	case mv.Self:
		rv = s.view(ctx)
	case mv.Advert.Web == "":
		mv.State, mv.Error = "unknown", "it advertises no web server"
		if mv.AdvertErr != "" {
			mv.Error += " (" + mv.AdvertErr + ")"
		}
		return
	default:
		ctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		if _, err := s.peer(ctx, mv.Advert.Web, "/api/replica", &rv); err != nil {
			mv.State, mv.Error = "unreachable", err.Error()
			return
		}
	}
	mv.State = rv.State
	for _, p := range rv.Partitions {
		if p.Mode == active {
			mv.Running = append(mv.Running, p)
		}
	}
}
