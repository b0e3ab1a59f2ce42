package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/otelaudit/otelcol-audit/extension/auditqueryextension"
)

// Exit codes of every command.
const (
	exitOK = 0
	// exitProblem: the command ran and found a problem — a trail not intact, an export
	// that does not match, a query or export the query API refused as invalid (a bad
	// filter, an SQL statement the sandbox does not allow).
	exitProblem = 1
	// exitCannotRun: bad flags, an unreachable collector, a refused token, a server error.
	exitCannotRun = 2
)

// apiFlags are the flags naming where a query or export reads the trail: a running
// collector's query API, which records the read in the trail, or a data directory,
// which cannot (the trail has one writer, the collector's exporter).
type apiFlags struct {
	url, token string
	dir        string
	unrecorded bool
	timeout    time.Duration
}

func (a *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "url", "", "base URL of a running collector's query API, such as http://localhost:4320; the collector records the read in the trail")
	fs.StringVar(&a.token, "token", "", "bearer token for the query API (default: $AUDITCTL_TOKEN, which keeps it out of the process list)")
	fs.StringVar(&a.dir, "dir", "", "data directory to read instead of --url, with no collector running; such a read is not recorded, so it needs --unrecorded")
	fs.BoolVar(&a.unrecorded, "unrecorded", false, "with --dir: read although the read is recorded nowhere")
	fs.DurationVar(&a.timeout, "timeout", 10*time.Minute, "give up after this long")
}

// check completes and checks the flags; the error names the flag and the fix.
func (a *apiFlags) check() error {
	if a.token == "" {
		a.token = os.Getenv("AUDITCTL_TOKEN")
	}
	switch {
	case a.url != "" && a.dir != "":
		return errors.New("--url and --dir exclude each other: read through a collector or from a data directory")
	case a.dir != "":
		if st, err := os.Stat(a.dir); err != nil || !st.IsDir() {
			return fmt.Errorf("--dir %s is not a directory", a.dir)
		}
		if !a.unrecorded {
			return errors.New("a read through --dir is recorded nowhere in the trail: pass --unrecorded to read anyway, or read through --url, which records it")
		}
		return nil
	case a.url == "":
		return errors.New("--url or --dir is required: the query API of a running collector, such as http://localhost:4320, or a data directory")
	}
	u, err := url.Parse(a.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q must be an http:// or https:// URL such as http://localhost:4320", a.url)
	}
	if a.token != "" && u.Scheme == "http" && !loopback(u.Hostname()) {
		return fmt.Errorf("--url %s is plain http to another host: the token would cross the network readable; use https://", a.url)
	}
	a.url = strings.TrimSuffix(a.url, "/")
	return nil
}

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// apiError is a refusal of the query API: its status and message.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.msg)
}

// exitCode is the exit code of a read that failed with err: a read the API refused as
// invalid (400, or ErrRefused from a data directory) is a problem with the query, anything else means the command
// could not run.
func exitCode(err error) int {
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusBadRequest || errors.Is(err, auditqueryextension.ErrRefused) {
		return exitProblem
	}
	return exitCannotRun
}

// openDir opens --dir for reading, with warnings on stderr.
func (a *apiFlags) openDir(stderr io.Writer) (*auditqueryextension.DirReader, error) {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.TimeKey = ""
	logger := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(stderr), zapcore.WarnLevel))
	return auditqueryextension.OpenDir(a.dir, logger)
}

// do sends a request to the API and returns the response when its status is one of ok;
// otherwise it reads the API's error message into an apiError.
func (a *apiFlags) do(ctx context.Context, method, path string, body io.Reader, ok ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return nil, &apiError{status: resp.StatusCode, msg: msg}
}

// parseArgs parses flags and key=value filters in any order: the flag package stops at
// the first argument that is not a flag, so parsing resumes after each filter.
func parseArgs(fs *flag.FlagSet, args []string) (url.Values, error) {
	filters := url.Values{}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return filters, nil
		}
		k, v, ok := strings.Cut(args[0], "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not a filter: filters are key=value, such as model=gpt-4o or last=24h", args[0])
		}
		filters.Add(k, v)
		args = args[1:]
	}
}
