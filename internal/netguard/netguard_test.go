package netguard

import (
	"strings"
	"testing"
)

func TestCheckBind(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		auth     bool
		wantErr  string
	}{
		{"localhost:4320", false, ""},
		{"127.0.0.1:4320", false, ""},
		{"[::1]:4320", false, ""},
		{"0.0.0.0:4320", false, "no authenticator"},
		{":4320", false, "no authenticator"},
		{"10.1.2.3:4320", false, "no authenticator"},
		{"0.0.0.0:4320", true, ""},
		{"", false, "must be set"},
		{"localhost", false, "not host:port"},
	} {
		err := CheckBind("endpoint", tc.endpoint, tc.auth)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%q auth=%v: unexpected error %v", tc.endpoint, tc.auth, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "endpoint") {
			t.Errorf("%q auth=%v: got %v, want error naming endpoint and containing %q", tc.endpoint, tc.auth, err, tc.wantErr)
		}
	}
}
