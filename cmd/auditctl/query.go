package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// runQuery is `auditctl query`: an SQL statement (POST /api/v1/query) or a search by the
// API's filters (GET /api/v1/spans, one page), through a running collector, which records
// the read in the trail like any other, or on a data directory with the same code.
func runQuery(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var api apiFlags
	api.register(fs)
	stmt := fs.String("sql", "", "an SQL statement over the views spans, events, approvals and access, instead of filters")
	output := fs.String("output", "", "table, csv or json (default: table on a terminal, else json)")
	filters, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "auditctl query: %v\n", err)
		return exitCannotRun
	}
	format, err := outputFormat(*output, stdout)
	if err == nil {
		err = api.check()
	}
	if err == nil && *stmt != "" && len(filters) > 0 {
		err = fmt.Errorf("--sql and filters exclude each other: put the conditions in the statement's WHERE")
	}
	if err != nil {
		fmt.Fprintf(stderr, "auditctl query: %v\n", err)
		return exitCannotRun
	}
	ctx, cancel := context.WithTimeout(context.Background(), api.timeout)
	defer cancel()
	var raw []byte
	if api.dir != "" {
		raw, err = queryDir(ctx, &api, *stmt, filters, stderr)
	} else {
		raw, err = queryURL(ctx, &api, *stmt, filters)
	}
	if err != nil {
		fmt.Fprintf(stderr, "auditctl query: %v\n", err)
		return exitCode(err)
	}
	var ans struct {
		// POST /api/v1/query
		Columns   []string `json:"columns"`
		Rows      [][]any  `json:"rows"`
		Truncated bool     `json:"truncated"`
		// GET /api/v1/spans
		Spans      []map[string]any `json:"spans"`
		Total      int64            `json:"total"`
		NextCursor *string          `json:"next_cursor"`
		Skipped    int              `json:"skipped_file_count"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&ans); err != nil {
		fmt.Fprintf(stderr, "auditctl query: the answer is not the API's JSON: %v\n", err)
		return exitCannotRun
	}
	columns, rows := ans.Columns, ans.Rows
	if *stmt == "" {
		columns, rows = spanRows(ans.Spans)
	}
	if format == "json" {
		_, err = stdout.Write(raw)
	} else {
		err = writeRows(stdout, format, columns, rows)
	}
	if err != nil {
		fmt.Fprintf(stderr, "auditctl query: write the result: %v\n", err)
		return exitCannotRun
	}
	switch {
	case ans.Truncated:
		fmt.Fprintf(stderr, "auditctl query: the result was cut at %d rows; aggregate, or export the rows instead\n", len(rows))
	case ans.NextCursor != nil:
		fmt.Fprintf(stderr, "auditctl query: %d of %d rows; the next page: add cursor=%s\n", len(rows), ans.Total, *ans.NextCursor)
	}
	if ans.Skipped > 0 {
		fmt.Fprintf(stderr, "auditctl query: %d sealed file(s) could not be read and were left out; auditctl verify says why\n", ans.Skipped)
	}
	return exitOK
}

// queryURL runs the query through the collector's API and returns its answer.
func queryURL(ctx context.Context, api *apiFlags, stmt string, filters url.Values) ([]byte, error) {
	var resp *http.Response
	var err error
	if stmt != "" {
		body, _ := json.Marshal(map[string]string{"sql": stmt})
		resp, err = api.do(ctx, http.MethodPost, "/api/v1/query", bytes.NewReader(body), http.StatusOK)
	} else {
		resp, err = api.do(ctx, http.MethodGet, "/api/v1/spans?"+filters.Encode(), nil, http.StatusOK)
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the answer: %w", err)
	}
	return raw, nil
}

// queryDir runs the query on the data directory and returns what the API would answer.
func queryDir(ctx context.Context, api *apiFlags, stmt string, filters url.Values, stderr io.Writer) ([]byte, error) {
	rd, err := api.openDir(stderr)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var ans any
	if stmt != "" {
		ans, err = rd.Query(ctx, stmt)
	} else {
		ans, err = rd.Search(ctx, filters)
	}
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(ans)
	return append(b, '\n'), err
}
