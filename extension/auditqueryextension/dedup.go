package auditqueryextension

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/ledger"
)

// Delivery into the trail is at least once: an SDK retrying after a timeout, or a proxy
// replaying a request, delivers a span again, and the trail keeps every delivered copy
// as evidence. What the trail answers is exactly once: of the copies of a span (same
// trace and span id) whose content is identical but for the ingest time, reads see the
// first delivered; copies with the same ids and different content all stay visible,
// flagged duplicate_conflict (a buggy client, or a forged record).
//
// Identical copies share their start time, so their hour partition: the copies are found
// per partition, when its file set changes (a file sealed, compacted or retired), by
// grouping the partition's ids; only the rows of repeated ids are read whole. The copies
// to leave out, and every copy of the ids in conflict, are named by file and row number
// in two small tables; reads join them (on the file name and row number DuckDB gives each
// row, never reading the ids) for the files they name only, and read every other file
// as it is.
const (
	hiddenTable   = "audit_redeliveries"
	conflictTable = "audit_duplicate_conflicts"
	// flagDuplicateConflict marks every copy of a span delivered with differing content.
	flagDuplicateConflict = "duplicate_conflict"
)

// createConflictTable creates the table of the copies in conflict, with their ids: such
// a span passes no context down (context.go).
const createConflictTable = "CREATE TABLE IF NOT EXISTS " + conflictTable + " (part VARCHAR, file VARCHAR, row_no BIGINT, trace_id VARCHAR, span_id VARCHAR)"

// contentColumns are the columns two deliveries of a span must agree on to be the same
// record: all but the ingest time (and search_text, empty in the files written now).
var contentColumns = func() []string {
	var cols []string
	for _, c := range auditschema.Columns {
		if c != "ingest_time" && c != "search_text" {
			cols = append(cols, c)
		}
	}
	return cols
}()

// dedupState is what the duplicate tables were computed from.
type dedupState struct {
	// parts maps each partition read to the files it had then.
	parts map[string]string
	// touched are the files (relative paths) holding a copy to leave out or in conflict.
	touched map[string]bool
}

// refreshDuplicates brings the duplicate tables in line with files: partitions whose
// file set changed are grouped again, partitions gone are dropped. A partition that
// cannot be read is reported and tried again on the next read; reads then show its
// copies as they are.
func (s *store) refreshDuplicates(ctx context.Context, files []string) error {
	s.dupMu.Lock()
	defer s.dupMu.Unlock()
	if s.dup.parts == nil {
		for _, stmt := range []string{
			"CREATE TABLE IF NOT EXISTS " + hiddenTable + " (part VARCHAR, file VARCHAR, row_no BIGINT)",
			createConflictTable,
		} {
			if _, err := s.db.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		s.dup.parts = map[string]string{}
	}
	byPart := map[string][]string{}
	for _, f := range files {
		p := ledger.PartitionOfPath(f)
		byPart[p] = append(byPart[p], f)
	}
	var errs []error
	changed := false
	for p := range s.dup.parts {
		if _, ok := byPart[p]; !ok {
			if err := s.groupPartitions(ctx, []string{p}, nil); err != nil {
				errs = append(errs, err)
				continue
			}
			delete(s.dup.parts, p)
			changed = true
		}
	}
	// Partitions whose files changed are grouped together, a bounded number of files
	// at a time (one query, whose memory is that of their ids).
	sigs := map[string]string{}
	var parts, batch []string
	flush := func() {
		if len(parts) == 0 {
			return
		}
		changed = true
		if err := s.groupPartitions(ctx, parts, batch); err != nil {
			errs = append(errs, fmt.Errorf("redeliveries in %s…: %w", parts[0], err))
		} else {
			for _, p := range parts {
				s.dup.parts[p] = sigs[p]
			}
		}
		parts, batch = nil, nil
	}
	for p, fs := range byPart {
		slices.Sort(fs)
		sig := strings.Join(fs, "\n")
		if s.dup.parts[p] == sig {
			continue
		}
		sigs[p] = sig
		parts = append(parts, p)
		batch = append(batch, fs...)
		if len(batch) >= maxGroupFiles {
			flush()
		}
	}
	flush()
	if changed {
		touched, err := s.touchedFiles(ctx)
		if err != nil {
			errs = append(errs, err)
		} else {
			s.dup.touched = touched
		}
	}
	return errors.Join(errs...)
}

// Work tables of groupFiles, emptied when it ends.
const (
	candidatesTable = "audit_copy_candidates"
	digestsTable    = "audit_copy_digests"
)

// groupFiles adds the copies among files to the duplicate tables, within tx. The ids of
// every row are grouped by partition (narrow columns only); the rows of repeated ids are
// then digested whole, reading only the files that hold one.
func (s *store) groupFiles(ctx context.Context, tx *sql.Tx, files []string) error {
	src := s.fileList(files)
	part := `'date=' || strftime(r.date, '%Y-%m-%d') || '/hour=' || lpad(CAST(r.hour AS VARCHAR), 2, '0')`
	if _, err := tx.ExecContext(ctx, `CREATE OR REPLACE TABLE `+candidatesTable+` AS
		WITH repeated AS (
			SELECT date, hour, trace_id, span_id FROM read_parquet(`+src+readParquetOptions+`
			GROUP BY ALL HAVING count(*) > 1)
		SELECT `+part+` AS part, r.trace_id, r.span_id, r.ingest_time, r.filename AS file, r.file_row_number AS row_no
		FROM read_parquet(`+src+`, filename = true, file_row_number = true`+readParquetOptions+` AS r
		SEMI JOIN repeated USING (date, hour, trace_id, span_id)`); err != nil {
		return err
	}
	defer func() {
		for _, t := range []string{candidatesTable, digestsTable} {
			_, _ = tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+t)
		}
	}()
	var holding []string
	rows, err := tx.QueryContext(ctx, "SELECT DISTINCT file FROM "+candidatesTable)
	if err != nil {
		return err
	}
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			rows.Close()
			return err
		}
		holding = append(holding, sqlString(f))
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(holding) == 0 {
		return err
	}
	for _, stmt := range []string{
		`CREATE OR REPLACE TABLE ` + digestsTable + ` AS
		SELECT c.*, sha256(CAST(to_json(struct_pack(` + strings.Join(structFields("r.", contentColumns), ", ") + `)) AS VARCHAR)) AS digest
		FROM read_parquet([` + strings.Join(holding, ", ") + `], filename = true, file_row_number = true` + readParquetOptions + ` AS r
		JOIN ` + candidatesTable + ` AS c ON c.file = r.filename AND c.row_no = r.file_row_number`,
		`INSERT INTO ` + hiddenTable + ` SELECT part, file, row_no FROM ` + digestsTable + `
		QUALIFY row_number() OVER (PARTITION BY part, trace_id, span_id, digest ORDER BY ingest_time, file, row_no) > 1`,
		`INSERT INTO ` + conflictTable + ` SELECT part, file, row_no, trace_id, span_id FROM ` + digestsTable + `
		QUALIFY count(DISTINCT digest) OVER (PARTITION BY part, trace_id, span_id) > 1`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// fileList is the DuckDB list of the files' paths.
func (s *store) fileList(files []string) string {
	list := make([]string, len(files))
	for i, f := range files {
		list[i] = sqlString(filepath.Join(s.abs, filepath.FromSlash(f)))
	}
	return "[" + strings.Join(list, ", ") + "]"
}

// touchedFiles lists the files named in the duplicate tables.
func (s *store) touchedFiles(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT file FROM "+hiddenTable+" UNION SELECT file FROM "+conflictTable)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	touched := map[string]bool{}
	for rows.Next() {
		var abs string
		if err := rows.Scan(&abs); err != nil {
			return nil, err
		}
		if rel, err := filepath.Rel(s.abs, abs); err == nil {
			touched[filepath.ToSlash(rel)] = true
		}
	}
	return touched, rows.Err()
}

// maxGroupFiles bounds the files one grouping query reads.
const maxGroupFiles = 512

// groupPartitions replaces what the duplicate tables hold for parts with the copies
// among files (the files of those partitions; none for partitions gone): ids delivered
// more than once in a partition, then, for those rows only, a digest of their content.
func (s *store) groupPartitions(ctx context.Context, parts, files []string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(parts)), ", ")
	args := make([]any, len(parts))
	for i, p := range parts {
		args[i] = p
	}
	for _, table := range []string{hiddenTable, conflictTable} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE part IN ("+marks+")", args...); err != nil {
			return err
		}
	}
	if len(files) > 0 {
		if err := s.groupFiles(ctx, tx, files); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// structFields are the struct_pack arguments of cols, read from prefix: a row's content
// as one JSON document, whose SHA-256 tells identical copies from different ones (a
// 64-bit hash could be made to collide by a sender who controls the content).
func structFields(prefix string, cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c + " := " + prefix + c
	}
	return out
}

// dedupedSource is the trail's files that may hold rows of w, each span once: the files
// holding a copy to leave out or a copy in conflict are read apart, with DuckDB's file
// name and row number joined to the duplicate tables; every other file is read as it
// is, so that the joins cost only what those few files hold.
func (s *store) dedupedSource(files []string, w window) string {
	s.dupMu.Lock()
	touched := s.dup.touched
	s.dupMu.Unlock()
	var plain, copies []string
	for _, f := range files {
		switch {
		case !w.covers(ledger.PartitionOfPath(f)):
		case touched[f]:
			copies = append(copies, f)
		default:
			plain = append(plain, f)
		}
	}
	if len(copies) == 0 {
		return s.sourceOf(files, w)
	}
	cols := make([]string, 0, len(auditschema.Columns)+2)
	for _, c := range auditschema.Columns {
		if c == "flags" {
			c = "CASE WHEN conflict.file IS NULL THEN t.flags ELSE list_append(t.flags, '" + flagDuplicateConflict + "') END AS flags"
		} else {
			c = "t." + c
		}
		cols = append(cols, c)
	}
	cols = append(cols, "t.date", "t.hour")
	deduped := `SELECT ` + strings.Join(cols, ", ") + `
		FROM ` + strings.Replace(s.sourceOf(copies, w), readParquetOptions, ", filename = true, file_row_number = true"+readParquetOptions, 1) + ` AS t
		ANTI JOIN ` + hiddenTable + ` AS copy ON copy.file = t.filename AND copy.row_no = t.file_row_number
		LEFT JOIN ` + conflictTable + ` AS conflict ON conflict.file = t.filename AND conflict.row_no = t.file_row_number`
	if len(plain) == 0 {
		return "(" + deduped + ")"
	}
	return "(SELECT " + strings.Join(append(slices.Clone(auditschema.Columns), "date", "hour"), ", ") + " FROM " + s.sourceOf(plain, w) + `
		UNION ALL ` + deduped + ")"
}
