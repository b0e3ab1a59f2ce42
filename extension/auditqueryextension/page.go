package auditqueryextension

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"
)

// webFiles are the page's assets: plain HTML, CSS and JavaScript modules, no build step
// and nothing fetched from elsewhere at run time.
//
//go:embed web
var webFiles embed.FS

// pageCSP lets the page load and call only its own origin: no inline script or style, no
// framing, no form or base URL elsewhere. Downloads are blob: navigations.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// pageAsset is one embedded file, with the validator that lets a browser keep it.
type pageAsset struct {
	body        []byte
	contentType string
	etag        string
}

// registerPage serves the audit trail page at / and its assets under /assets/. The page
// only calls the API beside it, so it sees what its caller may see, and every read it
// makes is recorded like any other API call.
func registerPage(mux *http.ServeMux) {
	assets := map[string]pageAsset{}
	err := fs.WalkDir(webFiles, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := webFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		assets[p[len("web"):]] = pageAsset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		// The files are compiled in: a failure here is a broken build, not a run-time state.
		panic("auditquery: embedded page: " + err.Error())
	}
	serve := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			a, ok := assets[name]
			if !ok {
				http.NotFound(w, r)
				return
			}
			h := w.Header()
			h.Set("Content-Type", a.contentType)
			h.Set("Content-Security-Policy", pageCSP)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "no-referrer")
			// Revalidate every time: a new binary must not run with an old script.
			h.Set("Cache-Control", "no-cache")
			h.Set("ETag", a.etag)
			http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
		}
	}
	mux.HandleFunc("GET /{$}", serve("/index.html"))
	mux.HandleFunc("GET /assets/{file}", func(w http.ResponseWriter, r *http.Request) {
		serve("/assets/"+r.PathValue("file"))(w, r)
	})
}
