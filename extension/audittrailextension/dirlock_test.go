//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly || illumos

package audittrailextension

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

const holdLockEnv = "AUDITTRAIL_TEST_HOLD_LOCK"

// TestHoldLockHelper is not a test: run by TestLockHeldByAnotherProcess as a child
// process, it holds the flock of the file named by holdLockEnv until its stdin closes.
func TestHoldLockHelper(t *testing.T) {
	path := os.Getenv(holdLockEnv)
	if path == "" {
		t.Skip("a helper process of TestLockHeldByAnotherProcess")
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}

// Another process holding the lock is reported as another process even when the lock
// file's text carries this process's pid (containers in their own PID namespaces are
// all pid 1): whether the holder is this collector is known from within it.
func TestLockHeldByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, auditschema.LockFile)
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf("host other, pid %d, writer other-pod, since 2026-12-04T00:00:00Z\n", os.Getpid())), 0o644))
	child := exec.Command(os.Args[0], "-test.run=^TestHoldLockHelper$")
	child.Env = append(os.Environ(), holdLockEnv+"="+path)
	stdin, err := child.StdinPipe()
	require.NoError(t, err)
	stdout, err := child.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, child.Start())
	defer func() { _ = stdin.Close(); _ = child.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked", strings.TrimSpace(line))

	_, err = lockDirectory(dir, "me")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is being written by another process (host other, pid ")
	assert.NotContains(t, err.Error(), "in this collector")

	require.NoError(t, stdin.Close())
	require.NoError(t, child.Wait())
	l, err := lockDirectory(dir, "me")
	require.NoError(t, err, "the lock is free once its holder exits")
	text, _ := os.ReadFile(path)
	host, _ := os.Hostname()
	assert.Contains(t, string(text), fmt.Sprintf("host %s, pid %d, writer me, since ", host, os.Getpid()))
	_, err = lockDirectory(dir, "again")
	require.ErrorContains(t, err, "another audittrail extension in this collector already writes to "+dir)
	require.NoError(t, unlockDirectory(l))
}
