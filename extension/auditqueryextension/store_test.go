package auditqueryextension

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A query that does not fit the engine's memory spills under the data directory's
// scratch area, which need not exist beforehand: sorting 3 M rows does not fit 64 MB.
func TestStoreSpillsWithoutScratchDirectory(t *testing.T) {
	st, err := openStore(t.TempDir(), engineLimits{memory: "64MB", threads: 1, maxTemp: "1GB"})
	require.NoError(t, err)
	defer st.close()
	var n int64
	require.NoError(t, st.db.QueryRow("SELECT count(*) FROM (SELECT i, md5(i::VARCHAR) AS h FROM range(3000000) AS t(i) ORDER BY h)").Scan(&n))
	assert.Equal(t, int64(3000000), n)
}
