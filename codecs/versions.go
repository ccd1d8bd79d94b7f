package codecs

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Version is a key's score from a record timestamp on (Unix milliseconds).
type Version struct {
	At    int64
	Score int64
}

// Versions is a key's scores by timestamp, oldest first: the table value of the as-of join,
// so the changelog, and with it every restore, rescale and replay, keeps the history.
type Versions struct {
	Key  string
	List []Version
	// Pruned says versions older than List[0] were dropped: an input stamped before List[0]
	// had a score that is no longer known.
	Pruned bool
}

// Latest returns the version with the highest timestamp; v must not be empty.
func (v Versions) Latest() Version { return v.List[len(v.List)-1] }

// Add sets the score from at on; a version at the same timestamp is replaced, so the later
// record of two stamped alike wins, as records of one key are read in offset order.
func (v *Versions) Add(at, score int64) {
	i := sort.Search(len(v.List), func(i int) bool { return v.List[i].At >= at })
	if i < len(v.List) && v.List[i].At == at {
		v.List[i].Score = score
		return
	}
	v.List = slices.Insert(v.List, i, Version{At: at, Score: score})
	if extra := len(v.List) - MaxVersions; extra > 0 {
		v.List = slices.Clone(v.List[extra:])
		v.Pruned = true
	}
}

// MaxVersions bounds a key's history: Add keeps the newest MaxVersions versions and drops older
// ones (setting Pruned). A version is about 30 bytes in the changelog, so a full history is about
// 300 KB, within Kafka's default 1 MB message limit: a key updated often inside a long window
// cannot grow a table record the changelog refuses.
const MaxVersions = 10_000

// Prune drops what no input within history of the newest version needs: the versions before
// newest-history, except the last of them, which is the score at the window's start.
func (v *Versions) Prune(history time.Duration) {
	cutoff := v.Latest().At - history.Milliseconds()
	i := sort.Search(len(v.List), func(i int) bool { return v.List[i].At > cutoff })
	if i > 1 {
		v.List = slices.Clone(v.List[i-1:])
		v.Pruned = true
	}
}

// ScoreAt returns the score valid at t: that of the latest version stamped at or before t.
// found is false when t is before every version.
func (v Versions) ScoreAt(t int64) (score int64, found bool) {
	i := sort.Search(len(v.List), func(i int) bool { return v.List[i].At > t })
	if i == 0 {
		return 0, false
	}
	return v.List[i-1].Score, true
}

// wireVersions is a Versions as JSON. "score" is the latest version's, so a reader of the
// table that knows only Score (table get, replay --dump) sees the latest score.
type wireVersions struct {
	Key      string     `json:"key"`
	Score    *int64     `json:"score"`
	Versions [][2]int64 `json:"versions,omitempty"`
	Pruned   bool       `json:"pruned,omitempty"`
}

// VersionsCodec is the goka codec of the group table in the as-of join.
type VersionsCodec struct{}

// Encode accepts a non-empty Versions or *Versions.
func (VersionsCodec) Encode(value any) ([]byte, error) {
	var v Versions
	switch x := value.(type) {
	case Versions:
		v = x
	case *Versions:
		v = *x
	default:
		return nil, fmt.Errorf("versions codec: cannot encode %T", value)
	}
	if len(v.List) == 0 {
		return nil, fmt.Errorf("versions codec: key %q has no version", v.Key)
	}
	latest := v.Latest().Score
	w := wireVersions{Key: v.Key, Score: &latest, Pruned: v.Pruned, Versions: make([][2]int64, len(v.List))}
	for i, ver := range v.List {
		w.Versions[i] = [2]int64{ver.At, ver.Score}
	}
	return json.Marshal(w)
}

// Decode returns Versions. A plain Score, as a table kept by the latest-score join holds, is a
// score valid since the beginning: a group moves to the as-of join without a rebuild.
func (VersionsCodec) Decode(data []byte) (any, error) {
	var w wireVersions
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("versions codec: %w", err)
	}
	if len(w.Versions) == 0 {
		if w.Score == nil {
			return nil, fmt.Errorf("versions codec: value has neither versions nor a score")
		}
		return Versions{Key: w.Key, List: []Version{{At: BeforeAll, Score: *w.Score}}}, nil
	}
	v := Versions{Key: w.Key, Pruned: w.Pruned, List: make([]Version, len(w.Versions))}
	for i, p := range w.Versions {
		if i > 0 && p[0] <= w.Versions[i-1][0] {
			return nil, fmt.Errorf("versions codec: versions of key %q are not in timestamp order", w.Key)
		}
		v.List[i] = Version{At: p[0], Score: p[1]}
	}
	return v, nil
}

// BeforeAll is the timestamp of a score valid since the beginning.
const BeforeAll int64 = -1 << 63
