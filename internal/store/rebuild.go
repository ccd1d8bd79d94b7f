package store

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/lovoo/goka/storage"
	"github.com/syndtr/goleveldb/leveldb"
)

// ErrExists means a local store is already where a rebuild would write.
var ErrExists = errors.New("local store already exists")

// Build writes a local store for one table partition offline, as goka would have left it after
// applying the changelog up to and including lastOffset: `run` then restores only what came
// after. It applies changelog records [from, lastOffset] with read, a batch at a time, so memory
// stays bounded whatever the partition's size; lastOffset < from writes an empty store with no
// offset (an empty changelog partition). It returns the records applied.
func Build(ctx context.Context, read PartitionReader, stateDir, topic string, partition int32, from, lastOffset int64) (int64, error) {
	path := Path(stateDir, topic, partition)
	if _, err := os.Stat(path); err == nil {
		return 0, fmt.Errorf("%w: %s", ErrExists, path)
	}
	db, err := leveldb.OpenFile(path, nil)
	if err != nil {
		return 0, fmt.Errorf("create local store %s: %w", path, err)
	}
	n, err := Apply(ctx, read, db, topic, partition, from, lastOffset+1, func(int64) {})
	if err != nil {
		_ = db.Close()
		return n, fmt.Errorf("build local store %s: %w", path, err)
	}
	// The offset goes through goka's storage so its key and encoding are goka's own.
	st, err := storage.New(db)
	if err != nil {
		_ = db.Close()
		return n, err
	}
	if lastOffset >= 0 {
		if err := st.MarkRecovered(); err != nil {
			_ = st.Close()
			return n, err
		}
		if err := st.SetOffset(lastOffset); err != nil {
			_ = st.Close()
			return n, err
		}
	}
	if err := errors.Join(flushMemtable(db), st.Close()); err != nil {
		return n, fmt.Errorf("close local store %s: %w", path, err)
	}
	return n, nil
}
