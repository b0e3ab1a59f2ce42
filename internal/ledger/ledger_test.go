package ledger

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
)

func newKey(t testing.TB) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, KeyName)
	require.NoError(t, err)
	s, err := note.NewSigner(skey)
	require.NoError(t, err)
	return s, vkey
}

// sealed writes a file under dataDir/spans/<partition>/<name> and returns a seal entry
// recording it, so that Verify can check the result end to end.
func sealed(t testing.TB, dataDir, partition, name, source string, content []byte) Entry {
	t.Helper()
	rel := "spans/" + partition + "/" + name
	path := filepath.Join(dataDir, filepath.FromSlash(rel))
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, content, 0o444))
	sum := sha256.Sum256(content)
	var d Digest
	d.Add(sha256.Sum256([]byte(name)))
	return Entry{Kind: KindSeal, Writer: "test", Source: source, File: &FileRecord{
		Path: rel, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), Rows: 1,
		MinTime: time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC), MaxTime: time.Date(2026, 11, 22, 4, 59, 0, 0, time.UTC),
		Digest: d.String(),
	}}
}

func entriesPath(dir string) string { return filepath.Join(dir, Dir, EntriesFile) }

func readEntryLines(t testing.TB, dir string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(entriesPath(dir))
	require.NoError(t, err)
	if len(b) == 0 {
		return nil
	}
	require.True(t, bytes.HasSuffix(b, []byte("\n")))
	return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

func readCheckpoint(t testing.TB, dir, vkey string) (Checkpoint, []byte) {
	t.Helper()
	msg, err := os.ReadFile(filepath.Join(dir, Dir, CheckpointFile))
	require.NoError(t, err)
	cp, err := OpenCheckpoint(msg, vkey)
	require.NoError(t, err)
	return cp, msg
}

func requireIntact(t testing.TB, dir string, opts VerifyOptions) *Report {
	t.Helper()
	rep, err := Verify(dir, opts)
	require.NoError(t, err)
	require.True(t, rep.Intact, "findings: %v", rep.Findings)
	return rep
}

func TestOpenAppendReopen(t *testing.T) {
	dir := t.TempDir()
	s, v := newKey(t)

	l, res, err := Open(dir, s, v)
	require.NoError(t, err)
	assert.Equal(t, OpenResult{PublicKey: v}, res)
	cp, _ := readCheckpoint(t, dir, v)
	assert.Equal(t, int64(0), cp.Size)
	pub, err := os.ReadFile(filepath.Join(dir, Dir, PublicKeyFile))
	require.NoError(t, err)
	assert.Equal(t, v+"\n", string(pub))

	out, err := l.Append(
		sealed(t, dir, "date=2026-11-22/hour=04", "a-000001.parquet", "wal/a-000001.wal", []byte("first file")),
		sealed(t, dir, "date=2026-11-22/hour=05", "a-000002.parquet", "wal/a-000001.wal", []byte("second file")),
		sealed(t, dir, "date=2026-11-22/hour=05", "a-000003.parquet", "wal/a-000002.wal", []byte("third file")),
	)
	require.NoError(t, err)
	require.Len(t, out, 3)
	lines := readEntryLines(t, dir)
	require.Len(t, lines, 3)
	for i, e := range out {
		assert.Equal(t, int64(i), e.Seq)
		assert.False(t, e.Time.IsZero())
		if i == 0 {
			assert.Equal(t, "", e.Prev)
		} else {
			assert.Equal(t, lineHash(lines[i-1]), e.Prev)
		}
	}
	assert.Equal(t, int64(3), l.Size())
	assert.Len(t, l.Live(), 3)
	assert.True(t, l.HasSealed("wal/a-000001.wal", "date=2026-11-22/hour=05"))
	assert.False(t, l.HasSealed("wal/a-000002.wal", "date=2026-11-22/hour=04"))
	first, firstMsg := readCheckpoint(t, dir, v)
	assert.Equal(t, int64(3), first.Size)
	require.NoError(t, l.Close())

	// Reopen: the chain continues from the stored last line.
	l, res, err = Open(dir, s, v)
	require.NoError(t, err)
	assert.Equal(t, int64(3), res.Entries)
	assert.False(t, res.TornTail)
	assert.False(t, res.KeyRotated)
	assert.Len(t, l.Live(), 3)
	assert.True(t, l.HasSealed("wal/a-000002.wal", "date=2026-11-22/hour=05"), "sources index rebuilt on open")
	out, err = l.Append(sealed(t, dir, "date=2026-11-22/hour=06", "b-000001.parquet", "wal/b-000001.wal", []byte("fourth")))
	require.NoError(t, err)
	assert.Equal(t, int64(3), out[0].Seq)
	assert.Equal(t, lineHash(lines[2]), out[0].Prev)
	// A retention entry removes files from the live set.
	out, err = l.Append(Entry{Kind: KindRetention, Partition: "date=2026-11-22/hour=04", Deleted: []FileRecord{*out[0].File}})
	require.NoError(t, err)
	assert.Equal(t, int64(4), out[0].Seq)
	assert.Len(t, l.Live(), 3)
	require.NoError(t, os.Remove(filepath.Join(dir, "spans", "date=2026-11-22", "hour=06", "b-000001.parquet")))
	require.NoError(t, l.Close())

	second, _ := readCheckpoint(t, dir, v)
	assert.Equal(t, int64(5), second.Size, "the checkpoint grows with the ledger")
	assert.NotEqual(t, first.Root, second.Root)

	// The earlier checkpoint covers a prefix of the grown ledger.
	rep := requireIntact(t, dir, VerifyOptions{PublicKey: v, TrustedCheckpoint: firstMsg})
	assert.Equal(t, int64(5), rep.Entries)
	assert.Equal(t, int64(5), rep.Signed)
	assert.Equal(t, 3, rep.Files)
}

func TestOpenCutsTornTail(t *testing.T) {
	dir := t.TempDir()
	s, v := newKey(t)
	l, _, err := Open(dir, s, v)
	require.NoError(t, err)
	_, err = l.Append(
		sealed(t, dir, "date=2026-11-22/hour=04", "a-1.parquet", "wal/1.wal", []byte("one")),
		sealed(t, dir, "date=2026-11-22/hour=04", "a-2.parquet", "wal/1.wal", []byte("two")),
	)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	good, err := os.ReadFile(entriesPath(dir))
	require.NoError(t, err)

	// A crash in the middle of an append leaves a line without its newline.
	f, err := os.OpenFile(entriesPath(dir), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"seq":2,"time":"2026-11-22T04:`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	l, res, err := Open(dir, s, v)
	require.NoError(t, err)
	assert.True(t, res.TornTail)
	assert.Equal(t, int64(2), res.Entries)
	after, err := os.ReadFile(entriesPath(dir))
	require.NoError(t, err)
	assert.Equal(t, good, after, "the torn line is cut, the complete ones kept")

	out, err := l.Append(sealed(t, dir, "date=2026-11-22/hour=04", "a-3.parquet", "wal/2.wal", []byte("three")))
	require.NoError(t, err)
	lines := readEntryLines(t, dir)
	require.Len(t, lines, 3)
	assert.Equal(t, int64(2), out[0].Seq)
	assert.Equal(t, lineHash(lines[1]), out[0].Prev)
	require.NoError(t, l.Close())
	requireIntact(t, dir, VerifyOptions{PublicKey: v})

	_, res, err = Open(dir, s, v)
	require.NoError(t, err)
	assert.False(t, res.TornTail)
}

func TestOpenRefusesBrokenChain(t *testing.T) {
	build := func(t *testing.T) (string, note.Signer, string, [][]byte) {
		dir := t.TempDir()
		s, v := newKey(t)
		l, _, err := Open(dir, s, v)
		require.NoError(t, err)
		for i := range 4 {
			_, err = l.Append(sealed(t, dir, "date=2026-11-22/hour=04", fmt.Sprintf("f-%d.parquet", i), "wal/1.wal", []byte{byte(i)}))
			require.NoError(t, err)
		}
		require.NoError(t, l.Close())
		return dir, s, v, readEntryLines(t, dir)
	}
	write := func(t *testing.T, dir string, lines [][]byte) []byte {
		b := append(bytes.Join(lines, []byte("\n")), '\n')
		require.NoError(t, os.WriteFile(entriesPath(dir), b, 0o644))
		return b
	}
	for name, tc := range map[string]struct {
		tamper func(t *testing.T, lines [][]byte) [][]byte
		want   string
	}{
		"reordered": {
			tamper: func(_ *testing.T, lines [][]byte) [][]byte { lines[1], lines[2] = lines[2], lines[1]; return lines },
			want:   "ledger entry 1 at byte",
		},
		"edited": {
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				var e Entry
				require.NoError(t, json.Unmarshal(lines[1], &e))
				e.File.Rows = 99
				b, err := json.Marshal(&e)
				require.NoError(t, err)
				lines[1] = b
				return lines
			},
			// Entry 1 still claims the right predecessor; entry 2 no longer chains to it.
			want: "ledger entry 2 at byte",
		},
		"removed": {
			tamper: func(_ *testing.T, lines [][]byte) [][]byte { return append(lines[:1], lines[2:]...) },
			want:   "ledger entry 1 at byte",
		},
		"not JSON": {
			tamper: func(_ *testing.T, lines [][]byte) [][]byte { lines[3] = []byte("{garbage"); return lines },
			want:   "ledger entry 3 at byte",
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir, s, v, lines := build(t)
			before := write(t, dir, tc.tamper(t, lines))
			cpBefore, err := os.ReadFile(filepath.Join(dir, Dir, CheckpointFile))
			require.NoError(t, err)

			l, _, err := Open(dir, s, v)
			require.Error(t, err)
			assert.Nil(t, l)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "auditctl verify")

			after, err := os.ReadFile(entriesPath(dir))
			require.NoError(t, err)
			assert.Equal(t, before, after, "a refused ledger is left as found")
			cpAfter, err := os.ReadFile(filepath.Join(dir, Dir, CheckpointFile))
			require.NoError(t, err)
			assert.Equal(t, cpBefore, cpAfter, "no checkpoint is signed over a broken chain")
		})
	}
}

func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	sa, va := newKey(t)
	sb, vb := newKey(t)
	require.NotEqual(t, va, vb)

	l, _, err := Open(dir, sa, va)
	require.NoError(t, err)
	_, err = l.Append(sealed(t, dir, "date=2026-11-22/hour=04", "a.parquet", "wal/1.wal", []byte("a")))
	require.NoError(t, err)
	require.NoError(t, l.Close())

	l, res, err := Open(dir, sb, vb)
	require.NoError(t, err)
	assert.True(t, res.KeyRotated)
	assert.Equal(t, vb, res.PublicKey)
	assert.Equal(t, int64(2), res.Entries)
	assert.Equal(t, int64(2), l.Size())
	require.NoError(t, l.Close())

	lines := readEntryLines(t, dir)
	require.Len(t, lines, 2)
	var rot Entry
	require.NoError(t, json.Unmarshal(lines[1], &rot))
	assert.Equal(t, KindKeyRotation, rot.Kind)
	assert.Equal(t, int64(1), rot.Seq)
	assert.Equal(t, lineHash(lines[0]), rot.Prev)
	assert.Equal(t, vb, rot.PublicKey)
	assert.Contains(t, rot.Note, va, "the rotation names the previous key")

	pub, err := os.ReadFile(filepath.Join(dir, Dir, PublicKeyFile))
	require.NoError(t, err)
	assert.Equal(t, vb+"\n", string(pub))
	cp, _ := readCheckpoint(t, dir, vb)
	assert.Equal(t, int64(2), cp.Size)
	msg, err := os.ReadFile(filepath.Join(dir, Dir, CheckpointFile))
	require.NoError(t, err)
	_, err = OpenCheckpoint(msg, va)
	assert.ErrorContains(t, err, "not by the given public key")
	requireIntact(t, dir, VerifyOptions{PublicKey: vb})

	// Same key again: no second rotation.
	l, res, err = Open(dir, sb, vb)
	require.NoError(t, err)
	assert.False(t, res.KeyRotated)
	assert.Equal(t, int64(2), res.Entries)
	require.NoError(t, l.Close())

	// A start that recorded the rotation but failed to write the public key file: the
	// next one writes the file and records no second rotation.
	require.NoError(t, os.WriteFile(filepath.Join(dir, Dir, PublicKeyFile), []byte(va+"\n"), 0o644))
	l, res, err = Open(dir, sb, vb)
	require.NoError(t, err)
	assert.False(t, res.KeyRotated)
	assert.Equal(t, int64(2), res.Entries)
	require.NoError(t, l.Close())
	pub, err = os.ReadFile(filepath.Join(dir, Dir, PublicKeyFile))
	require.NoError(t, err)
	assert.Equal(t, vb+"\n", string(pub))
	requireIntact(t, dir, VerifyOptions{PublicKey: vb})

	// Back to the first key: a rotation again.
	l, res, err = Open(dir, sa, va)
	require.NoError(t, err)
	assert.True(t, res.KeyRotated)
	assert.Equal(t, int64(3), res.Entries)
	require.NoError(t, l.Close())
}

func TestLoadOrCreateKey(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "keys", "ledger.key")
	s1, v1, created, err := LoadOrCreateKey(keyFile)
	require.NoError(t, err)
	assert.True(t, created)
	st, err := os.Stat(keyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	dst, err := os.Stat(filepath.Dir(keyFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), dst.Mode().Perm())

	s2, v2, created, err := LoadOrCreateKey(keyFile)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, v1, v2, "the verifier key derived from the stored key matches the generated one")
	assert.Equal(t, s1.KeyHash(), s2.KeyHash())

	msg, err := signCheckpoint(Checkpoint{Size: 1}, s2)
	require.NoError(t, err)
	_, err = OpenCheckpoint(msg, v1)
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(keyFile, []byte("not a key\n"), 0o600))
	_, _, _, err = LoadOrCreateKey(keyFile)
	assert.ErrorContains(t, err, "is not a signing key")
}

// --- Digest ---

func randomHashes(n int) [][32]byte {
	r := mrand.New(mrand.NewPCG(1, 2))
	out := make([][32]byte, n)
	for i := range out {
		for j := range out[i] {
			out[i][j] = byte(r.Uint32())
		}
	}
	return out
}

func digestOf(hs [][32]byte) Digest {
	var d Digest
	for _, h := range hs {
		d.Add(h)
	}
	return d
}

func TestDigestOrderIndependent(t *testing.T) {
	hs := randomHashes(200)
	want := digestOf(hs)
	r := mrand.New(mrand.NewPCG(3, 4))
	for range 10 {
		shuffled := append([][32]byte(nil), hs...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		assert.Equal(t, want, digestOf(shuffled))
	}
	assert.NotEqual(t, want, digestOf(hs[1:]), "dropping a row changes the digest")
}

func TestDigestCarry(t *testing.T) {
	one := [32]byte{31: 1}

	d := Digest{31: 0xff}
	d.Add(one)
	assert.Equal(t, Digest{30: 1}, d, "carry into the next byte")

	// 0x00ffff…ff + 1 = 0x0100…00: the carry runs across every byte.
	var all Digest
	for i := 1; i < 32; i++ {
		all[i] = 0xff
	}
	all.Add(one)
	assert.Equal(t, Digest{0: 1}, all)

	// Modulo 2^256: the carry out of the top byte is dropped.
	var max Digest
	for i := range max {
		max[i] = 0xff
	}
	max.Add(one)
	assert.Equal(t, Digest{}, max)

	// Against math/big.
	mod := new(big.Int).Lsh(big.NewInt(1), 256)
	hs := randomHashes(64)
	for i := 0; i+1 < len(hs); i += 2 {
		d := Digest(hs[i])
		d.Add(hs[i+1])
		sum := new(big.Int).Add(new(big.Int).SetBytes(hs[i][:]), new(big.Int).SetBytes(hs[i+1][:]))
		sum.Mod(sum, mod)
		var want Digest
		sum.FillBytes(want[:])
		assert.Equal(t, want, d, "pair %d", i)
	}
}

func TestDigestSumOfParts(t *testing.T) {
	hs := randomHashes(300)
	whole := digestOf(hs)
	a, b, c := digestOf(hs[:17]), digestOf(hs[17:200]), digestOf(hs[200:])

	var sum Digest
	sum.Add(a)
	sum.Add(b)
	sum.Add(c)
	assert.Equal(t, whole, sum)

	// The same through the hex form the ledger stores, as a compaction check does.
	hexSum, err := SumDigests([]string{a.String(), b.String(), c.String()})
	require.NoError(t, err)
	assert.Equal(t, whole.String(), hexSum.String())
}

func TestParseDigest(t *testing.T) {
	d := digestOf(randomHashes(3))
	got, err := ParseDigest(d.String())
	require.NoError(t, err)
	assert.Equal(t, d, got)
	assert.Len(t, d.String(), 64)
	for _, bad := range []string{"", "abc", strings.Repeat("g", 64), strings.Repeat("0", 62), strings.Repeat("0", 66)} {
		_, err := ParseDigest(bad)
		assert.Error(t, err, "%q", bad)
	}
	_, err = SumDigests([]string{d.String(), "nope"})
	assert.Error(t, err)
}

// --- checkpoints ---

func TestOpenCheckpoint(t *testing.T) {
	s, v := newKey(t)
	_, other := newKey(t)
	c := Checkpoint{Size: 42}
	copy(c.Root[:], bytes.Repeat([]byte{7}, 32))
	msg, err := signCheckpoint(c, s)
	require.NoError(t, err)

	got, err := OpenCheckpoint(msg, v)
	require.NoError(t, err)
	assert.Equal(t, c, got)
	got, err = OpenCheckpoint(msg, "  "+v+"\n")
	require.NoError(t, err, "surrounding whitespace of a key file is ignored")
	assert.Equal(t, c, got)

	_, err = OpenCheckpoint(msg, other)
	assert.ErrorContains(t, err, "not by the given public key")
	assert.ErrorContains(t, err, KeyName)

	_, err = OpenCheckpoint(msg, "not a key")
	assert.ErrorContains(t, err, "public key")

	for name, garbage := range map[string][]byte{
		"empty":        nil,
		"text":         []byte("hello\n"),
		"binary":       {0, 1, 2, 3, '\n'},
		"no signature": []byte(c.text() + "\n"),
	} {
		_, err := OpenCheckpoint(garbage, v)
		assert.ErrorContains(t, err, "signature does not verify", name)
	}

	// The signed text changed (a larger size), the signature kept.
	forged := bytes.Replace(msg, []byte("\n42\n"), []byte("\n43\n"), 1)
	require.NotEqual(t, msg, forged)
	_, err = OpenCheckpoint(forged, v)
	assert.ErrorContains(t, err, "signature does not verify")

	// Validly signed, but not a checkpoint.
	for text, want := range map[string]string{
		"hello\n": "not an otelcol-audit ledger checkpoint",
		"other origin\n1\n" + strings.Repeat("A", 43) + "=\n":          "not an otelcol-audit ledger checkpoint",
		CheckpointOrigin + "\n-1\n" + strings.Repeat("A", 43) + "=\n":  "bad tree size",
		CheckpointOrigin + "\nten\n" + strings.Repeat("A", 43) + "=\n": "bad tree size",
		CheckpointOrigin + "\n1\nAAAA\n":                               "bad tree root",
	} {
		m, err := note.Sign(&note.Note{Text: text}, s)
		require.NoError(t, err)
		_, err = OpenCheckpoint(m, v)
		assert.ErrorContains(t, err, want, "%q", text)
	}
}

// An Append whose checkpoint cannot be written keeps its entries and says so; the
// checkpoint is written again by Checkpoint (and Close) once it can be.
func TestAppendCheckpointFailureKeepsEntries(t *testing.T) {
	dir := t.TempDir()
	s, v := newKey(t)
	l, _, err := Open(dir, s, v)
	require.NoError(t, err)
	cp := filepath.Join(dir, Dir, CheckpointFile)
	require.NoError(t, os.Remove(cp))
	require.NoError(t, os.MkdirAll(filepath.Join(cp, "x"), 0o755))

	out, err := l.Append(sealed(t, dir, "date=2026-11-22/hour=04", "a-1.parquet", "wal/1.wal", []byte("one")))
	require.ErrorIs(t, err, ErrNotCheckpointed)
	require.Len(t, out, 1, "the entry is recorded")
	assert.Equal(t, int64(1), l.Size())
	assert.Len(t, readEntryLines(t, dir), 1)
	assert.Contains(t, l.Live(), "spans/date=2026-11-22/hour=04/a-1.parquet")
	require.ErrorIs(t, l.Checkpoint(), ErrNotCheckpointed, "still not writable")

	require.NoError(t, os.RemoveAll(cp))
	require.NoError(t, l.Checkpoint())
	c, _ := readCheckpoint(t, dir, v)
	assert.Equal(t, int64(1), c.Size, "the checkpoint covers the entry")
	require.NoError(t, l.Close())
	requireIntact(t, dir, VerifyOptions{PublicKey: v})
}
