// Package netguard holds the bind-address rule shared by every listener of the
// distribution: the audit trail is reachable from other machines only behind an
// authenticator.
package netguard

import (
	"fmt"
	"net"
	"strings"
)

// CheckBind refuses an endpoint that listens beyond this machine when no authenticator
// is configured. field names the config key in the message, e.g. "endpoint".
func CheckBind(field, endpoint string, hasAuth bool) error {
	if endpoint == "" {
		return fmt.Errorf("%s must be set, e.g. localhost:4320", field)
	}
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return fmt.Errorf("%s %q is not host:port: %w", field, endpoint, err)
	}
	if hasAuth || IsLoopback(host) {
		return nil
	}
	return fmt.Errorf("%s %q accepts connections from other machines but no authenticator is configured: "+
		"bind to localhost (e.g. localhost:%s) or set auth::authenticator", field, endpoint, portOf(endpoint))
}

// IsLoopback reports whether host names only this machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func portOf(endpoint string) string {
	_, port, _ := net.SplitHostPort(endpoint)
	return port
}
