// Program auditctl works on an otelcol-audit trail from the command line: it verifies a
// data directory, and queries and exports the trail through a running collector's query
// API or straight from a data directory.
//
// Every command writes its results to standard output and its diagnostics (bad flags, an
// unreachable collector, a refusal, where the next page starts) to standard error, and
// exits 0 when it ran and found nothing wrong, 1 when it ran and found a problem, and 2
// when it cannot run.
//
//	auditctl verify --dir DIR [--public-key FILE] [--trusted-checkpoint FILE] [--json]
//
// verify prints one line per finding, then "note: " lines, then a "completeness:" line
// (what the ledger's tallies say the trail accepted, refused and stores; an hour whose
// files hold another number of rows than it accepted is a finding), then a summary line
// starting "intact:" or "NOT intact:" (or, with --json, the report alone, completeness
// per hour included); it exits 1 when the trail is not intact.
//
//	auditctl query (--url URL [--token T] | --dir DIR --unrecorded) [--output table|csv|json] key=value ...
//	auditctl query (--url URL [--token T] | --dir DIR --unrecorded) [--output table|csv|json] --sql "SELECT ..."
//
// query searches by the filters of GET /api/v1/spans (one page; the next page's cursor is
// on standard error) or runs an SQL statement in the sandbox of POST /api/v1/query:
// through a running collector, which records the read, or on a data directory with the
// same code, a read recorded nowhere, which --unrecorded acknowledges. It exits 1 when
// the query is refused as invalid (a bad filter, a statement the SQL sandbox does not
// allow).
//
//	auditctl export (--url URL [--token T] | --dir DIR --unrecorded) --format FORMAT [-o FILE] [--provenance FILE] key=value ...
//
// export writes every row the filters select, as GET /api/v1/export does (through the
// API, following the job when it makes one, with the bytes checked against the API's
// SHA-256), to FILE or standard output, and its provenance to FILE.provenance.json (or
// --provenance, or standard error) for export verify. It exits 1 when the export is
// refused as invalid, or has no provenance (a data directory without a ledger; the
// file is written).
//
//	auditctl export verify --dir DIR --provenance FILE [--export FILE] [--public-key FILE] [--json]
//
// export verify proves an export of the query API against the trail state its
// provenance records: one line per finding, then "note: " lines, then a summary line
// starting "match:", "MISMATCH:" or "CANNOT RE-READ:" (or, with --json, the report
// alone); it exits 1 on a mismatch, and 2 when it cannot run, including when files of
// that state have since been compacted or retired.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `usage: auditctl <command> [flags]

commands:
  verify          check the data directory against its signed, hash-chained ledger
  query           search by the API's filters (key=value ...) or run --sql, through --url
                  (recorded) or on --dir --unrecorded
  export          write every row the filters select, with its provenance, likewise
  export verify   prove an export's rows are what the trail state it was read from returns

Results go to standard output, diagnostics to standard error. Exit status: 0 ok, 1 the
command found a problem (a trail not intact, an export that does not match, a query or
export the API refused), 2 it cannot run (bad flags, unreachable, unauthorized).
Run auditctl <command> -h for its flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "verify":
		return runVerify(args[1:], stdout, stderr)
	case "query":
		return runQuery(args[1:], stdout, stderr)
	case "export":
		return runExport(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "auditctl: unknown command %q\n%s", args[0], usage)
		return 2
	}
}

func runVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "data directory of the auditparquet exporter (required)")
	pubKey := fs.String("public-key", "", "file with the ledger's public key, kept apart from the data (default: the copy in DIR/ledger/public.key)")
	trusted := fs.String("trusted-checkpoint", "", "an earlier copy of DIR/ledger/checkpoint, kept apart from the data: detects rollbacks")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "auditctl verify: --dir is required")
		return 2
	}
	if st, err := os.Stat(*dir); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "auditctl verify: --dir %s is not a directory\n", *dir)
		return 2
	}
	opts, err := verifyOptions(*pubKey, *trusted)
	if err != nil {
		fmt.Fprintf(stderr, "auditctl verify: %v\n", err)
		return 2
	}
	rep, err := verify(*dir, opts)
	if err != nil {
		fmt.Fprintf(stderr, "auditctl verify: %v\n", err)
		return 2
	}
	if *asJSON {
		writeJSON(stdout, rep)
	} else {
		for _, f := range rep.Findings {
			fmt.Fprintln(stdout, f.String())
		}
		for _, n := range rep.Notes {
			fmt.Fprintln(stdout, "note: "+n)
		}
		fmt.Fprintln(stdout, completenessLine(rep.Completeness))
		status := "intact"
		if !rep.Intact {
			status = fmt.Sprintf("NOT intact: %d finding(s)", len(rep.Findings))
		}
		fmt.Fprintf(stdout, "%s: %d ledger entries (%d signed), %d files, %d bytes verified\n",
			status, rep.Entries, rep.Signed, rep.Files, rep.Bytes)
	}
	if !rep.Intact {
		return 1
	}
	return 0
}

func readOptional(path, what string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(b) == 0 {
		return nil, errors.New(what + ": file is empty")
	}
	return b, nil
}

// writeJSON writes a report as indented JSON, the --json output of the verify commands.
func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
