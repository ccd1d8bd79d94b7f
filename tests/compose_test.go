package tests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docker-compose.yml, loaded and validated with the Compose specification's own loader: the
// enricher service can scale, every service is on the host's network (the configuration the
// tests run), and every variable the services set is one the binary reads.
func TestComposeFileIsValid(t *testing.T) {
	t.Parallel()
	path := filepath.Join(repoRoot, "docker-compose.yml")
	opts, err := cli.NewProjectOptions([]string{path}, cli.WithName("enricher"), cli.WithWorkingDirectory(repoRoot))
	require.NoError(t, err)
	project, err := opts.LoadProject(context.Background())
	require.NoError(t, err, "the compose file is valid")

	for _, name := range []string{"kafka", "topics", "enricher"} {
		s, err := project.GetService(name)
		require.NoError(t, err, name)
		assert.Equal(t, "host", s.NetworkMode, "%s on the host's network", name)
		assert.True(t, strings.HasSuffix(s.Image, ":local"), "%s runs an image built here by scripts/images.sh, not %s", name, s.Image)
	}
	enricher, _ := project.GetService("enricher")
	assert.Empty(t, enricher.ContainerName, "a fixed container name would stop --scale")
	assert.Empty(t, enricher.Ports, "published host ports would clash between replicas")
	if addr := enricher.Environment["ENRICHER_WEB_ADDR"]; assert.NotNil(t, addr) {
		assert.Equal(t, "127.0.0.1:0", *addr, "replicas on one network need ports of their own")
	}
	assert.Equal(t, types.ServiceConditionCompletedSuccessfully, enricher.DependsOn["topics"].Condition)

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
	assert.Contains(t, string(dockerfile), "FROM scratch", "nothing but the binary")
	assert.Contains(t, string(dockerfile), "USER 65532", "a non-root user")
	images, err := os.ReadFile(filepath.Join(repoRoot, "scripts/images.sh"))
	require.NoError(t, err)
	assert.Contains(t, string(images), "CGO_ENABLED=0", "a static binary")
}

// docker-compose.yml run for real, with Debian's docker-compose and Docker engine and the images
// scripts/images.sh builds here: Kafka and one replica come up, inputs flow, the group scales
// to three replicas, one replica's process is SIGKILLed (Docker restarts its container, which
// keeps its state), and every input has its output with its key's score. The stack is taken
// down at the end.
func TestComposeRun(t *testing.T) {
	t.Parallel()
	compose := needTool(t, "docker-compose")
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Docker engine (scripts/test.sh starts one): %v\n%s", err, out)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot, "scripts/images.sh"))
	build.Dir = repoRoot
	out, err := build.CombinedOutput()
	require.NoError(t, err, "scripts/images.sh:\n%s", out)

	kafkaPort := freePort(t)
	j := newJobOn(t, fmt.Sprintf("127.0.0.1:%d", kafkaPort))
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	project := "enricher-test-" + hex.EncodeToString(b)
	env := append(os.Environ(), "KAFKA_PORT="+strconv.Itoa(kafkaPort), "KAFKA_CONTROLLER_PORT="+strconv.Itoa(freePort(t)),
		"ENRICHER_GROUP="+j.topics.Group, "ENRICHER_INPUT="+j.topics.Input, "ENRICHER_SCORES="+j.topics.Scores,
		"ENRICHER_OUTPUT="+j.topics.Output, "ENRICHER_PARTITIONS=6")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, compose, append([]string{"-p", project, "-f", filepath.Join(repoRoot, "docker-compose.yml")}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "docker-compose %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			cmd := exec.Command(compose, "-p", project, "-f", filepath.Join(repoRoot, "docker-compose.yml"), "logs", "--no-color", "--tail", "40")
			cmd.Env = env
			logs, _ := cmd.CombinedOutput()
			t.Logf("docker-compose logs:\n%s", logs)
		}
		down := exec.Command(compose, "-p", project, "-f", filepath.Join(repoRoot, "docker-compose.yml"), "down", "-v", "-t", "10")
		down.Env = env
		if out, err := down.CombinedOutput(); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
	})

	began := time.Now()
	run("up", "-d", "--scale", "enricher=1")
	j.waitMembers(1)
	t.Logf("Kafka, the topics and one replica up in %s", time.Since(began).Round(time.Millisecond))
	c, l := j.steadyLoad(200)

	run("up", "-d", "--no-recreate", "--scale", "enricher=3")
	j.waitMembers(3)
	c.waitProgress(t, 200)

	ids := strings.Fields(run("ps", "-q", "enricher"))
	require.Len(t, ids, 3)
	pidOut, err := exec.Command("docker", "inspect", "-f", "{{.State.Pid}}", ids[len(ids)-1]).Output()
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidOut)))
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL), "the replica's process, as a crash")
	killed := time.Now()
	c.waitProgress(t, 200)
	j.waitMembers(3) // Docker restarted the container (restart: unless-stopped)
	t.Logf("replica pid %d SIGKILLed; three members again after %s", pid, time.Since(killed).Round(time.Millisecond))
	c.waitProgress(t, 200)

	sent := l.stop()
	v := j.settle(c, sent)
	v.report(t, sent)
	assert.Zero(t, sent-v.unique, "inputs without an output")
	assert.Zero(t, c.wrongScores(want(60, 1000)), "outputs without their key's score")
	t.Logf("compose run: %d inputs, %d duplicates, took %s", sent, v.duplicates, time.Since(began).Round(time.Millisecond))
}

// waitMembers waits until the job's group is stable with n members, each with partitions.
func (j *job) waitMembers(n int) {
	j.t.Helper()
	require.EventuallyWithT(j.t, func(c *assert.CollectT) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		groups, err := j.adm.DescribeGroups(ctx, j.topics.Group)
		if !assert.NoError(c, err) {
			return
		}
		g := groups[j.topics.Group]
		assert.Equal(c, "Stable", g.State)
		assert.Len(c, g.Members, n)
	}, 3*time.Minute, 500*time.Millisecond, "group %s stable with %d members", j.topics.Group, n)
}
