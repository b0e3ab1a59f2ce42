//go:build unix

package auditqueryextension

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ownPrivateDir checks that dir is a directory, not a link, that this process's user
// owns and no one else can enter.
func ownPrivateDir(dir string) error {
	info, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return errors.New("not a directory (a link or a file)")
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("owned by uid %d, not by this process's %d", st.Uid, os.Geteuid())
	}
	if info.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("mode %v lets other users in; want 0700", info.Mode().Perm())
	}
	return nil
}
