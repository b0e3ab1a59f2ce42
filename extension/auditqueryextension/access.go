package auditqueryextension

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/dlp"
	"github.com/otelaudit/otelcol-audit/internal/httpjson"
)

// Attributes of an access record beyond the audit.* columns; they land in the row's
// attributes JSON.
const (
	attrAccessStatus    = "audit.access.http_status"
	attrAccessRows      = "audit.access.rows"
	attrAccessSQLHash   = "audit.access.sql_sha256"
	attrAccessFormat    = "audit.access.format"
	attrAccessExportSHA = "audit.access.export_sha256"
	attrAccessBytes     = "audit.access.export_bytes"
	attrAccessJob       = "audit.access.export_job"
	attrAccessRole      = "audit.access.role"
	// attrAccessSkipped counts the sealed files a read left out because they could not
	// be read; attrAccessSkippedFiles names them, with their errors, for an admin's read.
	attrAccessSkipped      = "audit.access.skipped_file_count"
	attrAccessSkippedFiles = "audit.access.skipped_files"
)

// caller is who made a request, what its role lets it see, and the access record the
// request leaves in the trail.
type caller struct {
	// principal names the caller as its authenticator did; "" without an authenticator.
	principal string
	// unnamed marks a caller whose authenticator accepted its credential but named
	// nobody (an OIDC token with an empty sub): it is refused.
	unnamed bool
	role    string
	// userID limits a member to its own rows; tenant limits a member, or a tenant admin,
	// to the rows of that tenant_id.
	userID, tenant string
	start          time.Time
	acc            access
}

// access is what one read of the trail did.
type access struct {
	action  string         // search, detail, trace, stats, export, export_job, query, verify
	request map[string]any // what was asked: the filters, the SQL text, the job id
	rows    *int64
	format  string
	sha256  string
	bytes   *int64
	jobID   string
	// skipped are the sealed files the read left out (unreadable.go).
	skipped []skippedFile
	// provenance is the trail state an export was read from.
	provenance *Provenance
}

func (a *access) setRows(n int64) { a.rows = &n }

// scopeColumns are the columns a row must hold the given values in for the caller to
// see it; none for an admin. Any role but admin and tenant admin is scoped as a member.
func (c *caller) scopeColumns() [][2]string {
	switch c.role {
	case RoleAdmin:
		return nil
	case RoleTenantAdmin:
		return [][2]string{{"tenant_id", c.tenant}}
	}
	cols := [][2]string{{"user_id", c.userID}}
	if c.tenant != "" {
		cols = append(cols, [2]string{"tenant_id", c.tenant})
	}
	return cols
}

// scope is the condition limiting a member or tenant admin to its rows ("" for an
// admin), to AND into a WHERE clause, and its arguments.
func (c *caller) scope() (string, []any) {
	var conds []string
	var args []any
	for _, col := range c.scopeColumns() {
		conds = append(conds, col[0]+" = ?")
		args = append(args, col[1])
	}
	return strings.Join(conds, " AND "), args
}

// viewScope is scope with its values inlined as SQL string literals, for the WHERE of
// the views an SQL statement reads (DDL takes no parameters); "" for an admin.
func (c *caller) viewScope() string {
	var conds []string
	for _, col := range c.scopeColumns() {
		conds = append(conds, col[0]+" = '"+strings.ReplaceAll(col[1], "'", "''")+"'")
	}
	return strings.Join(conds, " AND ")
}

// restrict narrows a search to the rows the caller may see.
func (c *caller) restrict(f *spanFilter) {
	for _, col := range c.scopeColumns() {
		f.in = append(f.in, inClause{column: col[0], values: []string{col[1]}})
	}
}

// sameScope reports whether c and o have the same role and see the same rows.
func (c *caller) sameScope(o *caller) bool {
	return c.role == o.role && slices.Equal(c.scopeColumns(), o.scopeColumns())
}

// identify names the caller of r and resolves its role. Without an authenticator every
// caller is an admin: the default listener is on localhost only, and a non-loopback
// endpoint without one is refused at start.
func (e *queryExtension) identify(r *http.Request) *caller {
	c := &caller{role: RoleAdmin, start: time.Now()}
	if !e.cfg.ServerConfig.Auth.HasValue() {
		return c
	}
	az := e.cfg.Authorization
	c.role = az.defaultRole()
	info := client.FromContext(r.Context())
	if info.Auth == nil {
		// The authenticator names nobody (bearertokenauth): holding the credential is
		// the permission, and default_role says what it grants.
		return c
	}
	// An authenticator that names callers and named nobody gives no identity to scope
	// rows by or to record: such a caller gets no role, however default_role or its
	// groups would map it.
	s, _ := info.Auth.GetAttribute(az.PrincipalAttribute).(string)
	if strings.TrimSpace(s) == "" {
		c.role, c.unnamed = RoleNone, true
		return c
	}
	c.principal = s
	c.userID = c.principal
	if p, ok := az.Principals[c.principal]; ok {
		c.role = p.Role
		if p.UserID != "" {
			c.userID = p.UserID
		}
		c.tenant = p.Tenant
		return c
	}
	var groups []string
	switch g := info.Auth.GetAttribute(az.GroupsAttribute).(type) {
	case []string:
		groups = g
	case string:
		groups = []string{g}
	}
	best := -1
	for _, g := range groups {
		if r, ok := az.Groups[g]; ok {
			best = max(best, roleRank(r))
		}
	}
	if best >= 0 {
		c.role = roleByRank[best]
	}
	return c
}

var roleByRank = []string{RoleNone, RoleMember, RoleAdmin}

func roleRank(r string) int { return slices.Index(roleByRank, r) }

// statusClientClosed records a read whose client closed the connection before the answer.
const statusClientClosed = 499

// apiHandler serves one API route for an identified caller.
type apiHandler func(w http.ResponseWriter, r *http.Request, c *caller)

// guard identifies the caller, refuses it when its role does not allow the route (403,
// recorded as denied), and runs h otherwise.
func (e *queryExtension) guard(action string, adminsOnly bool, h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := e.identify(r)
		c.acc = access{action: action, request: map[string]any{"method": r.Method, "path": r.URL.Path}}
		if len(r.URL.RawQuery) > 0 {
			c.acc.request["query"] = r.URL.Query()
		}
		switch {
		case c.unnamed:
			e.fail(w, r, c, http.StatusUnauthorized, fmt.Sprintf("the authenticator accepted the credential but named no caller (its %q attribute is empty, e.g. a token with an empty sub): a caller without a name is refused", e.cfg.Authorization.PrincipalAttribute))
			return
		case c.role == RoleNone:
			e.fail(w, r, c, http.StatusForbidden, fmt.Sprintf("caller %q has no role here; an admin maps it under authorization::principals or ::groups", c.principal))
			return
		case adminsOnly && c.role != RoleAdmin && c.role != RoleTenantAdmin:
			e.fail(w, r, c, http.StatusForbidden, fmt.Sprintf("%s needs the admin or tenant_admin role; caller %q is a %s", r.URL.Path, c.principal, c.role))
			return
		case readsTables[action] && !e.waitTables(r.Context()):
			w.Header().Set("Retry-After", "10")
			e.fail(w, r, c, http.StatusServiceUnavailable, fmt.Sprintf("the tables every read joins (approval decisions, redelivered copies, the spans' context from their runs) are still being built from the trail's files, %s after the start; try again in a few seconds",
				time.Since(e.warmStarted).Round(time.Second)))
			return
		}
		h(w, r, c)
	}
}

// readsTables are the actions that read the trail through the tables the extension
// builds when it starts (store.warm).
var readsTables = map[string]bool{"search": true, "detail": true, "trace": true, "stats": true, "query": true, "export": true, "export_job": true}

// tablesWait bounds how long a read waits for the tables built at start: on a small
// trail they are ready within it; on a large one (about 90 s on 10 M spans) the read is
// answered 503 with Retry-After rather than held past the server's write timeout.
var tablesWait = 5 * time.Second

// waitTables waits for the tables built at start, up to tablesWait and the query
// timeout; it reports whether they are ready.
func (e *queryExtension) waitTables(ctx context.Context) bool {
	if e.tablesReady == nil {
		return true
	}
	select {
	case <-e.tablesReady:
		return true
	default:
	}
	t := time.NewTimer(min(tablesWait, e.cfg.QueryTimeout))
	defer t.Stop()
	select {
	case <-e.tablesReady:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// reply records the access, then sends body; when the access cannot be recorded the
// caller gets a 503 and no data.
func (e *queryExtension) reply(w http.ResponseWriter, r *http.Request, c *caller, status int, body any) {
	if err := e.record(r.Context(), r, c, status); err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "the read could not be recorded in the trail, so it is refused: "+err.Error())
		return
	}
	httpjson.Write(w, status, body)
}

// fail records a refused or failed access and answers the error.
func (e *queryExtension) fail(w http.ResponseWriter, r *http.Request, c *caller, status int, msg string) {
	if err := e.record(r.Context(), r, c, status); err != nil {
		e.set.Logger.Error("Could not record a refused read", zap.Error(err), zap.Int("status", status))
	}
	httpjson.Error(w, status, msg)
}

// queryFailed answers a failed query (503 past the timeout, else 500) and reports
// whether it did.
func (e *queryExtension) queryFailed(ctx context.Context, w http.ResponseWriter, r *http.Request, c *caller, err error) bool {
	if err == nil {
		return false
	}
	status := http.StatusInternalServerError
	switch {
	case errors.Is(r.Context().Err(), context.Canceled):
		// The client went away (the page cancels a search its user replaced): nothing
		// failed on this side. The read is still recorded, as 499.
		e.set.Logger.Debug("Query cancelled by the client", zap.Error(err))
		status = statusClientClosed
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		e.set.Logger.Warn("Query timed out", zap.Error(err))
		status = http.StatusServiceUnavailable
	default:
		e.set.Logger.Error("Query failed", zap.Error(err))
	}
	e.fail(w, r, c, status, "query failed: "+err.Error())
	return true
}

// record appends the access record of c to the trail, durably. The record is the
// extension's own, so its record type (access) is kept: the pipeline's exporter demotes
// any row that claims it.
func (e *queryExtension) record(ctx context.Context, r *http.Request, c *caller, status int) error {
	if c.acc.action == "" || !e.cfg.RecordAccess {
		return nil // not a read of the trail (the status of an export job), or not recorded
	}
	now := time.Now()
	td := accessTraces(r, c, status, now, e.masker)
	// The client may be gone (a cancelled download is still a read): record regardless.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := e.trail.Append(ctx, auditschema.BatchOf(td, now, true)); err != nil {
		e.set.Logger.Error("Could not record a read of the trail", zap.Error(err), zap.String("action", c.acc.action))
		return err
	}
	return nil
}

// accessTraces builds the access record of a request (nil for a job's own record) as a
// span. Everything it quotes from the request (method and path, query parameters and
// filters, the SQL text, the job id, the format, the user agent) goes through m, the
// same masking the audit processor applies to spans, before the span is handed to the
// trail: the record ends up in an immutable sealed file, where a card number searched
// for would stay for good. What the authenticator and the connection established (the
// caller, its role and tenant, its address) is set after masking, so the record keeps
// who read.
func accessTraces(r *http.Request, c *caller, status int, now time.Time, m *dlp.Masker) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(auditschema.AttrServiceName, "otelcol-audit")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("auditquery")
	span := ss.Spans().AppendEmpty()
	var tid pcommon.TraceID
	var sid pcommon.SpanID
	_, _ = rand.Read(tid[:])
	_, _ = rand.Read(sid[:])
	span.SetTraceID(tid)
	span.SetSpanID(sid)
	span.SetName("access " + c.acc.action)
	span.SetKind(ptrace.SpanKindServer)
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(c.start))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	result := "success"
	switch {
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		result = "denied"
		span.Status().SetCode(ptrace.StatusCodeError)
	case status >= 400:
		result = "failed"
		span.Status().SetCode(ptrace.StatusCodeError)
	}
	a := span.Attributes()
	a.PutStr(auditschema.AttrRecordType, auditschema.RecordAccess)
	a.PutStr(auditschema.AttrCategory, "access")
	a.PutStr(auditschema.AttrAction, c.acc.action)
	a.PutStr(auditschema.AttrResult, result)
	var found dlp.Findings
	if req, ok := requestMap(c.acc.request); ok {
		found, _ = m.MaskAttributes(req)
		if b, err := json.Marshal(req.AsRaw()); err == nil {
			a.PutStr(auditschema.AttrRequest, string(b))
		}
	}
	if sql, ok := c.acc.request["sql"].(string); ok {
		// The hash is of the masked text, the text the record keeps: a SHA-256 of the
		// statement itself would let anyone holding the trail recover a short secret it
		// quoted (an SSN has 10^9 values) by trying them all.
		masked, _ := m.MaskString(sql)
		sum := sha256.Sum256([]byte(masked))
		a.PutStr(attrAccessSQLHash, hex.EncodeToString(sum[:]))
	}
	if r != nil {
		if ua := r.UserAgent(); ua != "" {
			a.PutStr(auditschema.AttrUserAgent, ua)
		}
	}
	if c.acc.rows != nil {
		a.PutInt(attrAccessRows, *c.acc.rows)
	}
	if c.acc.format != "" {
		a.PutStr(attrAccessFormat, c.acc.format)
	}
	if c.acc.sha256 != "" {
		a.PutStr(attrAccessExportSHA, c.acc.sha256)
	}
	if c.acc.bytes != nil {
		a.PutInt(attrAccessBytes, *c.acc.bytes)
	}
	if c.acc.jobID != "" {
		a.PutStr(attrAccessJob, c.acc.jobID)
	}
	putProvenance(a, c.acc.provenance)
	inSpan, _ := m.MaskSpan(span)
	if found = found.Union(inSpan); !found.Empty() {
		a.PutStr(auditschema.AttrDLPResult, found.String())
		a.PutBool(auditschema.AttrCredentialMasked, found.CredentialMasked())
	}
	a.PutStr(attrAccessRole, c.role)
	a.PutInt(attrAccessStatus, int64(status))
	if len(c.acc.skipped) > 0 {
		a.PutInt(attrAccessSkipped, int64(len(c.acc.skipped)))
		if b, err := json.Marshal(c.acc.skipped); err == nil && c.role == RoleAdmin {
			a.PutStr(attrAccessSkippedFiles, string(b))
		}
	}
	switch {
	case c.principal != "":
		a.PutStr(auditschema.AttrUserID, c.principal)
	case c.unnamed:
		a.PutStr(auditschema.AttrActorType, "unnamed")
	default:
		a.PutStr(auditschema.AttrActorType, "local")
	}
	if c.tenant != "" {
		a.PutStr(auditschema.AttrTenantID, c.tenant)
	}
	if r != nil {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			a.PutStr(auditschema.AttrClientAddr, host)
		}
	}
	return td
}

// requestMap is what a request asked for as an attribute map, the form the masker
// walks (nested values, secret key names, blocked entries) as it walks a span's.
func requestMap(req map[string]any) (pcommon.Map, bool) {
	b, err := json.Marshal(req)
	if err != nil {
		return pcommon.Map{}, false
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return pcommon.Map{}, false
	}
	m := pcommon.NewMap()
	if err := m.FromRaw(raw); err != nil {
		return pcommon.Map{}, false
	}
	return m, true
}
