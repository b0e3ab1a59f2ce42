package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/otelaudit/otelcol-audit/extension/auditqueryextension"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// exportReport is the outcome of `auditctl export verify`.
type exportReport struct {
	// Outcome is "match", "mismatch" or "cannot re-read".
	Outcome  string           `json:"outcome"`
	TreeSize int64            `json:"tree_size"`
	RootHash string           `json:"root_hash"`
	Files    int              `json:"files"`
	Rows     int64            `json:"rows"`
	SHA256   string           `json:"sha256"`
	Findings []ledger.Finding `json:"findings"`
	// Gone are the files of the state that later entries took out of the trail and that
	// are no longer on disk: the state cannot be read again.
	Gone  []ledger.Finding `json:"gone"`
	Notes []string         `json:"notes"`
}

func (r *exportReport) find(subject, format string, args ...any) {
	r.Findings = append(r.Findings, ledger.Finding{Subject: subject, Problem: fmt.Sprintf(format, args...)})
}

func runExportVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "data directory of the auditparquet exporter (required)")
	provFile := fs.String("provenance", "", "the export's provenance: a job's status (GET /api/v1/exports/{id}) saved as JSON, or the X-Audit-Export-Provenance trailer of a direct export (required)")
	exportFile := fs.String("export", "", "the exported file: its SHA-256 must be the one the provenance records")
	pubKey := fs.String("public-key", "", "file with the ledger's public key, kept apart from the data (default: the copy in DIR/ledger/public.key)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || *provFile == "" {
		fmt.Fprintln(stderr, "auditctl export verify: --dir and --provenance are required")
		return 2
	}
	if st, err := os.Stat(*dir); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "auditctl export verify: --dir %s is not a directory\n", *dir)
		return 2
	}
	b, err := os.ReadFile(*provFile)
	if err != nil {
		fmt.Fprintf(stderr, "auditctl export verify: --provenance: %v\n", err)
		return 2
	}
	p, err := auditqueryextension.ParseProvenance(b)
	if err != nil {
		fmt.Fprintf(stderr, "auditctl export verify: --provenance %s: %v\n", *provFile, err)
		return 2
	}
	vkey, err := readOptional(*pubKey, "--public-key")
	if err != nil {
		fmt.Fprintf(stderr, "auditctl export verify: %v\n", err)
		return 2
	}
	rep, err := verifyExport(context.Background(), *dir, p, *exportFile, string(vkey))
	if err != nil {
		fmt.Fprintf(stderr, "auditctl export verify: %v\n", err)
		return 2
	}
	if *asJSON {
		writeJSON(stdout, rep)
	} else {
		for _, f := range rep.Findings {
			fmt.Fprintln(stdout, f.String())
		}
		for _, f := range rep.Gone {
			fmt.Fprintln(stdout, f.String())
		}
		for _, n := range rep.Notes {
			fmt.Fprintln(stdout, "note: "+n)
		}
		switch rep.Outcome {
		case "match":
			fmt.Fprintf(stdout, "match: the export's %d rows (SHA-256 %s) are what the trail at ledger size %d (root %s, %d files) returns for its filters\n",
				rep.Rows, rep.SHA256, rep.TreeSize, rep.RootHash, rep.Files)
		case "mismatch":
			fmt.Fprintf(stdout, "MISMATCH: %d finding(s) about the export read at ledger size %d\n", len(rep.Findings), rep.TreeSize)
		default:
			fmt.Fprintf(stdout, "CANNOT RE-READ: %d file(s) of the trail at ledger size %d were removed from the trail since (compaction or retention); the export cannot be read again\n", len(rep.Gone), rep.TreeSize)
		}
	}
	switch rep.Outcome {
	case "match":
		return 0
	case "mismatch":
		return 1
	}
	return 2
}

// verifyExport proves an export against the trail state its provenance names: the
// ledger up to that state hashes to the recorded root and the signed checkpoint still
// covers it, the files live then are on disk unchanged, and writing the export again
// over them gives the recorded rows and SHA-256 (and the export file, if given, is those
// bytes). The error is for a verification that cannot run at all.
func verifyExport(ctx context.Context, dir string, p *auditqueryextension.Provenance, exportFile, vkey string) (*exportReport, error) {
	rep := &exportReport{TreeSize: p.TreeSize, RootHash: p.RootHash, Findings: []ledger.Finding{}, Gone: []ledger.Finding{}, Notes: []string{}}
	if exportFile != "" {
		_, sum, err := ledger.HashFile(exportFile)
		if err != nil {
			return nil, fmt.Errorf("--export: %w", err)
		}
		if sum != p.SHA256 {
			rep.find(filepath.Base(exportFile), "SHA-256 %s, the export recorded %s: the file is not the export's bytes (changed or another export)", sum, p.SHA256)
		}
	}
	if strings.TrimSpace(vkey) == "" {
		b, err := os.ReadFile(filepath.Join(dir, ledger.Dir, ledger.PublicKeyFile))
		if err != nil {
			return nil, fmt.Errorf("no public key given and %s unreadable: %w", filepath.Join(ledger.Dir, ledger.PublicKeyFile), err)
		}
		vkey = string(b)
		rep.Notes = append(rep.Notes, "checkpoint checked with the public key stored in the data directory; pass the key kept elsewhere to rule out a replaced key")
	}
	st, err := ledger.ReadState(dir, p.TreeSize)
	if err != nil {
		rep.find(ledger.Dir+"/"+ledger.EntriesFile, "%v", err)
		return rep.done(), nil
	}
	cpSubject := ledger.Dir + "/" + ledger.CheckpointFile
	msg, err := os.ReadFile(filepath.Join(dir, ledger.Dir, ledger.CheckpointFile))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", cpSubject, err)
	}
	cp, err := ledger.OpenCheckpoint(msg, vkey)
	switch {
	case err != nil:
		rep.find(cpSubject, "%v", err)
	case cp.Size < p.TreeSize:
		rep.find(cpSubject, "covers %d entries, fewer than the %d the export was read at: the ledger was rolled back", cp.Size, p.TreeSize)
	case cp.Size > st.Entries:
		rep.find(cpSubject, "covers %d entries but the ledger holds %d: entries were removed", cp.Size, st.Entries)
	default:
		if root, err := st.RootAt(cp.Size); err != nil || root != cp.Root.String() {
			rep.find(cpSubject, "the first %d entries do not hash to the signed root: entries were edited, reordered or replaced", cp.Size)
		}
	}
	if st.Root != p.RootHash {
		rep.find(fmt.Sprintf("ledger at size %d", p.TreeSize), "hashes to %s, the export recorded %s: the ledger was rewritten, or the export is not of this trail", st.Root, p.RootHash)
	}
	live := make([]string, 0, len(st.Live))
	for path := range st.Live {
		live = append(live, path)
	}
	slices.Sort(live)
	files, err := p.Files(live)
	if err != nil {
		return nil, err
	}
	rep.Files = len(files)
	if len(files) != p.FileCount || auditqueryextension.FilesSHA256(files) != p.FilesSHA256 {
		rep.find(fmt.Sprintf("files at ledger size %d", p.TreeSize), "%d files of the export's window and decisions (SHA-256 of their paths %s), the export recorded %d (%s): the export did not read this state",
			len(files), auditqueryextension.FilesSHA256(files), p.FileCount, p.FilesSHA256)
	}
	for _, path := range files {
		rec, ok := st.Live[path]
		if !ok {
			rep.find(path, "not in the trail at ledger size %d, where the export says it read it", p.TreeSize)
			continue
		}
		n, sum, err := ledger.HashFile(filepath.Join(dir, filepath.FromSlash(path)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if e, ok := st.Removed[path]; ok {
				rep.Gone = append(rep.Gone, ledger.Finding{Subject: path, Problem: fmt.Sprintf("removed from the trail by ledger entry %d (%s) after the export: the state it was read from can no longer be read", e.Seq, e.Kind)})
			} else {
				rep.find(path, "missing: the ledger holds it in the trail but it is not on disk (deleted)")
			}
		case err != nil:
			rep.find(path, "unreadable: %v", err)
		case n != rec.Size || sum != rec.SHA256:
			rep.find(path, "content changed: %d bytes with SHA-256 %.16s…, the ledger recorded %d bytes with %.16s…", n, sum, rec.Size, rec.SHA256)
		}
	}
	if len(rep.Findings) > 0 || len(rep.Gone) > 0 {
		return rep.done(), nil
	}
	rows, sum, err := auditqueryextension.ReplayExport(ctx, dir, p, files, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("write the export again: %w", err)
	}
	rep.Rows, rep.SHA256 = rows, sum
	if rows != p.Rows {
		rep.find("export", "the trail state returns %d rows for the export's filters, the export recorded %d", rows, p.Rows)
	}
	if sum != p.SHA256 {
		rep.find("export", "written again over the same files it has SHA-256 %s, the export recorded %s: the export's rows are not what the trail returns", sum, p.SHA256)
	}
	return rep.done(), nil
}

func (r *exportReport) done() *exportReport {
	switch {
	case len(r.Findings) > 0:
		r.Outcome = "mismatch"
	case len(r.Gone) > 0:
		r.Outcome = "cannot re-read"
	default:
		r.Outcome = "match"
	}
	return r
}
