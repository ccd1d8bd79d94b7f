package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/changelog"
	"github.com/enricher/enricher/internal/scratch"
	"github.com/enricher/enricher/internal/store"
)

func cmdTable(ctx context.Context, env *environment, args []string) error {
	var logs logFlags
	var timeout time.Duration
	var replica, stateDir, token string
	s := newSetup(env, "table", "table get KEY [--from-replica URL | --from-state-dir DIR] | table dump  (the table's committed records, read from its changelog)")
	fs := s.fs
	logs.register(fs)
	fs.DurationVar(&timeout, "timeout", 2*time.Minute, "how long reading the table may take")
	fs.StringVar(&replica, "from-replica", "", "get: ask this replica's web server (http://HOST:PORT), which answers from the store of the key's owner")
	fs.StringVar(&stateDir, "from-state-dir", "", "get: read the key from the local store in this state directory (of a stopped replica that owned its partition)")
	fs.StringVar(&token, "web-token", "", "get: the replica's --web-token, with --from-replica")
	action, rest, err := subcommand(fs, args, "get", "dump")
	if err != nil {
		return err
	}
	var key string
	if action == "get" {
		if key, rest, err = positional(rest, "table get", "KEY"); err != nil {
			return err
		}
	}
	if err := s.parse(rest, 0); err != nil {
		return err
	}
	if _, err := logs.logger(env.stderr); err != nil {
		return err
	}
	kc, topics := s.kc, s.topics
	if action == "get" && replica != "" && stateDir != "" {
		return usagef("--from-replica and --from-state-dir: want at most one")
	}
	if action == "get" && replica != "" {
		return askReplica(ctx, env, replica, token, key, timeout)
	}
	adm, err := s.admin()
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	bounds, err := changelog.Offsets(ctx, adm, topics.Table())
	if err != nil {
		return err
	}
	if action == "get" {
		// The key's partition by the configured scheme: where the processor looks it up.
		p := kc.Partitioner.Partition([]byte(key), int32(len(bounds)))
		if stateDir != "" {
			return readLocal(env, store.Path(stateDir, topics.Table(), p), key)
		}
		// Neither a replica nor a store: the key's changelog partition is the one place left
		// that holds it, read whole.
		b := bounds[p]
		var value []byte
		err := changelog.ReadPartition(ctx, kc, topics.Table(), p, b.Start, b.End, func(rs []*kgo.Record, _ int64) error {
			for _, r := range rs {
				if string(r.Key) == key {
					value = r.Value
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read %s/%d: %w", topics.Table(), p, tableErr(ctx, err, timeout))
		}
		if value == nil {
			return fmt.Errorf("key %q has no score", key)
		}
		v, err := codecs.ScoreCodec{}.Decode(value)
		if err != nil {
			return fmt.Errorf("table value of %q: %w", key, err)
		}
		return json.NewEncoder(env.stdout).Encode(codecs.Score{Key: key, Score: v.(codecs.Score).Score})
	}
	t, err := scratch.New("")
	if err != nil {
		return err
	}
	defer t.Close()
	if _, err := scratch.Load(ctx, kc, adm, t, topics.Table(), nil, nil, nil); err != nil {
		return fmt.Errorf("read %s: %w", topics.Table(), tableErr(ctx, err, timeout))
	}
	return dumpTable(env.stdout, t)
}

// askReplica asks a replica's /scores/{key} and prints the answer as a {key, score} line.
func askReplica(ctx context.Context, env *environment, replica, token, key string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(replica, "/")+"/scores/"+url.PathEscape(key), nil)
	if err != nil {
		return usagef("--from-replica: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask %s: %w", replica, err)
	}
	defer resp.Body.Close()
	var a struct {
		Score  *int64 `json:"score"`
		Reason string `json:"reason"`
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("ask %s: %w", replica, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("key %q has no score", key)
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("ask %s: %s (pass the replica's --web-token)", replica, resp.Status)
	case resp.StatusCode != http.StatusOK || json.Unmarshal(body, &a) != nil || a.Score == nil:
		_ = json.Unmarshal(body, &a)
		return fmt.Errorf("ask %s: %s %s", replica, resp.Status, a.Reason)
	}
	return json.NewEncoder(env.stdout).Encode(codecs.Score{Key: key, Score: *a.Score})
}

// readLocal reads one key from the local store at path. LevelDB lets one process open a store:
// a running replica's must be asked with --from-replica instead.
func readLocal(env *environment, path, key string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no local store of the key's partition at %s: %w", path, err)
	}
	db, err := leveldb.OpenFile(path, &opt.Options{ReadOnly: true, ErrorIfMissing: true})
	if err != nil {
		return fmt.Errorf("open local store %s (a running replica holds it: ask it with --from-replica): %w", path, err)
	}
	defer db.Close()
	value, err := db.Get([]byte(key), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return fmt.Errorf("key %q has no score in %s", key, path)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	v, err := codecs.ScoreCodec{}.Decode(value)
	if err != nil {
		return fmt.Errorf("table value of %q: %w", key, err)
	}
	return json.NewEncoder(env.stdout).Encode(codecs.Score{Key: key, Score: v.(codecs.Score).Score})
}

// tableErr names the timeout when it ended a read.
func tableErr(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("not read within --timeout %s: %w", timeout, err)
	}
	return err
}
