package auditqueryextension

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"

	"github.com/otelaudit/otelcol-audit/internal/httpjson"
)

// jsonRouteErrors answers the router's own refusals under /api/ as JSON errors, as every
// other answer of the API is: a method the path does not take (405, with Allow) and a
// path that is no route (404). The ServeMux writes those as text/plain, which a script
// parsing {"error": ...} cannot read.
func jsonRouteErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" || !strings.HasPrefix(r.URL.Path, "/api/") {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &routeRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusMethodNotAllowed:
			allow := rec.header.Get("Allow")
			w.Header().Set("Allow", allow)
			httpjson.Error(w, rec.status, fmt.Sprintf("%s does not take %s; it takes %s", r.URL.Path, r.Method, allow))
		case http.StatusNotFound:
			httpjson.Error(w, rec.status, fmt.Sprintf("no API route %s; /api/v1/openapi.json lists them", r.URL.Path))
		default:
			// A redirect to the cleaned path, as the router sent it.
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.body.Bytes())
		}
	})
}

// routeRecorder keeps what one of the router's own handlers (404, 405, redirect) answers.
type routeRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *routeRecorder) Header() http.Header { return r.header }

func (r *routeRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *routeRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
