package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpvx/mpvx/internal/harness"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
	"github.com/mpvx/mpvx/plugins/store"
)

// mpvxBin is the real binary, built once for every end-to-end test.
var mpvxBin string

func TestMain(m *testing.M) {
	os.Exit(harness.RunWithBinary(m.Run, "..", &mpvxBin))
}

// connector is one `mpvx streams` process running the real pipelines.
type connector struct {
	t    testing.TB
	cmd  *exec.Cmd
	log  string
	done chan error
}

// startConnector runs the named pipelines (file names under pipelines/)
// against the sandboxes, on the store at dsn.
func startConnector(t testing.TB, sb *harness.Sandboxes, dsn string, extraEnv map[string]string, pipelines ...string) *connector {
	t.Helper()
	addr, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"streams", "--no-api", "-o", "config/observability.yaml", "-r", "config/sandbox/resources.yaml"}
	for _, p := range pipelines {
		args = append(args, filepath.Join("pipelines", p+".yaml"))
	}
	cmd := exec.Command(mpvxBin, args...)
	cmd.Dir = ".."
	env := os.Environ()
	for k, v := range sb.ConnectorEnv(dsn, addr) {
		env = append(env, k+"="+v)
	}
	env = append(env, "MPVX_LOG_LEVEL=warn")
	for k, v := range extraEnv {
		env = append(env, k+"="+v)
	}
	cmd.Env = env
	logPath := filepath.Join(t.TempDir(), "mpvx.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &connector{t: t, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait(); _ = logFile.Close() }()
	t.Cleanup(func() {
		c.stop()
		// Under `go test -race` the binary is built with -race too: a race
		// in the connector is a failure of the test that ran it.
		if b, err := os.ReadFile(logPath); err == nil && strings.Contains(string(b), "WARNING: DATA RACE") {
			t.Errorf("the connector hit a data race; its log: %s\n%s", logPath, c.logTail())
		}
	})
	return c
}

// kill ends the process with SIGKILL: no shutdown, no flush.
func (c *connector) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	c.done <- nil
}

// stop asks the process to shut down and waits.
func (c *connector) stop() {
	select {
	case err := <-c.done:
		c.done <- err
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.done <- nil
}

// logTail returns the end of the connector's log for failure messages.
func (c *connector) logTail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// eventually polls cond every 100 ms until it returns "" or the deadline
// passes; the last explanation is reported.
func eventually(t testing.TB, within time.Duration, c *connector, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			tail := ""
			if c != nil {
				tail = "\nconnector log (end):\n" + c.logTail()
			}
			t.Fatalf("not reached within %s: %s%s", within, why, tail)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func openStore(t testing.TB, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func short(list []string) string {
	if len(list) > 5 {
		return strings.Join(list[:5], ", ") + fmt.Sprintf(" … (%d)", len(list))
	}
	return strings.Join(list, ", ")
}

// addFaults injects every rule into a sandbox's fault injector.
func addFaults(t testing.TB, f *sandboxkit.Faults, rules []sandboxkit.FaultRule) {
	t.Helper()
	for _, r := range rules {
		if err := f.Add(r); err != nil {
			t.Fatal(err)
		}
	}
}
