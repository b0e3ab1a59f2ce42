package auditqueryextension

import (
	"context"
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
// in two small tables, which reads join (on the file name and row number DuckDB gives
// each row, never reading the ids) only while they hold rows.
const (
	hiddenTable   = "audit_redeliveries"
	conflictTable = "audit_duplicate_conflicts"
	// flagDuplicateConflict marks every copy of a span delivered with differing content.
	flagDuplicateConflict = "duplicate_conflict"
)

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
	parts             map[string]string
	hidden, conflicts int64
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
			"CREATE TABLE IF NOT EXISTS " + conflictTable + " (part VARCHAR, file VARCHAR, row_no BIGINT)",
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
		for table, n := range map[string]*int64{hiddenTable: &s.dup.hidden, conflictTable: &s.dup.conflicts} {
			if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(n); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
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
		list := make([]string, len(files))
		for i, f := range files {
			list[i] = sqlString(filepath.Join(s.abs, filepath.FromSlash(f)))
		}
		src := "[" + strings.Join(list, ", ") + "]"
		part := `'date=' || strftime(date, '%Y-%m-%d') || '/hour=' || lpad(CAST(hour AS VARCHAR), 2, '0')`
		copies := `WITH repeated AS (
			SELECT date, hour, trace_id, span_id FROM read_parquet(` + src + readParquetOptions + `
			GROUP BY ALL HAVING count(*) > 1),
		copies AS (
			SELECT ` + part + ` AS part, r.trace_id, r.span_id, r.ingest_time, r.filename AS file, r.file_row_number AS row_no,
				hash(` + strings.Join(prefixed("r.", contentColumns), ", ") + `) AS digest
			FROM read_parquet(` + src + `, filename = true, file_row_number = true` + readParquetOptions + ` AS r
			SEMI JOIN repeated USING (date, hour, trace_id, span_id))`
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+hiddenTable+" "+copies+`
			SELECT part, file, row_no FROM copies
			QUALIFY row_number() OVER (PARTITION BY part, trace_id, span_id, digest ORDER BY ingest_time, file, row_no) > 1`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+conflictTable+" "+copies+`
			SELECT part, file, row_no FROM copies
			QUALIFY count(DISTINCT digest) OVER (PARTITION BY part, trace_id, span_id) > 1`); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func prefixed(prefix string, cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = prefix + c
	}
	return out
}

// duplicates reports whether the trail holds copies to hide and ids in conflict.
func (s *store) duplicates() (hidden, conflicts bool) {
	s.dupMu.Lock()
	defer s.dupMu.Unlock()
	return s.dup.hidden > 0, s.dup.conflicts > 0
}
