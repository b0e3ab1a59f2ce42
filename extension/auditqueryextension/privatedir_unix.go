//go:build unix

package auditqueryextension

import (
	"fmt"
	"os"
	"syscall"
)

// privateToUser checks that info is owned by this process's user, with no permission
// for anyone else.
func privateToUser(info os.FileInfo) error {
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("owned by uid %d, not by this process's %d", st.Uid, os.Geteuid())
	}
	if info.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("mode %v lets other users in; want 0700", info.Mode().Perm())
	}
	return nil
}
