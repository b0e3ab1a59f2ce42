package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// verifyResult compares `auditctl verify` with `sha256sum` over the same sealed files.
type verifyResult struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	Reps  int   `json:"repetitions"`
	// The median wall time of each command, and the throughput it gives.
	VerifySeconds    float64 `json:"verify_seconds"`
	SHA256SumSeconds float64 `json:"sha256sum_seconds"`
	VerifyMBps       float64 `json:"verify_mb_per_second"`
	SHA256SumMBps    float64 `json:"sha256sum_mb_per_second"`
	// GoSHA256MBps is Go's crypto/sha256 hashing the same files in this process (the
	// hash auditctl uses, with the CPU's SHA extensions where it has them): a stricter
	// floor than sha256sum, reported beside it.
	GoSHA256Seconds float64 `json:"go_sha256_seconds"`
	GoSHA256MBps    float64 `json:"go_sha256_mb_per_second"`
	// Intact is auditctl's verdict on the trail (it must be intact: nothing touched it).
	Intact bool `json:"intact"`
}

// measureVerify times the built auditctl verifying dataDir (the signed checkpoint, the
// hash chain, every sealed file's SHA-256) against sha256sum, and Go's crypto/sha256,
// hashing the same sealed files: in turn, reps times each, after one warm-up of each
// that brings the files into the page cache.
func measureVerify(ctx context.Context, e *env, dataDir string, reps int) (*verifyResult, error) {
	files, err := filepath.Glob(filepath.Join(dataDir, auditschema.SpansDir, "*", "*", "*.parquet"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("verify: no sealed file under %s", dataDir)
	}
	res := &verifyResult{Files: len(files), Reps: reps}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		res.Bytes += st.Size()
	}
	verify := func() error {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, e.auditctlBin, "verify", "--dir", dataDir, "--json")
		cmd.Stdout, cmd.Stderr = &out, io.Discard
		err := cmd.Run()
		var rep struct {
			Intact bool `json:"intact"`
			Files  int  `json:"files"`
		}
		if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
			return fmt.Errorf("auditctl verify: %v, %v", err, jerr)
		}
		res.Intact = rep.Intact
		if rep.Files < len(files) {
			return fmt.Errorf("auditctl verify checked %d files, the trail has %d", rep.Files, len(files))
		}
		return nil
	}
	sha := func() error {
		cmd := exec.CommandContext(ctx, "sha256sum", files...)
		cmd.Stdout = io.Discard
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("sha256sum: %w: %s", err, stderr.String())
		}
		return nil
	}
	buf := make([]byte, 1<<20)
	goHash := func() error {
		for _, path := range files {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.CopyBuffer(sha256.New(), f, buf)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	commands := []func() error{verify, sha, goHash}
	for _, c := range commands {
		if err := c(); err != nil {
			return nil, err
		}
	}
	times := make([][]float64, len(commands))
	for i := 0; i < reps; i++ {
		for j, c := range commands {
			t0 := time.Now()
			if err := c(); err != nil {
				return nil, err
			}
			times[j] = append(times[j], time.Since(t0).Seconds())
		}
	}
	res.VerifySeconds, res.SHA256SumSeconds, res.GoSHA256Seconds = median(times[0]), median(times[1]), median(times[2])
	mb := float64(res.Bytes) / 1e6
	res.VerifyMBps, res.SHA256SumMBps, res.GoSHA256MBps = mb/res.VerifySeconds, mb/res.SHA256SumSeconds, mb/res.GoSHA256Seconds
	e.logf("verify: %d files, %.0f MB: auditctl verify %.0f MB/s (median %.2f s), sha256sum %.0f MB/s (median %.2f s), Go crypto/sha256 %.0f MB/s; intact %v",
		res.Files, mb, res.VerifyMBps, res.VerifySeconds, res.SHA256SumMBps, res.SHA256SumSeconds, res.GoSHA256MBps, res.Intact)
	return res, nil
}
