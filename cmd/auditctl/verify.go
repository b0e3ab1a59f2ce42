package main

import (
	"fmt"
	"sort"
	"strings"

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

// completenessLine sums the report's hours: "completeness: 3 hours, accepted 120
// (event 20, span 100), refused 4 (back_pressure 3, invalid 1), stored 120, 0 hours
// with a gap". The hours themselves are in --json.
func completenessLine(hours []ledger.HourCompleteness) string {
	accepted, refused := map[string]int64{}, map[string]int64{}
	var stored int64
	gaps := 0
	for _, h := range hours {
		for k, v := range h.Accepted {
			accepted[k] += v
		}
		for k, v := range h.Refused {
			refused[k] += v
		}
		stored += h.Stored
		if h.Stored != h.Expected {
			gaps++
		}
	}
	return fmt.Sprintf("completeness: %d hours, accepted %s, refused %s, stored %d, %d hours with a gap",
		len(hours), countsOf(accepted), countsOf(refused), stored, gaps)
}

// countsOf is "total (key n, ...)".
func countsOf(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	var total int64
	for k, v := range m {
		keys = append(keys, k)
		total += v
	}
	if len(keys) == 0 {
		return "0"
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}
