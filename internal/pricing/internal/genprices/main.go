// Command genprices regenerates the shipped price table (internal/pricing/prices.json)
// from the genai-prices v2 feed and copies the feed's licence beside it. It is run by
// `go generate ./internal/pricing`; see internal/pricing/README.md.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/otelaudit/otelcol-audit/internal/pricing/internal/feed"
	"github.com/otelaudit/otelcol-audit/internal/pricing/internal/tablefmt"
)

func main() {
	in := flag.String("in", "", "genai-prices v2 data file (prices/new_data/v2/data.json)")
	license := flag.String("license", "", "the feed's LICENSE file")
	commit := flag.String("commit", "", "pydantic/genai-prices commit the data file was taken from (40 hex digits)")
	path := flag.String("path", "prices/new_data/v2/data.json", "path of the data file in the upstream repository")
	out := flag.String("out", "prices.json", "table to write")
	licenseOut := flag.String("license-out", "LICENSE.genai-prices", "where to copy the licence")
	flag.Parse()
	if err := run(*in, *license, *commit, *path, *out, *licenseOut); err != nil {
		fmt.Fprintln(os.Stderr, "genprices:", err)
		os.Exit(1)
	}
}

func run(in, license, commit, path, out, licenseOut string) error {
	if in == "" || license == "" || commit == "" {
		return fmt.Errorf("-in, -license and -commit are required")
	}
	data, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	lic, err := os.ReadFile(license)
	if err != nil {
		return err
	}
	table, rep, err := feed.Convert(data, lic, feed.Origin{Commit: commit, Path: path})
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	enc, err := tablefmt.Encode(table)
	if err != nil {
		return err
	}
	if err := writeIfChanged(out, enc); err != nil {
		return err
	}
	if err := writeIfChanged(licenseOut, lic); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "genprices: %s: %d providers, %d models, version %s\n", out, rep.Providers, rep.Models, table.Version)
	fmt.Fprintf(os.Stderr, "genprices: %d models have tiered prices; the base tier is kept\n", rep.Tiered)
	for _, k := range rep.IgnoredKinds() {
		fmt.Fprintf(os.Stderr, "genprices: not kept: %s (%d models)\n", k, rep.Ignored[k])
	}
	return nil
}

// writeIfChanged leaves an identical file untouched so its modification time tells when
// the content last changed.
func writeIfChanged(name string, data []byte) error {
	if old, err := os.ReadFile(name); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return os.WriteFile(name, data, 0o644)
}
