package ledger

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// CheckpointOrigin is the first line of every checkpoint of an audit ledger.
const CheckpointOrigin = "otelcol-audit ledger"

// Checkpoint is the signed head of the ledger: how many entries it holds and the root of
// the Merkle tree over them. A saved checkpoint lets a verifier prove later that the
// ledger still begins with the same entries (tlog tree proofs).
type Checkpoint struct {
	Size int64
	Root tlog.Hash
}

// text is the signed body of the checkpoint.
func (c Checkpoint) text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", CheckpointOrigin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// signCheckpoint returns the signed note of c.
func signCheckpoint(c Checkpoint, s note.Signer) ([]byte, error) {
	return note.Sign(&note.Note{Text: c.text()}, s)
}

// OpenCheckpoint verifies a signed checkpoint with the verifier key vkey and parses it.
func OpenCheckpoint(msg []byte, vkey string) (Checkpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("public key: %w", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		// note.Open reports signatures by unknown keys as an UnverifiedNoteError (it
		// never returns UnknownVerifierError itself).
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) && len(unverified.Note.UnverifiedSigs) > 0 {
			s := unverified.Note.UnverifiedSigs[0]
			return Checkpoint{}, fmt.Errorf("signed by key %q (%08x), not by the given public key", s.Name, s.Hash)
		}
		return Checkpoint{}, fmt.Errorf("signature does not verify: %w", err)
	}
	return parseCheckpointText(n.Text)
}

func parseCheckpointText(text string) (Checkpoint, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 3 || lines[0] != CheckpointOrigin {
		return Checkpoint{}, errors.New("not an otelcol-audit ledger checkpoint")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		return Checkpoint{}, fmt.Errorf("bad tree size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("bad tree root %q", lines[2])
	}
	var c Checkpoint
	c.Size = size
	copy(c.Root[:], root)
	return c, nil
}
