// Package browserguard keeps the web pages a user visits from driving the
// distribution's HTTP endpoints through the user's browser. Three checks close the ways
// in: the Host header must name this endpoint (a page that rebinds its own DNS name to
// 127.0.0.1 sends its own name), requests from another site are refused (Origin,
// Sec-Fetch-Site), and every request that changes something carries
// Content-Type: application/json, which a page can send elsewhere only after a CORS
// preflight this endpoint does not grant. The auditquery extension and the auditevent
// receiver wrap their handlers with the same Guard.
package browserguard

import (
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/httpjson"
)

// Config names the hosts and origins a component answers browsers from; components
// squash it into their own config, so the keys are the same everywhere.
type Config struct {
	// AllowedHosts are further host names (no scheme, no port) that requests may be
	// addressed to, beyond the endpoint's own host, localhost, 127.0.0.1 and ::1: the
	// names clients use behind a proxy or on a public bind. "*" alone accepts any Host
	// and needs an authenticator.
	AllowedHosts []string `mapstructure:"allowed_hosts"`
	// AllowedOrigins are further origins (scheme://host[:port]) whose pages may call
	// the endpoint from a browser, beyond the endpoint's own addresses.
	AllowedOrigins []string `mapstructure:"allowed_origins"`
}

// loopbackNames are the names of this machine every endpoint answers to.
var loopbackNames = []string{"localhost", "127.0.0.1", "::1"}

// Problems checks the configuration against the component's server settings srv. Each
// message names the key and the fix.
func (c Config) Problems(srv confighttp.ServerConfig) []error {
	hasAuth := srv.Auth.HasValue()
	var errs []error
	for _, h := range c.AllowedHosts {
		switch {
		case h == "*" && len(c.AllowedHosts) > 1:
			errs = append(errs, errors.New(`allowed_hosts: "*" accepts any host and must be the only entry`))
		case h == "*" && !hasAuth:
			errs = append(errs, errors.New(`allowed_hosts: "*" lets a web page that points its own DNS name at this machine call the endpoint (DNS rebinding); `+
				`list the names clients use, e.g. [audit.example.com], or set auth::authenticator`))
		case h == "*":
		default:
			if err := checkHost(h); err != nil {
				errs = append(errs, fmt.Errorf("allowed_hosts: %q %w", h, err))
			}
		}
	}
	allowed := map[origin]bool{}
	for _, o := range c.AllowedOrigins {
		parsed, err := parseOrigin(o)
		if err != nil {
			errs = append(errs, fmt.Errorf("allowed_origins: %q %w", o, err))
		}
		allowed[parsed] = true
	}
	// cors only adds the headers that let a page read an answer; which pages may call
	// at all is allowed_origins, so a CORS origin missing there would be refused.
	if srv.CORS.HasValue() {
		for _, o := range srv.CORS.Get().AllowedOrigins {
			if parsed, err := parseOrigin(o); err != nil || !allowed[parsed] {
				errs = append(errs, fmt.Errorf("cors::allowed_origins: %q is not in allowed_origins, so its pages are refused; "+
					"list each origin that may call in allowed_origins, e.g. [https://approvals.example.com]", o))
			}
		}
	}
	return errs
}

func checkHost(h string) error {
	switch {
	case strings.TrimSpace(h) == "":
		return errors.New("is empty")
	case strings.Contains(h, "://"):
		return errors.New("must be a host name without scheme, e.g. audit.example.com")
	case strings.ContainsAny(h, "/?#@ \t*"):
		return errors.New("must be a plain host name or IP address, e.g. audit.example.com")
	}
	if _, _, err := net.SplitHostPort(h); err == nil {
		return errors.New("must be a host name without port (any port of that name is accepted)")
	}
	return nil
}

// origin is a browser origin, its port made explicit.
type origin struct{ scheme, host, port string }

func parseOrigin(s string) (origin, error) {
	if s == "*" {
		return origin{}, errors.New(`is not accepted: "*" would let every web page call the endpoint; list each origin, e.g. https://approvals.example.com`)
	}
	u, err := url.Parse(s)
	if err != nil {
		return origin{}, errors.New("must be scheme://host[:port], e.g. https://approvals.example.com")
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Hostname() == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return origin{}, errors.New("must be scheme://host[:port] with scheme http or https and no path, e.g. https://approvals.example.com")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return origin{scheme: scheme, host: strings.ToLower(u.Hostname()), port: port}, nil
}

// Guard refuses requests a web page makes through the user's browser, and passes
// everything else (curl, SDKs, the endpoint's own page) unchanged.
type Guard struct {
	anyHost bool
	// hosts are the names the Host header may carry (lower case, no brackets), and the
	// names of the endpoint's own origins.
	hosts   map[string]bool
	port    string
	origins map[origin]bool
	logger  *zap.Logger
}

// New builds the guard of the listener of srv; bound is the address it listens on, whose
// port is the one a browser reaching it directly sees (behind a proxy, allowed_origins
// names the public origin). cfg must have passed Problems.
func New(cfg Config, srv confighttp.ServerConfig, bound net.Addr, logger *zap.Logger) *Guard {
	g := &Guard{hosts: map[string]bool{}, origins: map[origin]bool{}, logger: logger}
	for _, h := range loopbackNames {
		g.hosts[h] = true
	}
	if h, _, err := net.SplitHostPort(srv.NetAddr.Endpoint); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			g.hosts[normalHost(h)] = true
		}
	}
	for _, h := range cfg.AllowedHosts {
		if h == "*" {
			g.anyHost = true
			continue
		}
		g.hosts[normalHost(h)] = true
	}
	if _, port, err := net.SplitHostPort(bound.String()); err == nil {
		g.port = port
	}
	for _, s := range cfg.AllowedOrigins {
		if o, err := parseOrigin(s); err == nil {
			g.origins[o] = true
		}
	}
	return g
}

func normalHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
}

// hostOf is the host name of a Host header, without port and brackets.
func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return normalHost(h)
	}
	return normalHost(hostport)
}

// Handler wraps next. pages are the paths (such as the web page at /) that another
// site may link to: a top-level navigation from elsewhere opens them; every other path
// refuses every request from another site.
func (g *Guard) Handler(next http.Handler, pages ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status, msg := g.check(r, pages); status != 0 {
			g.logger.Debug("Refused a request a browser may have sent for another site",
				zap.Int("status", status), zap.String("host", r.Host), zap.String("origin", r.Header.Get("Origin")),
				zap.String("method", r.Method), zap.String("path", r.URL.Path))
			httpjson.Error(w, status, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// check answers 0 for a request to pass, or the status and message that refuse it.
func (g *Guard) check(r *http.Request, pages []string) (int, string) {
	if host := hostOf(r.Host); !g.anyHost && !g.hosts[host] {
		return http.StatusMisdirectedRequest, fmt.Sprintf("host %q is not a name of this endpoint; "+
			"if clients reach it under that name (a DNS name, a proxy), add it to allowed_hosts", host)
	}
	o := r.Header.Get("Origin")
	if o != "" && !g.allowedOrigin(o) {
		return http.StatusForbidden, fmt.Sprintf("requests from pages of another site (origin %q) are refused; "+
			"if that page may call this endpoint, add its origin to allowed_origins", o)
	}
	// A browser says where a request comes from in Sec-Fetch-Site; a page on another
	// port of the same machine is "same-site", so only this endpoint's own origins (and
	// allowed_origins, checked above through Origin) pass.
	if site := r.Header.Get("Sec-Fetch-Site"); o == "" && (site == "cross-site" || site == "same-site") {
		navigation := (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
			r.Header.Get("Sec-Fetch-Mode") == "navigate" && slices.Contains(pages, r.URL.Path)
		if !navigation {
			return http.StatusForbidden, fmt.Sprintf("%s requests from another site are refused: open this endpoint's page from its own address", site)
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return http.StatusUnsupportedMediaType, fmt.Sprintf("%s %s needs Content-Type: application/json, got %q",
				r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
	}
	return 0, ""
}

// allowedOrigin reports whether a page of origin s may call: one of this endpoint's own
// addresses (an allowed host on the listener's port) or one of allowed_origins.
func (g *Guard) allowedOrigin(s string) bool {
	o, err := parseOrigin(s)
	if err != nil {
		return false // "null" (sandboxed frames, file: pages) and anything malformed
	}
	return g.origins[o] || (o.port == g.port && g.hosts[o.host])
}
