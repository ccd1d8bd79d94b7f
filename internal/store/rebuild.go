package store

import (
	"errors"
	"fmt"
	"os"

	"github.com/lovoo/goka/storage"
	"github.com/syndtr/goleveldb/leveldb"
)

// ErrExists means a local store is already where a rebuild would write.
var ErrExists = errors.New("local store already exists")

// Build writes a local store for one table partition offline, as goka would have left it
// after applying the changelog up to and including lastOffset: `run` then restores only what
// came after. values are the partition's latest value per key; lastOffset < 0 writes no offset
// (an empty changelog partition).
func Build(stateDir, topic string, partition int32, values map[string][]byte, lastOffset int64) error {
	path := Path(stateDir, topic, partition)
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%w: %s", ErrExists, path)
	}
	db, err := leveldb.OpenFile(path, nil)
	if err != nil {
		return fmt.Errorf("create local store %s: %w", path, err)
	}
	batch := new(leveldb.Batch)
	for k, v := range values {
		batch.Put([]byte(k), v)
		if batch.Len() >= 10000 {
			if err := db.Write(batch, nil); err != nil {
				_ = db.Close()
				return fmt.Errorf("write local store %s: %w", path, err)
			}
			batch.Reset()
		}
	}
	if err := db.Write(batch, nil); err != nil {
		_ = db.Close()
		return fmt.Errorf("write local store %s: %w", path, err)
	}
	// The offset goes through goka's storage so its key and encoding are goka's own.
	st, err := storage.New(db)
	if err != nil {
		_ = db.Close()
		return err
	}
	if lastOffset >= 0 {
		if err := st.MarkRecovered(); err != nil {
			_ = st.Close()
			return err
		}
		if err := st.SetOffset(lastOffset); err != nil {
			_ = st.Close()
			return err
		}
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("close local store %s: %w", path, err)
	}
	return nil
}
