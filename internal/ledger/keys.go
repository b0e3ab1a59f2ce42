package ledger

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// KeyName is the name of the signing key in signed checkpoints.
const KeyName = "otelcol-audit"

// LoadOrCreateKey reads the signing key from keyFile, creating it (mode 0600, in a
// directory of mode 0700) when it does not exist. It returns the signer and the matching
// verifier key and reports whether the key was created.
func LoadOrCreateKey(keyFile string) (note.Signer, string, bool, error) {
	b, err := os.ReadFile(keyFile)
	if errors.Is(err, os.ErrNotExist) {
		skey, vkey, err := note.GenerateKey(rand.Reader, KeyName)
		if err != nil {
			return nil, "", false, fmt.Errorf("generate signing key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
			return nil, "", false, fmt.Errorf("signing key %s: %w", keyFile, err)
		}
		if err := WriteFileDurable(keyFile, []byte(skey+"\n"), 0o600); err != nil {
			return nil, "", false, fmt.Errorf("signing key %s: %w", keyFile, err)
		}
		s, err := note.NewSigner(skey)
		return s, vkey, true, err
	}
	if err != nil {
		return nil, "", false, fmt.Errorf("signing key %s: %w", keyFile, err)
	}
	skey := strings.TrimSpace(string(b))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", false, fmt.Errorf("signing key %s is not a signing key: %w", keyFile, err)
	}
	vkey, err := verifierKeyOf(skey)
	if err != nil {
		return nil, "", false, fmt.Errorf("signing key %s: %w", keyFile, err)
	}
	return s, vkey, false, nil
}

// verifierKeyOf derives the verifier key from a note signing key
// ("PRIVATE+KEY+<name>+<hash>+<base64(alg || seed)>").
func verifierKeyOf(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("malformed signing key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	// The key is one algorithm byte (1: Ed25519) followed by the 32-byte seed.
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("malformed signing key: not an Ed25519 key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}
