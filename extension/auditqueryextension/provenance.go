package auditqueryextension

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// An export records the trail state it was read from, so that an auditor can prove
// later that its rows are exactly what that state returns for its filters: the ledger's
// size and Merkle root when the export started, and the sealed files live at that size
// that it read. The export reads those files alone from start to end (a file sealed
// meanwhile is not in it); `auditctl export verify` rebuilds the file set from the ledger,
// checks each file against its ledger record, and writes the export again through
// ReplayExport, the code the API writes it with.

// An export needs the files of the hours its window touches for its rows, the files
// holding approval decisions on those rows for their approval status, and the files
// holding other spans of their traces for the context they inherit (context.go) — not
// the rest of the trail: a compaction of other hours after the export leaves it readable
// again.

// Trailers of a direct export beside its rows and SHA-256: the ledger state it was read
// from, and its whole provenance as base64 of the JSON document a job's status shows.
const (
	trailerTreeSize   = "X-Audit-Export-Tree-Size"
	trailerRootHash   = "X-Audit-Export-Root-Hash"
	trailerProvenance = "X-Audit-Export-Provenance"
)

// Attributes of an export's access record naming the state it was read from; its
// filters, rows, format and SHA-256 are recorded like any read's.
const (
	attrAccessTreeSize    = "audit.access.export_tree_size"
	attrAccessRootHash    = "audit.access.export_root_hash"
	attrAccessFileCount   = "audit.access.export_file_count"
	attrAccessFilesSHA256 = "audit.access.export_files_sha256"
)

// Provenance is what an export was read from and what it wrote.
type Provenance struct {
	// The format, the filters (a relative window resolved) and the caller's scope.
	exportSpec
	// TreeSize and RootHash are the ledger's size and Merkle root (base64, as in a
	// checkpoint) when the export started.
	TreeSize int64  `json:"tree_size"`
	RootHash string `json:"root_hash"`
	// FileCount and FilesSHA256 identify the files read (see Files); FilesSHA256 is the
	// SHA-256 of their sorted paths, one per line.
	FileCount   int    `json:"file_count"`
	FilesSHA256 string `json:"files_sha256"`
	// DecisionFiles are the files outside the export's window holding approval
	// decisions on its rows: their decisions are read, not their rows.
	DecisionFiles []string `json:"decision_files,omitempty"`
	// ContextFiles are the files outside the export's window holding spans of its rows'
	// traces: the agent, user, tenant and session its rows inherit are read from them, not their
	// rows.
	ContextFiles []string `json:"context_files,omitempty"`
	// Skipped are the files of the export's window it could not read and left out.
	Skipped []string `json:"skipped_files,omitempty"`
	Rows    int64    `json:"rows"`
	SHA256  string   `json:"sha256"`
	// CreatedAt dates the export (an XLSX workbook carries it).
	CreatedAt time.Time `json:"created_at"`
}

// Files are the files an export with provenance p read, given the files live at its
// tree size: those of the hours its window touches but the skipped ones, and its
// decision files; sorted.
func (p *Provenance) Files(live []string) ([]string, error) {
	f, err := p.filter(createDefaultConfig().(*Config).MaxLimit)
	if err != nil {
		return nil, fmt.Errorf("filters: %w", err)
	}
	w := f.window()
	var out []string
	for _, path := range live {
		if w.covers(auditschema.PartitionOfPath(path)) && !slices.Contains(p.Skipped, path) {
			out = append(out, path)
		}
	}
	out = append(out, p.DecisionFiles...)
	out = append(out, p.ContextFiles...)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// trailState is the ledger state a read is pinned to.
type trailState struct {
	size  int64
	root  string
	files []string // live at size, sorted
	// window are the files of files in the export's window; decisions those outside it
	// holding decisions on rows of window, context those holding spans of its traces.
	window, decisions, context []string
}

// pinExport limits f to the trail as the ledger holds it now — the files of the hours
// its window touches, and the files holding approval decisions on their rows — and
// returns that state. Without a readable ledger (files copied in without it) f reads
// the trail as it is, and nil is returned: the export has no provenance.
func (s *store) pinExport(ctx context.Context, f *spanFilter, logger *zap.Logger) *trailState {
	st, err := ledger.ReadState(s.abs, -1)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			logger.Warn("An export records no trail state: the ledger cannot be read; auditctl verify says why", zap.Error(err))
		}
		return nil
	}
	state := &trailState{size: st.Size, root: st.Root, files: make([]string, 0, len(st.Live))}
	for p := range st.Live {
		state.files = append(state.files, p)
	}
	slices.Sort(state.files)
	w := f.window()
	var outside []string
	for _, p := range state.files {
		if w.covers(auditschema.PartitionOfPath(p)) {
			state.window = append(state.window, p)
		} else {
			outside = append(outside, p)
		}
	}
	state.decisions, err = s.decisionFilesOf(ctx, outside, state.window)
	if err != nil {
		// Every file then: the export is right, and re-reading it needs the whole state.
		logger.Warn("Could not find which files hold the approval decisions on an export's rows; it reads every file's", zap.Error(err))
		state.decisions = outside
	}
	state.context, err = s.contextFilesOf(ctx, outside, state.window)
	if err != nil {
		logger.Warn("Could not find which files hold the spans an export's rows inherit context from; it reads every file's", zap.Error(err))
		state.context = outside
	}
	f.pinned = append(slices.Clone(state.window), state.decisions...)
	f.pinned = append(f.pinned, state.context...)
	slices.Sort(f.pinned)
	f.pinned = slices.Compact(f.pinned)
	return state
}

// decisionFilesOf are the files of candidates holding approval decisions on rows of
// files: by the gated span's ids or by approval id, as spansView joins them.
func (s *store) decisionFilesOf(ctx context.Context, candidates, files []string) ([]string, error) {
	if err := s.refreshDecisions(ctx, s.files()); err != nil {
		return nil, err
	}
	rows := s.readable(files)
	if len(candidates) == 0 || len(rows) == 0 || !s.hasDecisions() {
		return nil, nil
	}
	list := make([]string, len(candidates))
	for i, f := range candidates {
		list[i] = sqlString(f)
	}
	in := " WHERE d.file IN (" + strings.Join(list, ", ") + ")"
	src := s.sourceOf(rows, window{})
	q := "SELECT d.file FROM " + decisionsTable + " AS d SEMI JOIN " + src + " AS t ON d.d_trace = t.trace_id AND d.d_span = t.span_id" + in +
		" UNION SELECT d.file FROM " + decisionsTable + " AS d SEMI JOIN " + src + " AS t ON d.d_id = t.approval_id" + in
	var out []string
	err := s.tolerant(ctx, func() error {
		out = out[:0]
		r, err := s.db.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			var f string
			if err := r.Scan(&f); err != nil {
				return err
			}
			out = append(out, f)
		}
		return r.Err()
	})
	slices.Sort(out)
	return out, err
}

// pinnedSource is the read_parquet call over the pinned files of w that may hold its
// rows, and the condition limiting the decisions table to the pinned files. An empty
// pinned set reads nothing.
func (s *store) pinnedSource(w window) (source, decisions string) {
	files := s.readable(w.pinned)
	if len(files) == 0 {
		return "read_parquet(" + sqlString(filepath.Join(s.abs, auditschema.SpansDir, "none", "*.parquet")) + readParquetOptions, " AND false"
	}
	list := make([]string, len(files))
	for i, f := range files {
		list[i] = sqlString(f)
	}
	return s.dedupedSource(files, w), " AND file IN (" + strings.Join(list, ", ") + ")"
}

// provenance is the provenance of an export of spec pinned to state that wrote res; nil
// without a state.
func (s *store) provenance(spec exportSpec, state *trailState, res exportResult, created time.Time) *Provenance {
	if state == nil {
		return nil
	}
	p := &Provenance{exportSpec: spec, TreeSize: state.size, RootHash: state.root, DecisionFiles: state.decisions,
		ContextFiles: state.context,
		Rows:         res.Rows, SHA256: res.SHA256, CreatedAt: created}
	readable := s.readable(state.window)
	for _, f := range state.window {
		if _, ok := slices.BinarySearch(readable, f); !ok {
			p.Skipped = append(p.Skipped, f)
		}
	}
	read, _ := p.Files(state.files)
	p.FileCount, p.FilesSHA256 = len(read), FilesSHA256(read)
	return p
}

// FilesSHA256 is the SHA-256 of sorted paths, one per line, as a provenance records it.
func FilesSHA256(sorted []string) string {
	h := sha256.New()
	for _, f := range sorted {
		h.Write([]byte(f + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// setProvenanceTrailers sets the trailers naming a direct export's trail state.
func setProvenanceTrailers(h http.Header, p *Provenance) {
	if p == nil {
		return
	}
	h.Set(trailerTreeSize, strconv.FormatInt(p.TreeSize, 10))
	h.Set(trailerRootHash, p.RootHash)
	if b, err := json.Marshal(p); err == nil {
		h.Set(trailerProvenance, base64.StdEncoding.EncodeToString(b))
	}
}

// putProvenance puts the trail state of an export into its access record.
func putProvenance(a pcommon.Map, p *Provenance) {
	if p == nil {
		return
	}
	a.PutInt(attrAccessTreeSize, p.TreeSize)
	a.PutStr(attrAccessRootHash, p.RootHash)
	a.PutInt(attrAccessFileCount, int64(p.FileCount))
	a.PutStr(attrAccessFilesSHA256, p.FilesSHA256)
}

// ParseProvenance reads a provenance as the API gives it: a job's status (GET
// /api/v1/exports/{id}) with its "provenance", the provenance document itself, or the
// base64 of a direct export's X-Audit-Export-Provenance trailer.
func ParseProvenance(b []byte) (*Provenance, error) {
	text := strings.TrimSpace(string(b))
	if !strings.HasPrefix(text, "{") {
		dec, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return nil, errors.New("neither JSON nor the base64 of an " + trailerProvenance + " trailer")
		}
		text = string(dec)
	}
	var doc struct {
		Provenance *Provenance `json:"provenance"`
		Status     string      `json:"status"`
	}
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		return nil, err
	}
	if doc.Provenance != nil {
		return doc.Provenance, nil
	}
	if doc.Status != "" {
		return nil, fmt.Errorf("an export job's status without provenance (status %q): only a finished job over a data directory with a ledger has one", doc.Status)
	}
	var p Provenance
	if err := json.Unmarshal([]byte(text), &p); err != nil {
		return nil, err
	}
	if p.Format == "" || p.RootHash == "" {
		return nil, errors.New("not a provenance: it has no format or root_hash")
	}
	return &p, nil
}

// ReplayExport writes again, to w, the export p describes, reading only files (paths
// relative to dataDir) with the code an export of the API is written with, and returns
// what it wrote. DuckDB spills to a temporary directory, never into dataDir.
func ReplayExport(ctx context.Context, dataDir string, p *Provenance, files []string, w io.Writer) (rows int64, sha string, err error) {
	if _, ok := exportFormats[p.Format]; !ok {
		return 0, "", fmt.Errorf(errFormat, p.Format)
	}
	cfg := createDefaultConfig().(*Config)
	scratch, err := os.MkdirTemp("", "auditctl-export-")
	if err != nil {
		return 0, "", err
	}
	defer os.RemoveAll(scratch)
	st, err := openStore(dataDir, engineLimits{memory: cfg.MemoryLimit, threads: cfg.Threads, maxTemp: cfg.MaxTempDirectorySize, tempDir: scratch})
	if err != nil {
		return 0, "", err
	}
	defer st.close()
	pinned := slices.Clone(files)
	slices.Sort(pinned)
	st.live = func() ([]string, bool) { return pinned, true }
	f, err := p.filter(cfg.MaxLimit)
	if err != nil {
		return 0, "", fmt.Errorf("filters: %w", err)
	}
	f.pinned = pinned
	plan, err := st.planExport(ctx, f)
	if err != nil {
		return 0, "", err
	}
	res, err := st.writeExport(ctx, p.Format, f, plan.windows, p.CreatedAt, w, nil)
	if err != nil {
		return 0, "", err
	}
	return res.Rows, res.SHA256, nil
}
