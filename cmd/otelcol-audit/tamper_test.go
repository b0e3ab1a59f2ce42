package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/otelaudit/otelcol-audit/internal/ledger"
	"github.com/otelaudit/otelcol-audit/internal/loadgen"
)

// TestTamperUnderLoad writes a trail with the collector process (the built binary under
// make test) under auditload's traffic — two runs on the same directory, the ledger and
// checkpoint of the first kept as an attacker's rollback point — and then applies every
// tamper class of the exporter's design to its own copy of the trail: a modified,
// truncated, deleted or injected file, stray files and a link, a removed period, a
// reordered, truncated, rolled-back or edited-and-rechained ledger, a bad signature, a
// forged key. Each copy is verified as an operator would (the public key and the latest
// checkpoint kept outside the data directory). Every tamper must be detected, and only
// the tampered files and ledger parts may be named: no false alarm on the untouched
// rest. The untouched trail must verify intact. With OTELCOL_AUDIT_SOAK (make soak) each run sends 25 times more.
func TestTamperUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a trail under load")
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	grpcAddr := freePort(t)
	// Small files (at most max_file_rows plus a batch), so that each run writes several.
	cfgPath := writeTrailConfig(t, grpcAddr, dataDir, "max_file_age: 250ms", "max_file_rows: 1000")
	logDir := t.TempDir()
	perRun := 8000
	if soak() {
		perRun = 200_000
	}
	writeUnderLoad := func(run string) {
		p := startCollectorProcess(t, []string{cfgPath}, filepath.Join(logDir, run+".log"), grpcAddr)
		cfg := loadgen.DefaultConfig()
		cfg.Endpoint, cfg.Count, cfg.BatchSize, cfg.Concurrency = grpcAddr, perRun, 200, 3
		sum, err := sendLoad(context.Background(), cfg, filepath.Join(logDir, run+"-acked.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if sum.Acknowledged == 0 {
			t.Fatalf("%s: no span acknowledged\n%s", run, p.logs())
		}
		t.Logf("%s: %d spans acknowledged at %.0f/s", run, sum.Acknowledged, sum.AcknowledgedPerSecond)
		p.stop(t)
	}

	writeUnderLoad("first")
	first := snapshotLedger(t, dataDir)
	writeUnderLoad("second")
	files := trailFiles(t, dataDir)
	firstFiles := map[string]bool{}
	for _, f := range first.files {
		firstFiles[f] = true
	}
	var newer []string
	for _, f := range files {
		if !firstFiles[f] {
			newer = append(newer, f)
		}
	}
	if len(first.files) < 3 || len(newer) < 3 {
		t.Fatalf("want several files from each run, got %d and %d", len(first.files), len(newer))
	}
	outside := t.TempDir()
	pub := copyOut(t, dataDir, ledger.Dir+"/"+ledger.PublicKeyFile, outside)
	trusted := copyOut(t, dataDir, ledger.Dir+"/"+ledger.CheckpointFile, outside)
	pubKey, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	trustedCP, err := os.ReadFile(trusted)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(dir string) *ledger.Report {
		t.Helper()
		rep, err := ledger.Verify(dir, ledger.VerifyOptions{PublicKey: string(pubKey), TrustedCheckpoint: trustedCP})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	// The untouched trail: no finding at all.
	if rep := verify(dataDir); !rep.Intact || len(rep.Findings) != 0 || rep.Files != len(files) {
		t.Fatalf("untouched trail of %d files: %+v", len(files), rep)
	}

	pick := func(i int) string { return newer[i%len(newer)] }
	const checkpoint = ledger.Dir + "/" + ledger.CheckpointFile
	type tamper struct {
		name string
		// apply tampers with dir and returns the subjects the findings must name.
		apply func(t *testing.T, dir string) []string
		// allowed says whether a finding's subject may be named beyond the required ones
		// (the ledger's entries and checkpoints, for a tampered ledger): anything else
		// is a false alarm.
		allowed func(subject string) bool
	}
	onlyRequired := func(string) bool { return false }
	// A deleted file, or a row count edited in the ledger, also leaves its hour holding
	// another number of rows than its tallies accepted.
	hours := func(s string) bool { return strings.HasPrefix(s, "hour ") }
	ledgerParts := func(s string) bool {
		return strings.HasPrefix(s, "entry ") || s == checkpoint || s == "trusted checkpoint" || hours(s)
	}
	cases := []tamper{
		{"modified file", func(t *testing.T, dir string) []string {
			rel := pick(0)
			rewrite(t, dir, rel, func(b []byte) []byte { b[len(b)/2] ^= 0x20; return b })
			return []string{rel}
		}, onlyRequired},
		{"truncated file", func(t *testing.T, dir string) []string {
			rel := pick(1)
			rewrite(t, dir, rel, func(b []byte) []byte { return b[:len(b)-8] })
			return []string{rel}
		}, onlyRequired},
		{"file emptied", func(t *testing.T, dir string) []string {
			rel := pick(2)
			rewrite(t, dir, rel, func([]byte) []byte { return nil })
			return []string{rel}
		}, onlyRequired},
		{"deleted file", func(t *testing.T, dir string) []string {
			rel := pick(3)
			mustRemove(t, filepath.Join(dir, rel))
			return []string{rel}
		}, hours},
		{"injected file", func(t *testing.T, dir string) []string {
			// A valid sealed file of the trail under a new name in its partition, and one
			// in a partition the ledger never mentions.
			src := pick(4)
			same := filepath.ToSlash(filepath.Join(filepath.Dir(src), "forged-000001.parquet"))
			other := "spans/date=2020-01-01/hour=00/forged-000002.parquet"
			for _, rel := range []string{same, other} {
				copyInto(t, filepath.Join(dir, src), filepath.Join(dir, rel))
			}
			return []string{same, other}
		}, onlyRequired},
		{"stray entries", func(t *testing.T, dir string) []string {
			// Anything in the trail's directories that the ledger does not know: other
			// files beside the sealed ones, a hidden file, a link, a file in ledger/.
			part := filepath.ToSlash(filepath.Dir(pick(5)))
			strays := []string{part + "/notes.txt", part + "/x.parquet.bak", part + "/.hidden", ledger.Dir + "/notes.txt"}
			for _, rel := range strays {
				writeFile(t, filepath.Join(dir, rel), []byte("not the trail's"))
			}
			link := part + "/link.parquet"
			if err := os.Symlink(filepath.Base(pick(5)), filepath.Join(dir, link)); err != nil {
				t.Fatal(err)
			}
			return append(strays, link)
		}, onlyRequired},
		{"removed period", func(t *testing.T, dir string) []string {
			// Every file of the second run: the trail loses its latest stretch of time.
			for _, rel := range newer {
				mustRemove(t, filepath.Join(dir, rel))
			}
			return newer
		}, hours},
		{"reordered ledger", func(t *testing.T, dir string) []string {
			lines := ledgerLines(t, dir)
			lines[1], lines[2] = lines[2], lines[1]
			writeLedgerLines(t, dir, lines)
			return []string{"entry 1", checkpoint}
		}, ledgerParts},
		{"truncated ledger", func(t *testing.T, dir string) []string {
			// The last entry dropped: its file is in no entry any more.
			lines := ledgerLines(t, dir)
			var last ledger.Entry
			if err := json.Unmarshal(lines[len(lines)-1], &last); err != nil || last.File == nil {
				t.Fatalf("last entry %s: %v", lines[len(lines)-1], err)
			}
			writeLedgerLines(t, dir, lines[:len(lines)-1])
			return []string{checkpoint, last.File.Path}
		}, ledgerParts},
		{"rolled-back ledger", func(t *testing.T, dir string) []string {
			// The first run's ledger and checkpoint restored (both validly signed) and the
			// second run's files removed: self-consistent, caught by the checkpoint kept
			// outside.
			for _, rel := range newer {
				mustRemove(t, filepath.Join(dir, rel))
			}
			writeFile(t, filepath.Join(dir, ledger.Dir, ledger.EntriesFile), first.entries)
			writeFile(t, filepath.Join(dir, ledger.Dir, ledger.CheckpointFile), first.checkpoint)
			return []string{checkpoint}
		}, ledgerParts},
		{"edited and rechained ledger", func(t *testing.T, dir string) []string {
			// Rows of an entry changed and every later prev hash recomputed: a valid chain
			// that only the signed checkpoint catches.
			lines := ledgerLines(t, dir)
			writeLedgerLines(t, dir, rechainFrom(t, lines, 1, func(e *ledger.Entry) { e.File.Rows += 1000 }))
			return []string{checkpoint}
		}, ledgerParts},
		{"bad signature", func(t *testing.T, dir string) []string {
			rewrite(t, dir, checkpoint, func(b []byte) []byte {
				// A base64 character inside the Ed25519 signature at the end of the last line
				// (not the key hash before it, not the padding).
				i := len(bytes.TrimRight(b, "\n")) - 10
				if b[i] == 'A' {
					b[i] = 'B'
				} else {
					b[i] = 'A'
				}
				return b
			})
			return []string{checkpoint}
		}, ledgerParts},
		{"forged key", func(t *testing.T, dir string) []string {
			// History rewritten and re-signed with the attacker's key, which replaces
			// ledger/public.key: caught by the key kept outside.
			lines := ledgerLines(t, dir)
			writeLedgerLines(t, dir, rechainFrom(t, lines, 0, func(e *ledger.Entry) { e.File.Rows = 0 }))
			skey, vkey, err := note.GenerateKey(rand.Reader, ledger.KeyName)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := note.NewSigner(skey)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, ledger.Dir, ledger.PublicKeyFile), []byte(vkey+"\n"))
			l, _, err := ledger.Open(dir, signer, vkey) // re-signs the checkpoint
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			return []string{checkpoint}
		}, ledgerParts},
	}

	detected, falseAlarms := 0, 0
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			copyDir(t, dataDir, dir)
			required := c.apply(t, dir)
			rep := verify(dir)
			named := map[string]bool{}
			for _, f := range rep.Findings {
				named[f.Subject] = true
				t.Logf("finding: %s", f)
			}
			missed := 0
			for _, s := range required {
				if !named[s] {
					missed++
					t.Errorf("no finding names %s", s)
				}
			}
			if rep.Intact || missed > 0 {
				t.Errorf("%s not detected: %+v", c.name, rep.Findings)
			} else {
				detected++
			}
			isRequired := map[string]bool{}
			for _, s := range required {
				isRequired[s] = true
			}
			for _, f := range rep.Findings {
				if !isRequired[f.Subject] && !c.allowed(f.Subject) {
					falseAlarms++
					t.Errorf("false alarm on untouched data: %s", f)
				}
			}
		})
	}
	t.Logf("trail of %d files written under load (%d then %d); %d/%d tamper classes detected, %d false alarms on untouched data",
		len(files), len(first.files), len(newer), detected, len(cases), falseAlarms)
}

// ledgerSnapshot is a trail's ledger at a moment, with the files it recorded.
type ledgerSnapshot struct {
	entries, checkpoint []byte
	files               []string
}

func snapshotLedger(t *testing.T, dataDir string) ledgerSnapshot {
	t.Helper()
	var s ledgerSnapshot
	var err error
	if s.entries, err = os.ReadFile(filepath.Join(dataDir, ledger.Dir, ledger.EntriesFile)); err != nil {
		t.Fatal(err)
	}
	if s.checkpoint, err = os.ReadFile(filepath.Join(dataDir, ledger.Dir, ledger.CheckpointFile)); err != nil {
		t.Fatal(err)
	}
	s.files = trailFiles(t, dataDir)
	return s
}

// trailFiles lists the sealed files under spans/, relative to dataDir, slash-separated.
func trailFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dataDir, "spans", "*", "*", "*.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range matches {
		rel, _ := filepath.Rel(dataDir, m)
		out = append(out, filepath.ToSlash(rel))
	}
	sort.Strings(out)
	return out
}

// copyDir copies a data directory, modes included (sealed files stay 0444).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), info.Mode().Perm()|0o700)
		}
		return copyFileMode(path, filepath.Join(dst, rel), info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func copyFileMode(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, perm)
}

// copyInto copies a file to dst, creating its directory, read-only as sealed files are.
func copyInto(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFileMode(src, dst, 0o444); err != nil {
		t.Fatal(err)
	}
}

// copyOut copies a file of the data directory to outside, as an operator keeps the
// public key and a checkpoint apart from the data.
func copyOut(t *testing.T, dataDir, rel, outside string) string {
	t.Helper()
	dst := filepath.Join(outside, filepath.Base(rel))
	if err := copyFileMode(filepath.Join(dataDir, filepath.FromSlash(rel)), dst, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// rewrite replaces the content of a file of dir (a sealed read-only file too) with
// edit's result, keeping its mode.
func rewrite(t *testing.T, dir, rel string, edit func([]byte) []byte) {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(rel))
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, edit(b))
	if err := os.Chmod(path, st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// ledgerLines returns the lines of entries.jsonl without their newlines.
func ledgerLines(t *testing.T, dir string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ledger.Dir, ledger.EntriesFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if len(lines) < 4 {
		t.Fatalf("ledger of %d entries; want several", len(lines))
	}
	return lines
}

func writeLedgerLines(t *testing.T, dir string, lines [][]byte) {
	t.Helper()
	writeFile(t, filepath.Join(dir, ledger.Dir, ledger.EntriesFile), append(bytes.Join(lines, []byte("\n")), '\n'))
}

// rechainFrom edits the seal entry at index from and rewrites it and every later entry
// with its prev hash recomputed, as an attacker who knows the chain's rule would.
func rechainFrom(t *testing.T, lines [][]byte, from int, edit func(*ledger.Entry)) [][]byte {
	t.Helper()
	out := append([][]byte(nil), lines...)
	for i := from; i < len(out); i++ {
		var e ledger.Entry
		if err := json.Unmarshal(out[i], &e); err != nil {
			t.Fatal(err)
		}
		if i == from {
			if e.File == nil {
				t.Fatalf("entry %d records no file: %s", i, out[i])
			}
			edit(&e)
		}
		if i > 0 {
			sum := sha256.Sum256(out[i-1])
			e.Prev = hex.EncodeToString(sum[:])
		}
		b, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		if i > from && bytes.Equal(b, lines[i]) {
			t.Fatalf("entry %d unchanged by the rechaining", i)
		}
		out[i] = b
	}
	return out
}
