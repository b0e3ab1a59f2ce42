package auditqueryextension

import (
	"errors"
	"os"
)

// ownPrivateDir checks that dir is a directory, not a link, that this process's user
// owns and no one else can enter (where the system has Unix owners and modes).
func ownPrivateDir(dir string) error {
	info, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return errors.New("not a directory (a link or a file)")
	}
	return privateToUser(info)
}
