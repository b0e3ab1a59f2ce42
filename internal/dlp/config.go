package dlp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Action is what happens to a match of a detector.
type Action string

const (
	// ActionRedact replaces the match by [REDACTED:<kind>], or by
	// [HMAC:<kind>:<hex>] when Config.HMACKey is set.
	ActionRedact Action = "redact"
	// ActionBlock drops the whole top-level attribute that contains the match; the span is
	// kept. Span name, status message and event names cannot be dropped: they become
	// [BLOCKED:<kinds>].
	ActionBlock Action = "block"
	// ActionOff disables the detector; the same as leaving the kind out of Detectors.
	ActionOff Action = "off"
)

// MinHMACKeyBytes is the shortest HMAC key accepted.
const MinHMACKeyBytes = 32

// Config chooses the detectors, their actions and the key names masked wholesale.
type Config struct {
	// Detectors maps a kind name (see Kinds) to its action. A kind not listed is off.
	Detectors map[string]Action `mapstructure:"detectors"`
	// HMACKey, when set, replaces redacted matches by a keyed HMAC-SHA256 of the match,
	// [HMAC:<kind>:<32 hex>], instead of [REDACTED:<kind>]; equal secrets then correlate
	// without being revealed. Nil means placeholders. Load it with LoadHMACKey.
	HMACKey []byte `mapstructure:"-"`
	// SecretKeyNames are attribute key names whose values are masked wholesale, whatever
	// their type (kind secret_key_name). A name matches a key case-insensitively when its
	// segments are the last segments of the key, segments being separated by '.', '_',
	// '-', ' ' or a camelCase boundary: "password" matches "db.password", "user_password"
	// and "userPassword"; "token" does not match "gen_ai.usage.input_tokens" nor
	// "llm.token_count.prompt". The same names are recognised in text, in key:value,
	// key=value and JSON "key":"value" forms.
	SecretKeyNames []string `mapstructure:"secret_key_names"`
	// PIIExemptKeys are top-level attribute keys (exact, case-sensitive) whose values are
	// not scanned for personal data (credit_card, ssn, email, phone) — for attributes the
	// trail must keep, such as user.email. Credentials are still masked in them.
	PIIExemptKeys []string `mapstructure:"pii_exempt_keys"`
	// MaxValueBytes, when positive, bounds a string that masking made longer (a
	// placeholder is often longer than its match): it is cut back to this many bytes, or
	// to its length before masking if that was longer. The audit processor sets it to
	// limits::max_attribute_bytes, so that a value it cut stays within the limit.
	MaxValueBytes int `mapstructure:"-"`
}

// defaultSecretKeyNames is the default list of SecretKeyNames.
var defaultSecretKeyNames = []string{
	"authorization", "proxy-authorization", "cookie", "set-cookie",
	"password", "passwd", "passphrase",
	"secret", "client_secret", "secret_key",
	"token", "access_token", "refresh_token", "id_token", "session_token",
	"api_key", "apikey", "x-api-key", "access_key", "private_key",
	"credential", "credentials", "connection_string", "dsn",
}

// DefaultSecretKeyNames returns a copy of the default secret key names.
func DefaultSecretKeyNames() []string { return append([]string(nil), defaultSecretKeyNames...) }

// DefaultConfig returns every detector set to redact, placeholders (no HMAC key) and
// the default secret key names.
func DefaultConfig() Config {
	d := make(map[string]Action, numKinds)
	for _, n := range kindNames {
		d[n] = ActionRedact
	}
	return Config{Detectors: d, SecretKeyNames: DefaultSecretKeyNames()}
}

// Validate checks kinds, actions, key names and the HMAC key length.
func (c *Config) Validate() error {
	var errs []error
	names := make([]string, 0, len(c.Detectors))
	for n := range c.Detectors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, ok := kindByName(n); !ok {
			errs = append(errs, fmt.Errorf("detectors: unknown kind %q, use one of %s",
				n, strings.Join(kindNames[:], ", ")))
			continue
		}
		switch a := c.Detectors[n]; a {
		case ActionRedact, ActionBlock, ActionOff:
		default:
			errs = append(errs, fmt.Errorf("detectors::%s: unknown action %q, use %s, %s or %s",
				n, a, ActionRedact, ActionBlock, ActionOff))
		}
	}
	for i, n := range c.SecretKeyNames {
		if len(segmentsOf(n)) == 0 {
			errs = append(errs, fmt.Errorf("secret_key_names[%d]: name %q has no letters or digits", i, n))
		}
	}
	for i, n := range c.PIIExemptKeys {
		if n == "" {
			errs = append(errs, fmt.Errorf("pii_exempt_keys[%d]: key must not be empty", i))
		}
	}
	if c.HMACKey != nil && len(c.HMACKey) < MinHMACKeyBytes {
		errs = append(errs, fmt.Errorf("hmac key: must be at least %d bytes, got %d", MinHMACKeyBytes, len(c.HMACKey)))
	}
	return errors.Join(errs...)
}

// LoadHMACKey reads an HMAC key from a file. Surrounding whitespace (a trailing newline)
// is trimmed; what remains, used as is, must be at least MinHMACKeyBytes long — e.g. the
// output of `head -c 32 /dev/urandom | base64`.
func LoadHMACKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dlp: reading HMAC key file: %w", err)
	}
	k := bytes.TrimSpace(b)
	if len(k) < MinHMACKeyBytes {
		return nil, fmt.Errorf("dlp: HMAC key file %s: the key must be at least %d bytes after trimming surrounding whitespace, got %d",
			path, MinHMACKeyBytes, len(k))
	}
	return k, nil
}
