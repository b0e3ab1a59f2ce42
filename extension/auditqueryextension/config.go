package auditqueryextension

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/browserguard"
	"github.com/otelaudit/otelcol-audit/internal/confstrict"
	"github.com/otelaudit/otelcol-audit/internal/dlp"
	"github.com/otelaudit/otelcol-audit/internal/netguard"
)

// Config of the auditquery extension.
type Config struct {
	// ServerConfig is the HTTP server: endpoint (default localhost:4320), TLS, auth and
	// the other confighttp settings.
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
	// Browser is allowed_hosts and allowed_origins: the host names and the other sites'
	// origins a browser may reach the API and the page from (see internal/browserguard).
	Browser browserguard.Config `mapstructure:",squash"`
	// Trail names the audittrail extension whose trail is read (and where reads are
	// recorded).
	Trail component.ID `mapstructure:"trail"`
	// MaxLimit caps the limit parameter of a page of results.
	MaxLimit int `mapstructure:"max_limit"`
	// QueryTimeout bounds each query; a query past it is cancelled.
	QueryTimeout time.Duration `mapstructure:"query_timeout"`
	// ExportTimeout bounds one export, which streams every matching row.
	ExportTimeout time.Duration `mapstructure:"export_timeout"`
	// MemoryLimit caps DuckDB's memory, in DuckDB's notation (e.g. "512MB"); past it
	// DuckDB spills to <directory>/scratch/duckdb or fails the query.
	MemoryLimit string `mapstructure:"memory_limit"`
	// Threads is how many threads DuckDB runs a query on; the rest of the machine stays
	// with ingestion.
	Threads int `mapstructure:"threads"`
	// SQLProcessMemory bounds the resident memory of the process a POST /api/v1/query
	// statement runs in (its DuckDB with memory_limit, and what DuckDB does not count:
	// the values scalar functions build); past it the statement is stopped (400). In
	// DuckDB's notation, larger than memory_limit.
	SQLProcessMemory string `mapstructure:"sql_process_memory"`
	// MaxTempDirectorySize caps what DuckDB spills to <directory>/scratch/duckdb, in
	// DuckDB's notation (e.g. "1GB"); a query that needs more fails.
	MaxTempDirectorySize string `mapstructure:"max_temp_directory_size"`
	// PublicKeyFile is the ledger's verifier key used by GET /api/v1/verify. Empty uses
	// the copy in <directory>/ledger/public.key, which proves less: keep one elsewhere.
	PublicKeyFile string `mapstructure:"public_key_file"`
	// RecordAccess records every read of the trail (searches, details, replays, stats,
	// exports, SQL, verification) as a row with record_type access, through the
	// trail. It needs a trail this collector writes (not read_only). Turn off only for a
	// query-only collector whose reads are recorded elsewhere.
	RecordAccess bool `mapstructure:"record_access"`
	// Authorization maps authenticated callers to roles.
	Authorization AuthorizationConfig `mapstructure:"authorization"`
	// Exports configures large exports, which run as jobs.
	Exports ExportsConfig `mapstructure:"exports"`
	// DLP masks what access records quote from a request (filters, free text, SQL,
	// job ids, header values) before they reach the trail. Set it as the audit
	// processor's dlp section is set, so a read keeps no more than a span would.
	DLP DLPConfig `mapstructure:"dlp"`
}

// DLPConfig has the shape of the audit processor's dlp section: per detector kind
// redact, block or off; the key names whose values are secrets; top-level keys exempt
// from personal-data detectors; and an optional HMAC key file.
type DLPConfig struct {
	dlp.Config `mapstructure:",squash"`
	// HMACKeyFile holds a key (at least 32 bytes) to replace matches with a keyed HMAC
	// instead of [REDACTED:<kind>]; with the processor's key, a value searched for
	// correlates with the spans that held it, without being revealed.
	HMACKeyFile string `mapstructure:"hmac_key_file"`
}

// masker builds the masker of dlp, reading its HMAC key file.
func (c *DLPConfig) masker() (*dlp.Masker, error) {
	cfg := c.Config
	if c.HMACKeyFile != "" {
		k, err := dlp.LoadHMACKey(c.HMACKeyFile)
		if err != nil {
			return nil, fmt.Errorf("dlp::hmac_key_file: %w", err)
		}
		cfg.HMACKey = k
	}
	return dlp.NewMasker(cfg)
}

// Roles of a caller.
const (
	RoleAdmin       = "admin"        // every row, SQL, every export job
	RoleTenantAdmin = "tenant_admin" // every row of its tenant_id, its own export jobs, no SQL
	RoleMember      = "member"       // only the rows of its own user_id (and tenant), no SQL
	RoleNone        = "none"         // nothing: 403
)

// AuthorizationConfig maps the callers an authenticator names to roles. Without an
// authenticator (the localhost default) every caller is an admin.
type AuthorizationConfig struct {
	// PrincipalAttribute is the authenticator's attribute that names the caller:
	// "subject" for oidc (the token's sub, or its username_claim).
	PrincipalAttribute string `mapstructure:"principal_attribute"`
	// GroupsAttribute is the authenticator's attribute that lists the caller's groups:
	// "membership" for oidc (its groups_claim).
	GroupsAttribute string `mapstructure:"groups_attribute"`
	// Principals maps a caller's name to its role (and, for members and tenant admins,
	// whose rows it sees).
	Principals map[string]PrincipalConfig `mapstructure:"principals"`
	// Groups maps a group to a role (admin, member or none: a tenant admin needs its
	// tenant, so it is listed under principals); a caller in several groups gets the
	// strongest role. A caller listed in principals gets that entry, whatever its groups.
	Groups map[string]string `mapstructure:"groups"`
	// DefaultRole applies to authenticated callers matched by neither: none, member or
	// admin. Unset, it is admin when no principals or groups are listed (an authenticator
	// that names nobody, such as bearertokenauth: holding a token is the permission) and
	// none otherwise.
	DefaultRole string `mapstructure:"default_role"`
}

// PrincipalConfig is the role of one caller.
type PrincipalConfig struct {
	Role string `mapstructure:"role"`
	// UserID is the user_id whose rows a member sees; empty means the caller's name.
	UserID string `mapstructure:"user_id"`
	// Tenant, when set, further limits a member to the rows of that tenant_id; a
	// tenant_admin needs it and sees every row of that tenant_id.
	Tenant string `mapstructure:"tenant"`
}

// ExportsConfig configures export jobs.
type ExportsConfig struct {
	// MaxDirectRows is the largest export GET /api/v1/export streams at once; a larger
	// one answers 202 with a job to poll and download.
	MaxDirectRows int64 `mapstructure:"max_direct_rows"`
	// Directory keeps the jobs and their files; empty means <directory>/exports.
	Directory string `mapstructure:"directory"`
	// TTL is how long a finished export stays downloadable.
	TTL time.Duration `mapstructure:"ttl"`
	// Workers is how many jobs run at once; the others wait, queued.
	Workers int `mapstructure:"workers"`
	// MaxBytesPerCaller bounds the disk the files of one caller's export jobs take,
	// finished and being written: a job is refused (507) while they take it all, and
	// stopped (failed, its partial file removed) when it would grow past it.
	MaxBytesPerCaller int64 `mapstructure:"max_bytes_per_caller"`
	// MaxBytesTotal bounds the same for every caller's jobs together.
	MaxBytesTotal int64 `mapstructure:"max_bytes_total"`
}

// exportsDir is the directory of export jobs for the trail of layout l.
func (c *Config) exportsDir(l auditschema.Layout) string {
	if c.Exports.Directory != "" {
		return c.Exports.Directory
	}
	return l.Exports()
}

var _ component.Config = (*Config)(nil)

// Unmarshal decodes the configuration, refusing unknown keys (see internal/confstrict)
// and naming where the data directory went.
func (c *Config) Unmarshal(conf *confmap.Conf) error {
	if err := confstrict.RejectMoved(conf, map[string]string{
		"directory": "the audittrail extension owns the trail; set directory under extensions::audittrail and write trail: audittrail here (see the audittrail README)",
	}); err != nil {
		return err
	}
	if err := confstrict.RejectUnknownKeys(conf, c); err != nil {
		return err
	}
	return conf.Unmarshal(c)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if err := netguard.CheckBind("endpoint", c.ServerConfig.NetAddr.Endpoint, c.ServerConfig.Auth.HasValue()); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Browser.Problems(c.ServerConfig)...)
	if c.Trail.Type().String() == "" {
		errs = append(errs, errors.New("trail must name an audittrail extension, e.g. trail: audittrail"))
	}
	if c.MaxLimit <= 0 {
		errs = append(errs, fmt.Errorf("max_limit must be positive, got %d", c.MaxLimit))
	}
	if c.ExportTimeout <= 0 {
		errs = append(errs, fmt.Errorf("export_timeout must be positive, got %s", c.ExportTimeout))
	}
	if c.QueryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("query_timeout must be positive, got %s", c.QueryTimeout))
	}
	if !memoryLimitPattern.MatchString(c.MemoryLimit) {
		errs = append(errs, fmt.Errorf("memory_limit %q must be a size such as 512MB or 2GB", c.MemoryLimit))
	}
	if sqlMem, ok := parseSize(c.SQLProcessMemory); !ok {
		errs = append(errs, fmt.Errorf("sql_process_memory %q must be a size such as 1GB", c.SQLProcessMemory))
	} else if duckMem, ok := parseSize(c.MemoryLimit); ok && sqlMem <= duckMem {
		errs = append(errs, fmt.Errorf("sql_process_memory %s must be larger than memory_limit %s (the SQL process holds a DuckDB of memory_limit), e.g. 1GB", c.SQLProcessMemory, c.MemoryLimit))
	}
	if c.Threads <= 0 {
		errs = append(errs, fmt.Errorf("threads must be positive, e.g. 2, got %d", c.Threads))
	}
	if !memoryLimitPattern.MatchString(c.MaxTempDirectorySize) {
		errs = append(errs, fmt.Errorf("max_temp_directory_size %q must be a size such as 1GB", c.MaxTempDirectorySize))
	}
	errs = append(errs, c.Authorization.validate(c.ServerConfig.Auth.HasValue())...)
	if c.Exports.MaxDirectRows < 0 {
		errs = append(errs, fmt.Errorf("exports::max_direct_rows must be zero (every export is a job) or positive, got %d", c.Exports.MaxDirectRows))
	}
	if c.Exports.TTL <= 0 {
		errs = append(errs, fmt.Errorf("exports::ttl must be positive, got %s", c.Exports.TTL))
	}
	if c.Exports.Workers <= 0 {
		errs = append(errs, fmt.Errorf("exports::workers must be positive, got %d", c.Exports.Workers))
	}
	if c.Exports.MaxBytesPerCaller <= 0 {
		errs = append(errs, fmt.Errorf("exports::max_bytes_per_caller must be positive (bytes, e.g. 268435456 for 256 MiB), got %d", c.Exports.MaxBytesPerCaller))
	}
	if c.Exports.MaxBytesTotal <= 0 {
		errs = append(errs, fmt.Errorf("exports::max_bytes_total must be positive (bytes, e.g. 1073741824 for 1 GiB), got %d", c.Exports.MaxBytesTotal))
	} else if c.Exports.MaxBytesPerCaller > c.Exports.MaxBytesTotal {
		errs = append(errs, fmt.Errorf("exports::max_bytes_per_caller (%d) must not exceed exports::max_bytes_total (%d)", c.Exports.MaxBytesPerCaller, c.Exports.MaxBytesTotal))
	}
	if err := c.DLP.Config.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("dlp: %w", err))
	}
	return errors.Join(errs...)
}

// parseSize reads a size in DuckDB's notation (KB, MB, ... powers of 1000; KiB, MiB, ...
// powers of 1024).
func parseSize(v string) (int64, bool) {
	m := memoryLimitPattern.FindStringSubmatch(v)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(v, m[2])), 64)
	if err != nil {
		return 0, false
	}
	unit := map[string]float64{"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	return int64(n * unit), true
}

// defaultRole is the role of an authenticated caller no entry names.
func (a *AuthorizationConfig) defaultRole() string {
	switch {
	case a.DefaultRole != "":
		return a.DefaultRole
	case len(a.Principals) == 0 && len(a.Groups) == 0:
		return RoleAdmin
	default:
		return RoleNone
	}
}

func validRole(r string) bool { return r == RoleAdmin || r == RoleMember || r == RoleNone }

func (a *AuthorizationConfig) validate(hasAuth bool) []error {
	var errs []error
	if a.DefaultRole != "" && !validRole(a.DefaultRole) {
		errs = append(errs, fmt.Errorf("authorization::default_role %q must be admin, member or none (a tenant_admin is listed under principals with its tenant)", a.DefaultRole))
	}
	for name, p := range a.Principals {
		switch {
		case p.Role == RoleTenantAdmin:
			if strings.TrimSpace(p.Tenant) == "" {
				errs = append(errs, fmt.Errorf("authorization::principals::%s: role tenant_admin needs the tenant_id it administers, e.g. {role: tenant_admin, tenant: acme}", name))
			}
			if p.UserID != "" {
				errs = append(errs, fmt.Errorf("authorization::principals::%s: user_id only applies to role member; a tenant_admin sees every user of its tenant", name))
			}
		case !validRole(p.Role):
			errs = append(errs, fmt.Errorf("authorization::principals::%s::role %q must be admin, tenant_admin, member or none", name, p.Role))
		case p.Role != RoleMember && (p.UserID != "" || p.Tenant != ""):
			errs = append(errs, fmt.Errorf("authorization::principals::%s: user_id and tenant only apply to role member (and tenant to tenant_admin)", name))
		}
	}
	for g, r := range a.Groups {
		if !validRole(r) {
			errs = append(errs, fmt.Errorf("authorization::groups::%s %q must be admin, member or none (a tenant_admin is listed under principals with its tenant)", g, r))
		}
	}
	if (len(a.Principals) > 0 || len(a.Groups) > 0) && !hasAuth {
		errs = append(errs, errors.New("authorization: principals and groups need an authenticator to name callers; set auth::authenticator (e.g. oidc) or remove them"))
	}
	return errs
}
