package auditqueryextension

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// sqlViews are the relations a statement of POST /api/v1/query may name.
var sqlViews = []string{"spans", "events", "approvals", "access"}

// sqlFunctions is the allow-list of the functions a statement may call: the scalar,
// aggregate and window functions (and operators) a read-only query over the trail needs.
// A function is checked by the name the statement writes, before DuckDB binds anything,
// so a macro is allowed or refused as a whole. Everything else is refused, in particular:
//   - every table function (read_text, read_blob, read_csv, glob, enable_logging,
//     duckdb_databases, parquet_metadata, query, query_table, range, unnest in FROM, ...):
//     they touch files, global state or the catalog, and the trail is reachable through
//     the views alone;
//   - functions that read or change the engine's state (current_setting, getvariable,
//     write_log, nextval, currval, setseed, json_serialize_plan, the pg_* compatibility
//     macros) and DuckDB's internal ones (__internal_*);
//   - functions whose one call allocates what an argument asks for, outside DuckDB's
//     memory limit (range, generate_series, repeat, lpad, rpad, list_resize,
//     array_resize, format, printf, bar, bitstring, to_base, equi_width_bins,
//     bitstring_agg, approx_top_k, reservoir_quantile) or a matrix of its inputs'
//     sizes (damerau_levenshtein).
//
// TestSQLFunctionAllowList checks each name against the engine's duckdb_functions() and
// that every other function of the engine is refused.
var sqlFunctions = func() map[string]bool {
	groups := []string{
		// Operators: arithmetic, comparison helpers, string and list operators, LIKE.
		`!__postfix !~~ !~~* % & && * ** + - ->> / // <-> << <=> <@ >> @ @> ^ ^@ | || ~ ~~ ~~* ~~~ add subtract multiply divide mod xor`,
		// Numbers.
		`abs acos acosh asin asinh atan atan2 atanh cbrt ceil ceiling cos cosh cot degrees even exp factorial floor gamma gcd
		greatest greatest_common_divisor isfinite isinf isnan lcm least least_common_multiple lgamma ln log log10 log2 nextafter
		pi pow power radians random round round_even roundbankers sign signbit sin sinh sqrt tan tanh trunc fdiv fmod
		bit_count get_bit set_bit bit_length bit_position format_bytes formatReadableDecimalSize formatReadableSize pg_size_pretty`,
		// Strings.
		`ascii base64 chr concat concat_ws contains decode encode ends_with from_base64 from_binary from_hex hamming hash hex
		ilike_escape instr jaccard jaro_similarity jaro_winkler_similarity lcase left left_grapheme len length length_grapheme
		levenshtein editdist3 like_escape lower ltrim md5 md5_number md5_number_lower md5_number_upper mismatches nfc_normalize
		not_ilike_escape not_like_escape octet_length ord parse_dirname parse_dirpath parse_filename parse_path position prefix
		replace reverse right right_grapheme rtrim sha1 sha256 split split_part starts_with str_split str_split_regex strip_accents
		strlen strpos string_split string_split_regex string_to_array substr substring substring_grapheme suffix to_base64
		to_binary to_hex translate trim ucase unbin unhex unicode upper url_decode url_encode char_length character_length
		array_to_string array_to_string_comma_default nullif`,
		// Regular expressions.
		`regexp_escape regexp_extract regexp_extract_all regexp_full_match regexp_matches regexp_replace regexp_split_to_array`,
		// Dates and times.
		`age century current_date current_localtime current_localtimestamp date_add date_diff date_part date_sub date_trunc
		datediff datepart datesub datetrunc day dayname dayofmonth dayofweek dayofyear decade epoch epoch_ms epoch_ns epoch_us era
		get_current_time get_current_timestamp hour isodow isoyear julian last_day make_date make_time make_timestamp
		make_timestamp_ms make_timestamp_ns make_timestamptz microsecond millennium millisecond minute month monthname nanosecond
		normalized_interval now quarter second strftime strptime time_bucket timezone timezone_hour timezone_minute to_centuries
		to_days to_decades to_hours to_microseconds to_millennia to_milliseconds to_minutes to_months to_quarters to_seconds
		to_timestamp to_weeks to_years today transaction_timestamp try_strptime week weekday weekofyear year yearweek`,
		// JSON.
		`array_to_json from_json from_json_strict json json_array json_array_length json_contains json_exists json_extract
		json_extract_path json_extract_path_text json_extract_string json_keys json_merge_patch json_object json_pretty
		json_quote json_structure json_transform json_transform_strict json_type json_valid json_value row_to_json to_json
		json_group_array json_group_object json_group_structure`,
		// Lists, arrays, maps, structs, unions (unnest as a scalar expands a value it is given).
		`aggregate apply array_aggr array_aggregate array_append array_apply array_cat array_concat array_contains
		array_cosine_distance array_cosine_similarity array_cross_product array_distance array_distinct array_dot_product
		array_extract array_filter array_grade_up array_has array_has_all array_has_any array_indexof array_inner_product
		array_intersect array_length array_negative_dot_product array_negative_inner_product array_pop_back array_pop_front
		array_position array_prepend array_push_back array_push_front array_reduce array_reverse array_reverse_sort array_select
		array_slice array_sort array_transform array_unique array_value array_where array_zip cardinality element_at filter
		flatten generate_subscripts grade_up list_aggr list_aggregate list_any_value list_append list_apply
		list_approx_count_distinct list_avg list_bit_and list_bit_or list_bit_xor list_bool_and list_bool_or list_cat list_concat
		list_contains list_cosine_distance list_cosine_similarity list_count list_distance list_distinct list_dot_product
		list_element list_entropy list_extract list_filter list_first list_grade_up list_has list_has_all list_has_any
		list_histogram list_indexof list_inner_product list_intersect list_kurtosis list_kurtosis_pop list_last list_mad list_max
		list_median list_min list_mode list_negative_dot_product list_negative_inner_product list_pack list_position list_prepend
		list_product list_reduce list_reverse list_reverse_sort list_select list_sem list_skewness list_slice list_sort
		list_stddev_pop list_stddev_samp list_string_agg list_sum list_transform list_unique list_value list_var_pop
		list_var_samp list_where list_zip map map_concat map_contains map_contains_entry map_contains_value map_entries
		map_extract map_extract_value map_from_entries map_keys map_values reduce row struct_concat struct_contains
		struct_extract struct_extract_at struct_has struct_indexof struct_insert struct_pack struct_position struct_update
		union_extract union_tag union_value unnest`,
		// Types, UUIDs, errors.
		`error gen_random_uuid typeof uuid uuid_extract_timestamp uuid_extract_version uuidv4 uuidv7 enum_code enum_first
		enum_last enum_range enum_range_boundary can_cast_implicitly`,
		// Aggregates.
		`any_value approx_count_distinct approx_quantile arbitrary arg_max arg_max_null arg_min arg_min_null argmax argmin
		array_agg avg bit_and bit_or bit_xor bool_and bool_or corr count count_if count_star countif covar_pop covar_samp
		entropy favg first fsum geomean geometric_mean group_concat histogram histogram_exact kahan_sum kurtosis kurtosis_pop
		last list listagg mad max max_by mean median min min_by mode product quantile quantile_cont quantile_disc regr_avgx
		regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy sem skewness stddev stddev_pop
		stddev_samp string_agg sum sum_no_overflow sumkahan var_pop var_samp variance wavg weighted_avg`,
		// Window functions (aggregates serve as window functions too).
		`row_number rank dense_rank rank_dense percent_rank cume_dist ntile lag lead first_value last_value nth_value`,
	}
	m := map[string]bool{}
	for _, g := range groups {
		for _, name := range strings.Fields(g) {
			m[strings.ToLower(name)] = true
		}
	}
	return m
}()

// sqlTree is a statement as json_serialize_sql gives it.
type sqlTree struct {
	Error      bool   `json:"error"`
	ErrorMsg   string `json:"error_message"`
	Statements []any  `json:"statements"`
}

// checkedSQL is what checkStatement learned of an allowed statement.
type checkedSQL struct {
	// views are the views of sqlViews it names.
	views map[string]bool
}

// checkStatement allows one SELECT whose every function is in sqlFunctions and whose
// every relation is a view of sqlViews or a name its WITH clauses define, unqualified.
// reserved are the names of the engine's own relations (its catalog views and tables),
// which a WITH clause may not take: inside its own definition the name would reach them.
func checkStatement(serialized string, reserved map[string]bool) (*checkedSQL, error) {
	var tree sqlTree
	if err := json.Unmarshal([]byte(serialized), &tree); err != nil {
		return nil, fmt.Errorf("statement refused: %w", err)
	}
	if tree.Error {
		if strings.Contains(tree.ErrorMsg, "Only SELECT") {
			return nil, errBadSQL{errOnlySelect}
		}
		return nil, errBadSQL{"statement refused: " + tree.ErrorMsg}
	}
	if len(tree.Statements) != 1 {
		return nil, errBadSQL{errOnlySelect}
	}
	c := &sqlChecker{ctes: map[string]bool{}, views: map[string]bool{}, reserved: reserved}
	c.collectCTEs(tree.Statements[0])
	for name := range c.ctes {
		if reserved[name] || engineRelationName(name) {
			return nil, errBadSQL{fmt.Sprintf("statement refused: WITH %s: the name of an engine relation; choose another name", name)}
		}
	}
	c.walk(tree.Statements[0])
	if len(c.refused) > 0 {
		sort.Strings(c.refused)
		return nil, errBadSQL{"statement refused: " + strings.Join(c.refused, "; ")}
	}
	return &checkedSQL{views: c.views}, nil
}

type sqlChecker struct {
	ctes, views, reserved map[string]bool
	refused               []string
	seen                  map[string]bool
}

func (c *sqlChecker) refuse(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	if !c.seen[msg] {
		c.seen[msg] = true
		c.refused = append(c.refused, msg)
	}
}

// collectCTEs gathers the names every WITH clause of the statement defines.
func (c *sqlChecker) collectCTEs(v any) {
	switch x := v.(type) {
	case map[string]any:
		if cm, ok := x["cte_map"].(map[string]any); ok {
			entries, _ := cm["map"].([]any)
			for _, e := range entries {
				if em, ok := e.(map[string]any); ok {
					if k, ok := em["key"].(string); ok {
						c.ctes[strings.ToLower(k)] = true
					}
				}
			}
		}
		for _, child := range x {
			c.collectCTEs(child)
		}
	case []any:
		for _, child := range x {
			c.collectCTEs(child)
		}
	}
}

// walk checks every node of the tree: function calls (class FUNCTION or WINDOW), table
// functions and relations, wherever they are (subqueries, WITH clauses, lambdas, joins).
func (c *sqlChecker) walk(v any) {
	switch x := v.(type) {
	case map[string]any:
		str := func(k string) string { s, _ := x[k].(string); return s }
		switch {
		case str("type") == "TABLE_FUNCTION":
			name := "?"
			if f, ok := x["function"].(map[string]any); ok {
				if n, ok := f["function_name"].(string); ok {
					name = n
				}
			}
			c.refuse("table function %s is not allowed: read the trail through the views %s", name, strings.Join(sqlViews, ", "))
			return
		case str("type") == "SHOW_REF":
			c.refuse("SHOW is not allowed: the views are %s", strings.Join(sqlViews, ", "))
			return
		case str("type") == "BASE_TABLE":
			name := strings.ToLower(str("table_name"))
			if q := qualifier(str("catalog_name"), str("schema_name")); q != "" {
				c.refuse("relation %s.%s is not allowed: name the views %s unqualified", q, name, strings.Join(sqlViews, ", "))
				return
			}
			switch {
			case isView(name):
				// Bound even when a WITH takes the name: inside its own definition the
				// name is the view.
				c.views[name] = true
			case c.ctes[name]:
			default:
				c.refuse("relation %s is not allowed: the views are %s", name, strings.Join(sqlViews, ", "))
			}
		case str("class") == "FUNCTION" || str("class") == "WINDOW":
			name := str("function_name")
			schema := str("schema")
			if schema == "main" && str("catalog") == "" {
				schema = "" // the parser's own calls (list literals) name the main schema
			}
			if q := qualifier(str("catalog"), schema); q != "" {
				c.refuse("function %s.%s is not allowed: call functions unqualified", q, name)
			} else if !sqlFunctions[strings.ToLower(name)] {
				c.refuse("function %s is not allowed (see the SQL section of the auditquery README)", name)
			}
		}
		for _, child := range x {
			c.walk(child)
		}
	case []any:
		for _, child := range x {
			c.walk(child)
		}
	}
}

// engineRelationName reports whether a name is of the kind the engine and the store
// give their own relations — the store's tables (audit_…), whether or not this database
// has made them yet, and the engine's catalog views — which a WITH clause may not take.
func engineRelationName(name string) bool {
	for _, prefix := range []string{"audit_", "duckdb_", "pg_", "sqlite_", "information_schema"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

func qualifier(catalog, schema string) string {
	switch {
	case catalog != "" && schema != "":
		return catalog + "." + schema
	case catalog != "":
		return catalog
	default:
		return schema
	}
}

func isView(name string) bool {
	for _, v := range sqlViews {
		if v == name {
			return true
		}
	}
	return false
}
