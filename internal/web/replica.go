package web

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/lovoo/goka"

	"github.com/enricher/enricher/internal/consumergroup"
	"github.com/enricher/enricher/internal/job"
)

// partitionState is where the table of one partition stands.
type partitionState struct {
	Partition int32  `json:"partition"`
	State     string `json:"state"`
	Offset    int64  `json:"offset"`
	HWM       int64  `json:"hwm"`
}

var stateNames = map[goka.PartitionStatus]string{
	goka.PartitionStopped: "stopped", goka.PartitionInitializing: "initializing", goka.PartitionConnecting: "connecting",
	goka.PartitionRecovering: "recovering", goka.PartitionPreparing: "preparing", goka.PartitionRunning: "running",
}

var procStateNames = map[goka.State]string{
	goka.ProcStateIdle: "idle", goka.ProcStateStarting: "starting", goka.ProcStateSetup: "joining",
	goka.ProcStateRunning: "running", goka.ProcStateStopping: "stopping", goka.ProcStateStopped: "stopped",
}

// tableState is where the table of one partition stands, from goka's stats and from
// job.Stats for a store restored ahead of goka (goka shows it as initializing), and how
// many changelog records it has still to restore.
func tableState(part int32, ps *goka.PartitionProcStats, stats *job.Stats) (st partitionState, remaining int64) {
	st = partitionState{Partition: part, State: "unknown"}
	if ts := ps.TableStats; ts != nil {
		st.State = stateNames[ts.Status]
		if ts.Recovery != nil {
			st.Offset, st.HWM = ts.Recovery.Offset, ts.Recovery.Hwm
			if ts.Status != goka.PartitionRunning && st.HWM > st.Offset {
				remaining = st.HWM - st.Offset
			}
		}
	}
	if rp, ok := stats.Restoring(part); ok {
		st.State, st.Offset, st.HWM = "recovering", rp.Offset, rp.HWM
		remaining = rp.HWM - 1 - rp.Offset
	}
	return st, remaining
}

// Modes of a partition a replica runs.
const (
	active  = "active"  // the group assigned it here: its inputs are processed here
	standby = "standby" // a standby copy (--standby-replicas) of a partition another replica owns
	warmup  = "warm-up" // a copy restored here to take the partition over once it is caught up
)

// partitionView is one partition this replica runs, as the monitor shows it.
type partitionView struct {
	partitionState
	Mode      string `json:"mode"`
	Remaining int64  `json:"remaining"`
	// InputOffset and ScoresOffset are the last offsets an active partition consumed of each
	// topic, and InputLag and ScoresLag how far behind the topic's end it is (goka's stats).
	InputOffset  int64 `json:"input_offset"`
	ScoresOffset int64 `json:"scores_offset"`
	InputLag     int64 `json:"input_lag"`
	ScoresLag    int64 `json:"scores_lag"`
	// RecoveryStarted and Recovered are when goka began and finished restoring the table.
	RecoveryStarted *time.Time `json:"recovery_started,omitempty"`
	Recovered       *time.Time `json:"recovered,omitempty"`
	// Input and Output are goka's counts since this processor started, by topic.
	Input   map[string]topicInput `json:"input"`
	Output  map[string]uint       `json:"output"`
	Waiting *consumergroup.Wait   `json:"waiting,omitempty"`
}

// topicInput is what a partition consumed of one topic.
type topicInput struct {
	Records    uint  `json:"records"`
	LastOffset int64 `json:"last_offset"`
	Lag        int64 `json:"lag"`
}

// counters are the replica's totals since it started: the monitor shows their rates.
type counters struct {
	Inputs         int64 `json:"inputs"`
	Outputs        int64 `json:"outputs"`
	OutputsNoScore int64 `json:"outputs_no_score"`
	Scores         int64 `json:"scores"`
	DeadLetters    int64 `json:"dead_letters"`
	Restarts       int64 `json:"restarts"`
	Rebalances     int64 `json:"rebalances"`
}

// replicaView is this replica as /api/replica answers, the data of the monitor page and of a
// member's row on the group page.
type replicaView struct {
	ID         string          `json:"id"`
	Web        string          `json:"web"`
	Group      string          `json:"group"`
	Table      string          `json:"table"`
	State      string          `json:"state"`
	Partitions []partitionView `json:"partitions"`
	Counters   counters        `json:"counters"`
	Time       time.Time       `json:"time"`
}

// partitionViews returns the partitions a's processor runs and the copies this replica keeps,
// sorted, each with its mode and state.
func (s *Server) partitionViews(ctx context.Context, a *job.Attached) []partitionView {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	stats := a.Processor.StatsWithContext(ctx)
	waiting := map[int32]*consumergroup.Wait{}
	for _, ps := range s.cfg.Stats.Alignment.Partitions() {
		if w := ps.Waiting(); w != nil {
			waiting[ps.ID()] = w
		}
	}
	out := make([]partitionView, 0, len(stats.Group))
	for part, ps := range stats.Group {
		st, remaining := tableState(part, ps, s.cfg.Stats)
		// goka runs the partitions the group assigned here, and no others.
		v := partitionView{partitionState: st, Mode: active, Remaining: remaining, Waiting: waiting[part],
			Input: map[string]topicInput{}, Output: map[string]uint{}}
		if ts := ps.TableStats; ts != nil && ts.Recovery != nil {
			if t := ts.Recovery.StartTime; !t.IsZero() {
				v.RecoveryStarted = &t
			}
			if t := ts.Recovery.RecoveryTime; !t.IsZero() {
				v.Recovered = &t
			}
		}
		for topic, in := range ps.Input {
			v.Input[topic] = topicInput{Records: in.Count, LastOffset: in.LastOffset, Lag: in.OffsetLag}
		}
		in, sc := v.Input[s.cfg.Topics.Input], v.Input[s.cfg.Topics.Scores]
		v.InputOffset, v.ScoresOffset, v.InputLag, v.ScoresLag = in.LastOffset, sc.LastOffset, in.Lag, sc.Lag
		for topic, o := range ps.Output {
			v.Output[topic] = o.Count
		}
		out = append(out, v)
	}
	if a.Copies != nil {
		for part, c := range a.Copies() {
			if _, running := stats.Group[part]; running {
				continue // handed over to goka this moment
			}
			v := partitionView{partitionState: partitionState{Partition: part, State: "running", Offset: c.Offset, HWM: c.End},
				Mode: standby, Input: map[string]topicInput{}, Output: map[string]uint{}}
			if c.Warmup {
				v.Mode = warmup
			}
			if c.End < 0 {
				v.State = "recovering" // no fetch answered yet
			} else {
				v.Remaining = max(0, c.End-(c.Offset+1))
			}
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out
}

// view returns this replica's state.
func (s *Server) view(ctx context.Context) replicaView {
	st := s.cfg.Stats
	dlq := int64(0)
	for _, n := range st.DeadLettered() {
		dlq += n
	}
	v := replicaView{ID: s.advert.ID, Web: s.advert.Web, Group: s.cfg.Topics.Group, Table: s.cfg.Topics.Table(),
		State: "not started", Partitions: []partitionView{}, Time: time.Now(),
		Counters: counters{Inputs: st.InputsConsumed.Load(), Outputs: st.OutputsEmitted.Load(), OutputsNoScore: st.OutputsNoScore.Load(),
			Scores: st.ScoresApplied.Load(), DeadLetters: dlq, Restarts: st.Restarts.Load(), Rebalances: st.Rebalances.Load()}}
	if p := s.current(); p != nil {
		v.State = procStateNames[p.StateReader().State()]
		v.Partitions = s.partitionViews(ctx, s.attached.Load())
	}
	return v
}

// replica answers /api/replica.
func (s *Server) replica(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.view(r.Context()))
}

// waitingPartition is a partition of /readyz's body that holds a record back for one topic.
type waitingPartition struct {
	Partition int32 `json:"partition"`
	consumergroup.Wait
}

// registryWait is /readyz's account of a schema registry whose last request failed.
type registryWait struct {
	Since    time.Time `json:"since"`
	Error    string    `json:"error"`
	Failures int64     `json:"failures"`
}

// recoveringPartition is a partition of /readyz's body that is not running yet.
type recoveringPartition struct {
	partitionState
	Mode string `json:"mode"`
}

// readyz is 200 when the processor runs with every partition the group assigned it recovered,
// else 503. Its body lists every partition on this replica that is not running yet, with its
// mode; standby and warm-up copies do not hold readiness up.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	body := struct {
		Ready      bool                  `json:"ready"`
		Reason     string                `json:"reason,omitempty"`
		Owned      []int32               `json:"owned"`
		Recovering []recoveringPartition `json:"recovering"`
		// Waiting lists owned partitions holding a record back for their other topic
		// (timestamp alignment); a waiting partition is still ready.
		Waiting []waitingPartition `json:"waiting"`
		// SchemaRegistry is the wait for the schema registry, while its last request failed.
		SchemaRegistry *registryWait `json:"schema_registry,omitempty"`
	}{Owned: []int32{}, Recovering: []recoveringPartition{}, Waiting: []waitingPartition{}}
	if st, ok := s.cfg.Stats.Registry(); ok && st.Waiting != nil {
		body.SchemaRegistry = &registryWait{Since: st.Since, Error: st.Waiting.Error(), Failures: st.Failures}
	}
	p := s.current()
	switch {
	case body.SchemaRegistry != nil:
		// Records whose schemas are not cached wait: the processor restarts on them with
		// backoff until the registry answers, so the replica is not ready meanwhile.
		body.Reason = "waiting for the schema registry"
	case p == nil:
		body.Reason = "the processor has not started"
	default:
		activeRecovering := false
		for _, pv := range s.partitionViews(r.Context(), s.attached.Load()) {
			if pv.State != "running" {
				body.Recovering = append(body.Recovering, recoveringPartition{partitionState: pv.partitionState, Mode: pv.Mode})
			}
			if pv.Mode != active {
				continue
			}
			body.Owned = append(body.Owned, pv.Partition)
			activeRecovering = activeRecovering || pv.State != "running"
			if pv.Waiting != nil {
				body.Waiting = append(body.Waiting, waitingPartition{Partition: pv.Partition, Wait: *pv.Waiting})
			}
		}
		switch {
		case !p.StateReader().IsState(goka.ProcStateRunning):
			body.Reason = "the processor is joining its group or recovering"
		case activeRecovering:
			body.Reason = "partitions are recovering"
		default:
			body.Ready = true
		}
	}
	status := http.StatusOK
	if !body.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}
