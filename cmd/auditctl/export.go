package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/otelaudit/otelcol-audit/extension/auditqueryextension"
)

// jobWait is how long one download request of an export job waits for it; the command
// asks again until the job ends or --timeout passes.
const jobWait = 5 * time.Minute

func runExport(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "verify" {
		return runExportVerify(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var api apiFlags
	api.register(fs)
	format := fs.String("format", "", "csv, json, jsonl, xlsx or parquet (required)")
	out := fs.String("o", "-", "file to write the export to; - is standard output")
	provFile := fs.String("provenance", "", "file to write the export's provenance to, for auditctl export verify (default: the -o file with .provenance.json appended; with -o - the provenance goes to standard error)")
	filters, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "auditctl export: %v\n", err)
		return exitCannotRun
	}
	if err := api.check(); err != nil {
		fmt.Fprintf(stderr, "auditctl export: %v\n", err)
		return exitCannotRun
	}
	if *format == "" {
		fmt.Fprintln(stderr, "auditctl export: --format is required: csv, json, jsonl, xlsx or parquet")
		return exitCannotRun
	}
	if *provFile == "" && *out != "-" {
		*provFile = *out + ".provenance.json"
	}
	ctx, cancel := context.WithTimeout(context.Background(), api.timeout)
	defer cancel()

	dst := stdout
	var file *os.File
	if *out != "-" {
		// The export is written beside its name and renamed once complete: a file under
		// that name is always a whole export.
		file, err = os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*.partial")
		if err != nil {
			fmt.Fprintf(stderr, "auditctl export: -o: %v\n", err)
			return exitCannotRun
		}
		defer os.Remove(file.Name())
		defer file.Close()
		dst = file
	}
	var prov []byte
	var rows int64
	if api.dir != "" {
		prov, rows, err = exportDir(ctx, &api, *format, filters, dst, stderr)
	} else {
		filters.Set("format", *format)
		prov, rows, err = api.export(ctx, filters.Encode(), dst)
	}
	if err == nil && file != nil {
		if err = file.Close(); err == nil {
			err = os.Rename(file.Name(), *out)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "auditctl export: %v\n", err)
		return exitCode(err)
	}
	if prov == nil {
		fmt.Fprintf(stderr, "auditctl export: %d rows written, without provenance: the collector's data directory has no readable ledger, so the export cannot be verified\n", rows)
		return exitProblem
	}
	if _, err := auditqueryextension.ParseProvenance(prov); err != nil {
		fmt.Fprintf(stderr, "auditctl export: the export's provenance cannot be read: %v\n", err)
		return exitCannotRun
	}
	if *provFile == "" {
		fmt.Fprintf(stderr, "provenance: %s\n", base64.StdEncoding.EncodeToString(prov))
	} else if err := os.WriteFile(*provFile, append(prov, '\n'), 0o600); err != nil {
		fmt.Fprintf(stderr, "auditctl export: --provenance: %v\n", err)
		return exitCannotRun
	}
	fmt.Fprintf(stderr, "auditctl export: %d rows written; verify with auditctl export verify --dir DIR --provenance %s --export %s\n", rows, orStderr(*provFile), *out)
	return exitOK
}

func orStderr(path string) string {
	if path == "" {
		return "FILE (the provenance line above)"
	}
	return path
}

// export runs GET /api/v1/export and writes the export to w: streamed at once, or, when
// the API makes it a job, downloaded once the job ends. It checks the bytes written
// against the SHA-256 the API sent, and returns the export's provenance as the API gave
// it (nil when it has none) and its row count. The request asks for no wait=: a job's
// file answered after a wait does not name the job, whose status holds the provenance.
func (a *apiFlags) export(ctx context.Context, query string, w io.Writer) (prov []byte, rows int64, err error) {
	resp, err := a.do(ctx, http.MethodGet, "/api/v1/export?"+query, nil, http.StatusOK, http.StatusAccepted)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		sum, err := copyHashed(w, resp.Body)
		if err != nil {
			return nil, 0, err
		}
		// Trailers come after the body; without them the export is incomplete (the
		// server withholds them when the read could not be recorded).
		if want := resp.Trailer.Get("X-Audit-Export-Sha256"); want == "" || want != sum {
			return nil, 0, fmt.Errorf("the export is incomplete: SHA-256 %s of the bytes received, the API sent %q", sum, want)
		}
		if _, err := fmt.Sscan(resp.Trailer.Get("X-Audit-Export-Rows"), &rows); err != nil {
			return nil, 0, fmt.Errorf("the export is incomplete: no row count")
		}
		b64 := resp.Trailer.Get("X-Audit-Export-Provenance")
		if b64 == "" {
			return nil, rows, nil
		}
		p, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, 0, fmt.Errorf("X-Audit-Export-Provenance: %w", err)
		}
		return indentJSON(p), rows, nil
	}
	var j struct {
		ID          string `json:"id"`
		StatusURL   string `json:"status_url"`
		DownloadURL string `json:"download_url"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || j.StatusURL == "" || j.DownloadURL == "" {
		return nil, 0, fmt.Errorf("the export became a job the answer does not name: %v", err)
	}
	return a.downloadJob(ctx, j.StatusURL, j.DownloadURL, w)
}

// downloadJob waits for an export job, writes its file to w and returns its status,
// which holds its provenance.
func (a *apiFlags) downloadJob(ctx context.Context, statusURL, downloadURL string, w io.Writer) ([]byte, int64, error) {
	for {
		resp, err := a.do(ctx, http.MethodGet, downloadURL+"?wait="+jobWait.String(), nil, http.StatusOK, http.StatusAccepted)
		if err != nil {
			return nil, 0, err
		}
		if resp.StatusCode == http.StatusAccepted {
			resp.Body.Close()
			continue
		}
		sum, err := copyHashed(w, resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, 0, err
		}
		if want := resp.Header.Get("X-Audit-Export-Sha256"); want != sum {
			return nil, 0, fmt.Errorf("the download is incomplete: SHA-256 %s of the bytes received, the job's is %q", sum, want)
		}
		break
	}
	resp, err := a.do(ctx, http.MethodGet, statusURL, nil, http.StatusOK)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	status, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, err
	}
	var s struct {
		Rows       int64           `json:"rows_written"`
		Provenance json.RawMessage `json:"provenance"`
	}
	if err := json.Unmarshal(status, &s); err != nil {
		return nil, 0, fmt.Errorf("the job's status: %w", err)
	}
	if len(s.Provenance) == 0 {
		return nil, s.Rows, nil
	}
	return indentJSON(status), s.Rows, nil
}

// copyHashed copies r to w and returns the SHA-256 of what it copied.
func copyHashed(w io.Writer, r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(w, h), r); err != nil {
		return "", fmt.Errorf("receive the export: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// indentJSON is a JSON document indented for a reader; what ParseProvenance reads.
func indentJSON(b []byte) []byte {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		return b
	}
	return buf.Bytes()
}

// exportDir writes the export from the data directory to w and returns its provenance
// (nil without a ledger) and row count.
func exportDir(ctx context.Context, api *apiFlags, format string, filters url.Values, w io.Writer, stderr io.Writer) ([]byte, int64, error) {
	rd, err := api.openDir(stderr)
	if err != nil {
		return nil, 0, err
	}
	defer rd.Close()
	rows, p, err := rd.Export(ctx, format, filters, w)
	if err != nil || p == nil {
		return nil, rows, err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	return b, rows, err
}
