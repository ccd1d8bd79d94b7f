package main

import (
	"flag"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/enricher/enricher/internal/kafkaconf"
	"github.com/enricher/enricher/topology"
)

// setup is what every subcommand that talks to Kafka repeats: a flag set with the job's flags
// (the command adds its own), the environment and the command line read into it with no stray
// argument left, and then the job's Kafka settings and topics.
type setup struct {
	fs  *flag.FlagSet
	job jobFlags
	// kc and topics are the job's, once parse returned.
	kc     kafkaconf.Config
	topics topology.Topics
}

// newSetup returns the setup of the subcommand name, whose --help shows synopsis.
func newSetup(env *environment, name, synopsis string) *setup {
	s := &setup{fs: newFlags(name, synopsis, env.stderr)}
	s.job.register(s.fs)
	return s
}

// parse reads the environment and then args into the flags, refuses more than maxArgs
// positional arguments after them, and resolves the job's settings.
func (s *setup) parse(args []string, maxArgs int) error {
	if err := parseArgs(s.fs, args, maxArgs); err != nil {
		return err
	}
	var err error
	s.kc, s.topics, err = s.job.resolve()
	return err
}

// admin returns an admin client of the job's cluster; closing it closes its client.
func (s *setup) admin() (*kadm.Client, error) { return s.kc.Admin() }

// parseArgs is parse, refusing more than maxArgs positional arguments after the flags.
func parseArgs(fs *flag.FlagSet, args []string, maxArgs int) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > maxArgs {
		return usagef("unexpected argument %q", fs.Arg(maxArgs))
	}
	return nil
}
