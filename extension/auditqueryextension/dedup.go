package auditqueryextension

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// Delivery into the trail is at least once: an SDK retrying after a timeout, or a proxy
// replaying a request, delivers a span again, and the trail keeps every delivered copy
// as evidence. What the trail answers is exactly once: of the copies of a span (same
// trace and span id) whose content is identical but for the ingest time, reads see the
// first delivered; copies with the same ids and different content all stay visible,
// flagged duplicate_conflict (a buggy client, or a forged record).
//
// Copies are found across the whole trail, not within an hour partition: a copy with
// another start time lies in another partition, and so does a retry filed by its ingest
// hour (start_time_far_from_ingest). Each partition's ids are hashed into a compact table
// (partition, 64-bit id hash, copies) when its file set changes (a file sealed,
// compacted or retired); the hashes delivered more than once in the trail are the
// candidates, and only their rows are read whole, from the partitions holding them,
// grouped by their real ids (a hash collision costs a read, never a wrong answer). The
// copies to leave out and every copy of the ids in conflict are named by file,
// partition and row number in one small table; reads join it (on the row number DuckDB
// gives each row, never reading the ids) for the files it names only, and read every
// other file as it is.
const (
	// duplicatesTable names the copies to leave out (hidden) and those in conflict, by
	// file, partition (part, in hours since 1970) and row number, with the hash of their
	// ids (grp) and the partition of the copy answered in their place (kept_part).
	duplicatesTable = "audit_redeliveries"
	// spanIDsTable holds, per partition (hours since 1970), the hash of each of its span
	// ids and how many rows carry it.
	spanIDsTable = "audit_span_ids"
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

// partHours is the partition of a row read with the hive columns, in hours since 1970.
var partHours = partHoursOf("r")

// partHoursOf is partHours for the rows of alias.
func partHoursOf(alias string) string {
	return "CAST((" + alias + ".date - DATE '1970-01-01') * 24 + " + alias + ".hour AS INTEGER)"
}

// partitionHour is a partition ("date=2026-11-22/hour=04") in hours since 1970.
func partitionHour(partition string) (int64, bool) {
	t, ok := auditschema.PartitionHour(partition)
	if !ok {
		return 0, false
	}
	return t.Unix() / 3600, true
}

// dedupState is what the duplicate tables were computed from.
type dedupState struct {
	// given is set in a SQL worker, whose tables are the collector's (loadDuplicates):
	// it groups nothing itself.
	given bool
	// gen counts the changes of the tables; marks are their rows at marksGen.
	gen, marksGen int64
	marks         []duplicateMark
	// files is the trail's file list the tables were last brought in line with, when
	// that succeeded: a read with the same list has nothing to do.
	files []string
	// parts maps each partition read (hours since 1970) to the files it had then.
	parts map[int64]string
	// touched are the files (relative paths) holding a copy to leave out or in conflict;
	// stale when the tables changed since it was read.
	touched map[string]bool
	stale   bool
}

// refreshDuplicates brings the duplicate tables in line with files: the ids of
// partitions whose file set changed are hashed again, those of partitions gone dropped,
// and the copies of every id those partitions hold (or held) found again across the
// trail. A file that cannot be read fails the refresh, which is reported and tried again
// on the next read; reads meanwhile use the tables as they were.
func (s *store) refreshDuplicates(ctx context.Context, files []string) error {
	s.dupMu.Lock()
	defer s.dupMu.Unlock()
	if s.dup.given || s.dup.parts != nil && slices.Equal(s.dup.files, files) {
		return nil
	}
	if s.dup.parts == nil {
		for _, stmt := range []string{duplicatesDDL, "CREATE TABLE IF NOT EXISTS " + spanIDsTable + " (part INTEGER, grp UBIGINT, n BIGINT)"} {
			if _, err := s.db.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		s.dup.parts = map[int64]string{}
		s.dup.gen++
	}
	byPart := map[int64][]string{}
	for _, f := range files {
		if h, ok := partitionHour(auditschema.PartitionOfPath(f)); ok {
			byPart[h] = append(byPart[h], f)
		}
	}
	sigs := map[int64]string{}
	var changed []int64
	for p := range s.dup.parts {
		if _, ok := byPart[p]; !ok {
			changed = append(changed, p)
		}
	}
	for p, fs := range byPart {
		slices.Sort(fs)
		sig := strings.Join(fs, "\n")
		if s.dup.parts[p] != sig {
			sigs[p] = sig
			changed = append(changed, p)
		}
	}
	if len(changed) > 0 {
		slices.Sort(changed)
		if err := s.groupPartitions(ctx, changed, byPart); err != nil {
			return fmt.Errorf("redeliveries: %w", err)
		}
		for _, p := range changed {
			if sig, ok := sigs[p]; ok {
				s.dup.parts[p] = sig
			} else {
				delete(s.dup.parts, p)
			}
		}
		s.dup.stale = true
		s.dup.gen++
	}
	if s.dup.stale {
		touched, err := s.touchedFiles(ctx)
		if err != nil {
			return err
		}
		s.dup.touched, s.dup.stale = touched, false
	}
	s.dup.files = slices.Clone(files)
	return nil
}

// duplicatesDDL creates the duplicates table.
const duplicatesDDL = "CREATE TABLE IF NOT EXISTS " + duplicatesTable + " (grp UBIGINT, file VARCHAR, part INTEGER, row_no BIGINT, hidden BOOLEAN, conflict BOOLEAN, kept_part INTEGER)"

// duplicateMark is a row of the duplicates table as the collector hands it to a SQL
// worker, its file relative to the data directory.
type duplicateMark struct {
	File     string `json:"f"`
	Part     int32  `json:"p"`
	Row      int64  `json:"r"`
	Hidden   bool   `json:"h,omitempty"`
	Conflict bool   `json:"c,omitempty"`
	Kept     int32  `json:"k"`
}

// sqlDuplicates are the collector's duplicate tables for a SQL worker, which then reads
// the trail as the collector does without grouping every id again (a new worker would
// otherwise read the whole trail on its first statement, and each worker the newest
// hour again after each seal). Marks are left out when the worker has Gen already.
type sqlDuplicates struct {
	Gen   int64           `json:"gen"`
	Marks []duplicateMark `json:"marks,omitempty"`
}

// duplicates brings the duplicate tables in line with files and returns their rows,
// kept until the tables change. An error reports partitions that could not be grouped;
// the rows are then those of the tables as they are, which the collector's reads use too.
func (s *store) duplicates(ctx context.Context, files []string) (*sqlDuplicates, error) {
	err := s.refreshDuplicates(ctx, files)
	s.dupMu.Lock()
	defer s.dupMu.Unlock()
	if s.dup.parts == nil {
		return nil, err
	}
	if s.dup.marksGen != s.dup.gen {
		rows, qerr := s.db.QueryContext(ctx, "SELECT file, part, row_no, hidden, conflict, kept_part FROM "+duplicatesTable+" ORDER BY file, row_no")
		if qerr != nil {
			return nil, qerr
		}
		defer rows.Close()
		var marks []duplicateMark
		for rows.Next() {
			var m duplicateMark
			if qerr := rows.Scan(&m.File, &m.Part, &m.Row, &m.Hidden, &m.Conflict, &m.Kept); qerr != nil {
				return nil, qerr
			}
			rel, rerr := filepath.Rel(s.abs, m.File)
			if rerr != nil {
				return nil, rerr
			}
			m.File = filepath.ToSlash(rel)
			marks = append(marks, m)
		}
		if qerr := rows.Err(); qerr != nil {
			return nil, qerr
		}
		s.dup.marks, s.dup.marksGen = marks, s.dup.gen
	}
	return &sqlDuplicates{Gen: s.dup.gen, Marks: s.dup.marks}, err
}

// loadDuplicates replaces the duplicates table by marks, the collector's: from then on
// the store groups nothing itself.
func (s *store) loadDuplicates(ctx context.Context, marks []duplicateMark) error {
	s.dupMu.Lock()
	defer s.dupMu.Unlock()
	if _, err := s.db.ExecContext(ctx, duplicatesDDL); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "DELETE FROM "+duplicatesTable); err != nil {
		return err
	}
	touched := map[string]bool{}
	for batch := range slices.Chunk(marks, 1000) {
		args := make([]any, 0, 6*len(batch))
		for _, m := range batch {
			touched[m.File] = true
			args = append(args, filepath.Join(s.abs, filepath.FromSlash(m.File)), m.Part, m.Row, m.Hidden, m.Conflict, m.Kept)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+duplicatesTable+" (file, part, row_no, hidden, conflict, kept_part) VALUES "+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?), ", len(batch)), ", "), args...); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.dup.given, s.dup.touched = true, touched
	return nil
}

// Work tables of groupPartitions, emptied when it ends.
const (
	affectedTable = "audit_copy_affected"
	repeatedTable = "audit_copy_candidates"
)

// digestsTable holds the content digest of each row whose id hash is carried by more
// than one row of the trail, with its partition (hours since 1970): a row is digested
// once, when its id first repeats or its partition's files change, so that a span id
// sent again and again, in hour after hour, costs each seal the reading of its own
// partition only.
const digestsTable = "audit_copy_digests"

// maxGroupFiles bounds the files one query hashing ids reads.
const maxGroupFiles = 512

// groupPartitions replaces, in one transaction, the ids of parts by those of their
// files now (byPart; none for partitions gone), and the duplicate rows of every id hash
// those partitions held before or hold now by the copies of those hashes across the
// trail: the rows of hashes carried by more than one row are digested (those not
// digested yet, from the partitions holding them) and grouped by id and digest.
func (s *store) groupPartitions(ctx context.Context, parts []int64, byPart map[int64][]string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	in := make([]string, len(parts))
	for i, p := range parts {
		in[i] = strconv.FormatInt(p, 10)
	}
	inParts := " part IN (" + strings.Join(in, ", ") + ")"
	exec := func(stmts ...string) error {
		for _, stmt := range stmts {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	}
	if err := exec(
		"CREATE TABLE IF NOT EXISTS "+digestsTable+" (grp UBIGINT, part INTEGER, trace_id VARCHAR, span_id VARCHAR, ingest_time TIMESTAMPTZ, file VARCHAR, row_no BIGINT, digest VARCHAR)",
		"CREATE OR REPLACE TABLE "+affectedTable+" AS SELECT DISTINCT grp FROM "+spanIDsTable+" WHERE"+inParts,
		"DELETE FROM "+spanIDsTable+" WHERE"+inParts,
		"DELETE FROM "+digestsTable+" WHERE"+inParts,
	); err != nil {
		return err
	}
	// The ids are hashed a bounded number of files at a time (one query, whose memory
	// is that of their distinct ids).
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := exec("INSERT INTO " + spanIDsTable + " SELECT " + partHours + ", hash(r.trace_id, r.span_id), count(*) FROM " +
			s.readFiles(s.absPaths(batch), "") + " AS r GROUP BY ALL")
		batch = batch[:0]
		return err
	}
	for _, p := range parts {
		batch = append(batch, byPart[p]...)
		if len(batch) >= maxGroupFiles {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := exec(
		"INSERT INTO "+affectedTable+" SELECT DISTINCT grp FROM "+spanIDsTable+" WHERE"+inParts,
		"DELETE FROM "+duplicatesTable+" WHERE grp IN (SELECT grp FROM "+affectedTable+")",
		"CREATE OR REPLACE TABLE "+repeatedTable+" AS SELECT grp FROM "+spanIDsTable+" SEMI JOIN "+affectedTable+" USING (grp) GROUP BY grp HAVING sum(n) > 1",
		// Digests of ids no longer repeated (a copy compacted away or retired) go.
		"DELETE FROM "+digestsTable+" WHERE grp IN (SELECT grp FROM "+affectedTable+") AND grp NOT IN (SELECT grp FROM "+repeatedTable+")",
	); err != nil {
		return err
	}
	// The partitions holding a repeated id whose rows there are not digested yet.
	var holding []string
	rows, err := tx.QueryContext(ctx, "SELECT DISTINCT part FROM (SELECT part, grp FROM "+spanIDsTable+" SEMI JOIN "+repeatedTable+" USING (grp)"+
		" ANTI JOIN (SELECT DISTINCT part, grp FROM "+digestsTable+") USING (part, grp)) ORDER BY part")
	if err != nil {
		return err
	}
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return err
		}
		holding = append(holding, byPart[p]...)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(holding) > 0 {
		// The flag start_time_far_from_ingest follows from the ingest time, which copies
		// do not share: a retry filed by its arrival hour is the same record as a first
		// delivery that was not.
		fields := structFields("r.", contentColumns)
		for i, c := range contentColumns {
			if c == "flags" {
				fields[i] = "flags := list_filter(r.flags, lambda f: f <> '" + auditschema.FlagFarFromIngest + "')"
			}
		}
		if err := exec(`INSERT INTO ` + digestsTable + ` SELECT * FROM (
			SELECT hash(r.trace_id, r.span_id) AS grp, ` + partHours + ` AS part, r.trace_id, r.span_id, r.ingest_time, r.filename AS file, r.file_row_number AS row_no,
				sha256(CAST(to_json(struct_pack(` + strings.Join(fields, ", ") + `)) AS VARCHAR)) AS digest
			FROM ` + s.readFiles(s.absPaths(holding), ", filename = true, file_row_number = true") + ` AS r
			WHERE hash(r.trace_id, r.span_id) IN (SELECT grp FROM ` + repeatedTable + `)) AS fresh
			ANTI JOIN (SELECT DISTINCT part, grp FROM ` + digestsTable + `) USING (part, grp)`); err != nil {
			return err
		}
	}
	if err := exec(
		`INSERT INTO `+duplicatesTable+` SELECT grp, file, part, row_no, hidden, conflict, kept_part FROM (
			SELECT grp, file, part, row_no, row_number() OVER copy > 1 AS hidden, first_value(part) OVER copy AS kept_part,
				count(DISTINCT digest) OVER (PARTITION BY trace_id, span_id) > 1 AS conflict
			FROM `+digestsTable+` WHERE grp IN (SELECT grp FROM `+repeatedTable+`)
			WINDOW copy AS (PARTITION BY trace_id, span_id, digest ORDER BY ingest_time, file, row_no))
		WHERE hidden OR conflict`,
		"DROP TABLE "+affectedTable,
		"DROP TABLE "+repeatedTable,
	); err != nil {
		return err
	}
	return tx.Commit()
}

// fileList is the DuckDB list of the files' paths.
func (s *store) fileList(files []string) string {
	list := make([]string, len(files))
	for i, f := range files {
		list[i] = sqlString(filepath.Join(s.abs, filepath.FromSlash(f)))
	}
	return "[" + strings.Join(list, ", ") + "]"
}

// touchedFiles lists the files named in the duplicates table.
func (s *store) touchedFiles(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT DISTINCT file FROM "+duplicatesTable)
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
// holding a copy to leave out or a copy in conflict are read apart, each row joined by
// its place in its file to the duplicates table; every other file is read as it is, so
// that the join costs only what those few files hold. A copy is left out only when the
// copy answered in its place is in a partition w reads: a window never loses a span
// because its first delivery lies outside it.
func (s *store) dedupedSource(files []string, w window) string {
	s.dupMu.Lock()
	touched := s.dup.touched
	s.dupMu.Unlock()
	var plain, copies []string
	perPart := map[string]int{}
	for _, f := range files {
		switch {
		case !w.covers(auditschema.PartitionOfPath(f)):
		case touched[f]:
			copies = append(copies, f)
			perPart[auditschema.PartitionOfPath(f)]++
		default:
			plain = append(plain, f)
		}
	}
	if len(copies) == 0 {
		return s.sourceOf(files, w)
	}
	// A row of the only file of its partition holding copies is named by its partition
	// and row number, integers the join hashes cheaply, with the marks of that file
	// alone; the files of a partition holding several need their names (long strings)
	// in the join.
	var alone, shared []string
	for _, f := range copies {
		if perPart[auditschema.PartitionOfPath(f)] == 1 {
			alone = append(alone, f)
		} else {
			shared = append(shared, f)
		}
	}
	cols := make([]string, 0, len(auditschema.Columns)+2)
	for _, c := range auditschema.Columns {
		if c == "flags" {
			c = "CASE WHEN dup.conflict THEN list_append(t.flags, '" + flagDuplicateConflict + "') ELSE t.flags END AS flags"
		} else {
			c = "t." + c
		}
		cols = append(cols, c)
	}
	cols = append(cols, "t.date", "t.hour")
	hidden := "hidden"
	if kept := w.keptPartitions(); kept != "" {
		hidden += " AND " + kept
	}
	branch := func(files []string, virtual, on string) string {
		return `SELECT ` + strings.Join(cols, ", ") + `
		FROM ` + s.readFiles(s.absPaths(files), virtual) + ` AS t
		LEFT JOIN (SELECT file, part, row_no, ` + hidden + ` AS hidden, conflict FROM ` + duplicatesTable + ` WHERE file IN (` +
			strings.Trim(s.fileList(files), "[]") + `)) AS dup ON ` + on + `
		WHERE dup.hidden IS NOT TRUE`
	}
	var branches []string
	if len(plain) > 0 {
		branches = append(branches, "SELECT "+strings.Join(append(slices.Clone(auditschema.Columns), "date", "hour"), ", ")+" FROM "+s.sourceOf(plain, w))
	}
	if len(alone) > 0 {
		branches = append(branches, branch(alone, ", file_row_number = true", "dup.part = "+partHoursOf("t")+" AND dup.row_no = t.file_row_number"))
	}
	if len(shared) > 0 {
		branches = append(branches, branch(shared, ", filename = true, file_row_number = true", "dup.file = t.filename AND dup.row_no = t.file_row_number"))
	}
	return "(" + strings.Join(branches, "\n\t\tUNION ALL ") + ")"
}

// keptPartitions is the condition, on the duplicates table's kept_part, that the
// partition is one w reads (see covers); empty when w reads every partition.
func (w window) keptPartitions() string {
	var conds []string
	if w.from != nil {
		// The partitions ending after from: from's own hour and later.
		conds = append(conds, "kept_part >= "+strconv.FormatInt(w.from.Truncate(time.Hour).Unix()/3600, 10))
	}
	if w.to != nil {
		// The partitions starting before to.
		last := w.to.Truncate(time.Hour)
		if last.Equal(*w.to) {
			last = last.Add(-time.Hour)
		}
		conds = append(conds, "kept_part <= "+strconv.FormatInt(last.Unix()/3600, 10))
	}
	if len(conds) == 0 {
		return ""
	}
	return "(" + strings.Join(conds, " AND ") + ")"
}
