// Package dlq reads enricher's dead-letter topic and redrives dead letters: each chosen record
// is published again to the topic and partition it came from, as it was (a truncated dead
// letter is fetched whole from its source), so that it is processed again once whatever
// rejected it has been fixed.
package dlq
