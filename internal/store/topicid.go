package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TopicIDFunc returns a topic's ID (KIP-516) as text, or "" when the cluster has none.
type TopicIDFunc func(ctx context.Context, topic string) (string, error)

// ErrChangelogRecreated means a local store was built from a changelog topic that no longer
// exists: a topic of the same name has another ID.
var ErrChangelogRecreated = errors.New("changelog topic was recreated")

// topicIDFile is the file in a store's directory that names the changelog topic, by ID, the store
// was built from. LevelDB ignores files it did not write.
const topicIDFile = "ENRICHER-CHANGELOG-ID"

// readTopicID returns the changelog ID the store at path records, "" for none.
func readTopicID(path string) (string, error) {
	b, err := os.ReadFile(filepath.Join(path, topicIDFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the changelog ID of local store %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// writeTopicID records in the store at path the ID of the changelog it is built from.
func writeTopicID(path, id string) error {
	if err := os.WriteFile(filepath.Join(path, topicIDFile), []byte(id+"\n"), 0o644); err != nil {
		return fmt.Errorf("record the changelog ID in local store %s: %w", path, err)
	}
	return nil
}
