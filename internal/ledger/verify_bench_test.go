package ledger

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// Verify streams every sealed file through SHA-256, so its throughput should be that of
// hashing the same bytes: BenchmarkVerify is expected at >= 0.8x the MB/s of
// BenchmarkSHA256Baseline (the rest is the checkpoint signature, reading and hashing the
// ledger lines, the Merkle tree and the directory walk, all small next to the data).
// Both read the same 64 files of 4 MiB, from the page cache once warm.
//
//	go test -run '^$' -bench . -benchtime 3x ./internal/ledger/

const (
	benchFiles    = 64
	benchFileSize = 4 << 20
)

type benchTrail struct {
	dir   string
	vkey  string
	files []FileRecord
	bytes int64
}

var bench struct {
	once  sync.Once
	root  string // removed by TestMain
	trail benchTrail
	err   error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.root != "" {
		_ = os.RemoveAll(bench.root)
	}
	os.Exit(code)
}

// benchFixture writes the files and a ledger recording them (correct SHA-256 and size),
// once per test binary.
func benchFixture(b *testing.B) benchTrail {
	b.Helper()
	bench.once.Do(func() { bench.trail, bench.err = makeBenchTrail() })
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.trail
}

func makeBenchTrail() (benchTrail, error) {
	var tr benchTrail
	root, err := os.MkdirTemp("", "ledger-bench-")
	if err != nil {
		return tr, err
	}
	bench.root = root
	tr.dir = filepath.Join(root, "data")
	skey, vkey, err := noteKey()
	if err != nil {
		return tr, err
	}
	tr.vkey = vkey
	l, _, err := Open(tr.dir, skey, vkey)
	if err != nil {
		return tr, err
	}
	defer l.Close()

	rng := mrand.NewChaCha8([32]byte{1, 2, 3})
	buf := make([]byte, benchFileSize)
	entries := make([]Entry, 0, benchFiles)
	for i := range benchFiles {
		if _, err := rng.Read(buf); err != nil {
			return tr, err
		}
		rel := fmt.Sprintf("spans/date=2026-03-14/hour=%02d/bench-%06d.parquet", i%24, i)
		path := filepath.Join(tr.dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return tr, err
		}
		if err := os.WriteFile(path, buf, 0o444); err != nil {
			return tr, err
		}
		sum := sha256.Sum256(buf)
		rec := FileRecord{Path: rel, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(buf)), Rows: 1, Digest: Digest(sum).String()}
		tr.files = append(tr.files, rec)
		tr.bytes += rec.Size
		entries = append(entries, Entry{Kind: KindSeal, Writer: "bench", File: &rec, Source: fmt.Sprintf("wal/bench-%06d.wal", i)})
	}
	if _, err := l.Append(entries...); err != nil {
		return tr, err
	}
	return tr, nil
}

// BenchmarkVerify is the full verification of the trail.
func BenchmarkVerify(b *testing.B) {
	tr := benchFixture(b)
	opts := VerifyOptions{PublicKey: tr.vkey}
	b.SetBytes(tr.bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rep, err := Verify(tr.dir, opts)
		if err != nil {
			b.Fatal(err)
		}
		if !rep.Intact || rep.Files != benchFiles || rep.Bytes != tr.bytes {
			b.Fatalf("unexpected report: intact %v, %d files, %d bytes, findings %v", rep.Intact, rep.Files, rep.Bytes, rep.Findings)
		}
	}
}

// BenchmarkSHA256Baseline only opens and hashes the same files, with the same 1 MiB
// buffer: the floor Verify cannot beat.
func BenchmarkSHA256Baseline(b *testing.B) {
	tr := benchFixture(b)
	buf := make([]byte, 1<<20)
	b.SetBytes(tr.bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, rec := range tr.files {
			f, err := os.Open(filepath.Join(tr.dir, filepath.FromSlash(rec.Path)))
			if err != nil {
				b.Fatal(err)
			}
			h := sha256.New()
			n, err := io.CopyBuffer(h, f, buf)
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
			if n != rec.Size || hex.EncodeToString(h.Sum(nil)) != rec.SHA256 {
				b.Fatalf("%s does not match", rec.Path)
			}
		}
	}
}

func noteKey() (note.Signer, string, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, KeyName)
	if err != nil {
		return nil, "", err
	}
	s, err := note.NewSigner(skey)
	return s, vkey, err
}
