//go:build !unix

package auditqueryextension

import (
	"errors"
	"os"
)

// ownPrivateDir checks that dir is a directory and not a link; ownership and modes are
// not checked where they are not Unix ones.
func ownPrivateDir(dir string) error {
	info, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return errors.New("not a directory (a link or a file)")
	}
	return nil
}
