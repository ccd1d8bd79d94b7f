package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docker-compose.yml cannot run here (no Docker engine); this loads and validates it with the
// Compose specification's own loader, and checks that the enricher service can scale and is
// configured by ENRICHER_* variables that the binary accepts.
func TestComposeFileIsValid(t *testing.T) {
	t.Parallel()
	path := filepath.Join(repoRoot, "docker-compose.yml")
	opts, err := cli.NewProjectOptions([]string{path}, cli.WithName("enricher"), cli.WithWorkingDirectory(repoRoot))
	require.NoError(t, err)
	project, err := opts.LoadProject(context.Background())
	require.NoError(t, err, "the compose file is valid")

	for _, name := range []string{"kafka", "topics", "enricher"} {
		_, err := project.GetService(name)
		require.NoError(t, err, name)
	}
	kafka, _ := project.GetService("kafka")
	assert.True(t, strings.HasPrefix(kafka.Image, "apache/kafka:"), "the official Apache Kafka image")
	enricher, _ := project.GetService("enricher")
	assert.Empty(t, enricher.ContainerName, "a fixed container name would stop --scale")
	assert.Empty(t, enricher.Ports, "published host ports would clash between replicas")
	require.NotNil(t, enricher.Build)
	assert.Equal(t, "service_completed_successfully", enricher.DependsOn["topics"].Condition)

	// Every variable the services set is one the binary knows: `enricher run --help` lists them.
	help, _ := exec.Command(binary, "run", "--help").CombinedOutput()
	topicsHelp, _ := exec.Command(binary, "topics", "--help").CombinedOutput()
	for _, svc := range []string{"topics", "enricher"} {
		s, _ := project.GetService(svc)
		require.NotEmpty(t, s.Environment, svc)
		for k := range s.Environment {
			assert.True(t, strings.HasPrefix(k, "ENRICHER_"), "%s: %s", svc, k)
			assert.True(t, strings.Contains(string(help), "["+k+"]") || strings.Contains(string(topicsHelp), "["+k+"]"),
				"%s sets %s, which no flag reads", svc, k)
		}
	}

	dockerfile, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	require.NoError(t, err)
	assert.Contains(t, string(dockerfile), "CGO_ENABLED=0", "a static binary")
	assert.Contains(t, string(dockerfile), "USER 65532", "a non-root user")
}
