package savepoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/enricher/enricher/topology"
)

// FormatVersion is the version of the savepoint file format this package reads and writes.
const FormatVersion = 1

// NoOffset marks a partition on which the group had committed nothing: a restore starts such a
// partition at its oldest offset, as a new group would.
const NoOffset int64 = -1

// ErrInvalid is a savepoint file that is malformed or inconsistent.
var ErrInvalid = errors.New("invalid savepoint")

// Savepoint is the content of a savepoint file.
type Savepoint struct {
	Format      int       `json:"format"`
	ToolVersion string    `json:"tool_version"`
	Created     time.Time `json:"created"`
	Group       string    `json:"group"`
	// Exact is true when the cut is exact: the group had no live members, so nothing moved
	// while it was taken, or it commits in transactions (Transactional).
	Exact bool `json:"exact"`
	// Transactional is true when the group commits its offsets and table writes in exactly-once
	// transactions: the cut lies between two of them, and the table offsets are stable offsets.
	Transactional bool   `json:"transactional,omitempty"`
	Partitions    int32  `json:"partitions"`
	Input         Topic  `json:"input"`
	Scores        Topic  `json:"scores"`
	Table         Topic  `json:"table"`
	Note          string `json:"note,omitempty"`
	// TableCompactionLagMs is the table topic's min.compaction.lag.ms when the savepoint was
	// taken: the savepoint is usable for that long (see Usable). Absent from savepoints of
	// earlier versions.
	TableCompactionLagMs int64 `json:"table_min_compaction_lag_ms,omitempty"`
}

// RecordedLag is the table's min.compaction.lag.ms when the savepoint was taken; 0 when the
// savepoint predates the field.
func (sp *Savepoint) RecordedLag() time.Duration {
	return time.Duration(sp.TableCompactionLagMs) * time.Millisecond
}

// ErrTooOld is a savepoint older than its table topic's min.compaction.lag.ms: the log cleaner
// may have removed values its cut of the changelog holds.
var ErrTooOld = errors.New("savepoint older than the changelog's compaction lag")

// Usable says whether the savepoint's cut of the changelog is whole at now, when the table topic
// has min.compaction.lag.ms of lag. The log cleaner removes a key's record only for a later
// record of the key that is itself older than lag; a record written after the cut is older than
// lag only once the savepoint is, so until then every value the cut holds is still there.
func (sp *Savepoint) Usable(lag time.Duration, now time.Time) error {
	if age := now.Sub(sp.Created); age >= lag {
		return fmt.Errorf("%w: taken %s ago, and table topic %q has min.compaction.lag.ms=%d, so compaction may have removed "+
			"values the savepoint's cut needs (restored, such a key would lose its score); take a new savepoint, and raise "+
			"--savepoint-retention (the topic's min.compaction.lag.ms) to keep savepoints usable longer",
			ErrTooOld, age.Round(time.Second), sp.Table.Name, lag.Milliseconds())
	}
	return nil
}

// Topic is one topic and an offset per partition: committed offsets for input and scores
// (NoOffset where none), end offsets for the table.
type Topic struct {
	Name    string  `json:"name"`
	Offsets []int64 `json:"offsets"`
}

// Parse reads and validates a savepoint file. Unknown fields are refused: a file of a newer
// format must not be half understood.
func Parse(r io.Reader) (*Savepoint, error) {
	data, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read savepoint: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var sp Savepoint
	if err := dec.Decode(&sp); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the savepoint object", ErrInvalid)
	}
	if err := sp.Validate(); err != nil {
		return nil, err
	}
	return &sp, nil
}

// Validate checks the savepoint's own consistency.
func (sp *Savepoint) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case sp.Format != FormatVersion:
		return bad("format %d, this enricher reads format %d", sp.Format, FormatVersion)
	case strings.TrimSpace(sp.Group) == "":
		return bad("no group")
	case sp.Partitions <= 0 || sp.Partitions > 1<<20:
		return bad("partitions %d", sp.Partitions)
	case sp.Created.IsZero():
		return bad("no creation time")
	}
	names := map[string]bool{}
	for _, t := range []struct {
		role  string
		topic Topic
		min   int64
	}{{"input", sp.Input, NoOffset}, {"scores", sp.Scores, NoOffset}, {"table", sp.Table, 0}} {
		if strings.TrimSpace(t.topic.Name) == "" {
			return bad("%s topic has no name", t.role)
		}
		if names[t.topic.Name] {
			return bad("topic %q appears twice", t.topic.Name)
		}
		names[t.topic.Name] = true
		if int32(len(t.topic.Offsets)) != sp.Partitions {
			return bad("%s topic %q has %d offsets for %d partitions", t.role, t.topic.Name, len(t.topic.Offsets), sp.Partitions)
		}
		for p, o := range t.topic.Offsets {
			if o < t.min {
				return bad("%s topic %q partition %d has offset %d", t.role, t.topic.Name, p, o)
			}
		}
	}
	if want := (topology.Topics{Group: sp.Group}).Table(); sp.Table.Name != want {
		return bad("table topic %q is not the group's table %q", sp.Table.Name, want)
	}
	return nil
}

// Encode writes the savepoint as indented JSON.
func (sp *Savepoint) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sp); err != nil {
		return fmt.Errorf("write savepoint: %w", err)
	}
	return nil
}

// Summary writes a readable summary.
func (sp *Savepoint) Summary(w io.Writer) error {
	kind := "at-least-once cut (replicas were running)"
	switch {
	case sp.Transactional:
		kind = "exact (a cut between two exactly-once transactions)"
	case sp.Exact:
		kind = "exact (no replica was running)"
	}
	fmt.Fprintf(w, "savepoint of group %q, taken %s by enricher %s\n", sp.Group, sp.Created.UTC().Format(time.RFC3339), sp.ToolVersion)
	fmt.Fprintf(w, "kind:       %s\n", kind)
	fmt.Fprintf(w, "partitions: %d\n", sp.Partitions)
	if sp.Note != "" {
		fmt.Fprintf(w, "note:       %s\n", sp.Note)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "partition\t%s (committed)\t%s (committed)\t%s (end)\t\n", sp.Input.Name, sp.Scores.Name, sp.Table.Name)
	var tableOffsets int64
	for p := int32(0); p < sp.Partitions; p++ {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t\n", p, offset(sp.Input.Offsets[p]), offset(sp.Scores.Offsets[p]), sp.Table.Offsets[p])
		tableOffsets += sp.Table.Offsets[p]
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Not a record count: compaction and retention leave fewer records than the offsets span,
	// and the savepoint does not hold where each partition starts.
	if _, err := fmt.Fprintf(w, "changelog end offsets at the cut, summed over partitions: %d\n", tableOffsets); err != nil {
		return err
	}
	if sp.TableCompactionLagMs <= 0 {
		_, err := fmt.Fprintf(w, "usable until: unknown (taken before savepoints recorded the table's compaction lag; restore checks the topic)\n")
		return err
	}
	_, err := fmt.Fprintf(w, "usable until: %s (table min.compaction.lag.ms=%d when taken)\n",
		sp.Created.Add(sp.RecordedLag()).UTC().Format(time.RFC3339), sp.TableCompactionLagMs)
	return err
}

func offset(o int64) string {
	if o == NoOffset {
		return "none"
	}
	return fmt.Sprint(o)
}

// Until returns the table's recorded end offsets by partition, for changelog.Read.
func (sp *Savepoint) Until() map[int32]int64 {
	out := make(map[int32]int64, len(sp.Table.Offsets))
	for p, o := range sp.Table.Offsets {
		out[int32(p)] = o
	}
	return out
}
