package main

import (
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

func verifyOptions(pubKeyFile, trustedFile string) (ledger.VerifyOptions, error) {
	var opts ledger.VerifyOptions
	pub, err := readOptional(pubKeyFile, "--public-key")
	if err != nil {
		return opts, err
	}
	opts.PublicKey = string(pub)
	opts.TrustedCheckpoint, err = readOptional(trustedFile, "--trusted-checkpoint")
	return opts, err
}

func verify(dir string, opts ledger.VerifyOptions) (*ledger.Report, error) {
	return ledger.Verify(dir, opts)
}
