package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The subcommands that take flags; "all" in the reference means every one of them.
var flagCommands = []string{"run", "dev", "produce", "consume", "topics", "savepoint", "replay", "table", "dlq"}

var (
	helpFlagRE    = regexp.MustCompile(`^  --([a-z0-9-]+)  \[`)
	helpDefaultRE = regexp.MustCompile(`\(default (.*)\)$`)
)

// helpFlags returns the flags `enricher CMD --help` lists, with their defaults ("" for none).
func helpFlags(t *testing.T, cmd string) map[string]string {
	t.Helper()
	out, _ := exec.Command(binary, cmd, "--help").CombinedOutput()
	flags := map[string]string{}
	lines := strings.Split(string(out), "\n")
	for i, line := range lines {
		m := helpFlagRE.FindStringSubmatch(line)
		if m == nil || i+1 >= len(lines) {
			continue
		}
		def := ""
		if d := helpDefaultRE.FindStringSubmatch(lines[i+1]); d != nil {
			def = d[1]
		}
		flags[m[1]] = def
	}
	require.NotEmpty(t, flags, "enricher %s --help lists no flags:\n%s", cmd, out)
	return flags
}

// referenceRow is one row of the configuration reference: its flags, their defaults in order,
// and the commands it names.
type referenceRow struct {
	flags, defaults, commands []string
}

var codeRE = regexp.MustCompile("`([^`]*)`")

func readReference(t *testing.T) []referenceRow {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "operations.md"))
	require.NoError(t, err)
	var rows []referenceRow
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		cells := strings.Split(line, " | ")
		require.GreaterOrEqual(t, len(cells), 3, line)
		var r referenceRow
		for _, m := range codeRE.FindAllStringSubmatch(cells[0], -1) {
			r.flags = append(r.flags, strings.TrimPrefix(m[1], "--"))
		}
		for _, m := range codeRE.FindAllStringSubmatch(cells[1], -1) {
			r.defaults = append(r.defaults, m[1])
		}
		r.commands = commandsOf(t, cells[2])
		rows = append(rows, r)
	}
	require.NotEmpty(t, rows, "no flag rows in docs/operations.md")
	return rows
}

// commandsOf reads a commands cell: "all", "all but dev", or "run, dev, topics".
func commandsOf(t *testing.T, cell string) []string {
	t.Helper()
	switch {
	case cell == "all":
		return flagCommands
	case strings.HasPrefix(cell, "all but "):
		but := strings.Split(strings.TrimPrefix(cell, "all but "), ", ")
		var out []string
		for _, c := range flagCommands {
			if !slices.Contains(but, c) {
				out = append(out, c)
			}
		}
		return out
	}
	out := strings.Split(cell, ", ")
	for _, c := range out {
		require.Contains(t, flagCommands, c, "unknown command %q in the reference", c)
	}
	return out
}

// The configuration reference in docs/operations.md says, for each flag, the commands that take
// it and its default: both are checked against every subcommand's --help, and every flag of
// run and dev must be in the reference.
func TestConfigurationReference(t *testing.T) {
	help := map[string]map[string]string{}
	for _, c := range flagCommands {
		help[c] = helpFlags(t, c)
	}
	documented := map[string]bool{}
	for _, r := range readReference(t) {
		for i, f := range r.flags {
			documented[f] = true
			var has []string
			for _, c := range flagCommands {
				if _, ok := help[c][f]; ok {
					has = append(has, c)
				}
			}
			want := slices.Clone(r.commands)
			sort.Strings(want)
			sort.Strings(has)
			assert.Equal(t, want, has, "--%s: the commands the reference names, against those whose --help lists it", f)
			if len(has) == 0 {
				continue
			}
			def := help[has[0]][f]
			if i < len(r.defaults) {
				assert.Equal(t, def, r.defaults[i], "--%s: default in the reference", f)
			} else {
				assert.Empty(t, def, "--%s: the reference gives no default", f)
			}
		}
	}
	for _, c := range []string{"run", "dev"} {
		for f := range help[c] {
			assert.True(t, documented[f], "--%s of %s is not in the configuration reference", f, c)
		}
	}
}
