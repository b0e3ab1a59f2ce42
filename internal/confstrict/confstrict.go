// Package confstrict restores the unknown-key check for component configs that embed
// confighttp.ServerConfig: since collector v0.160 its Unmarshal ignores keys it does not
// know (collector issue #15907), so a misspelled key such as "tls_settings" or
// "max_limt" would otherwise be accepted silently.
package confstrict

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/confmap"
)

// RejectUnknownKeys fails, in confmap's words ("has invalid keys: ..."), when conf has a
// top-level key that no field of the struct cfg points to accepts. Fields tagged
// `mapstructure:",squash"` contribute their own keys. Nested sections are checked by
// their own types when they are decoded.
func RejectUnknownKeys(conf *confmap.Conf, cfg any) error {
	allowed := map[string]bool{}
	collectKeys(reflect.TypeOf(cfg), allowed)
	var unknown []string
	for k := range conf.ToStringMap() {
		if !allowed[strings.ToLower(k)] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fmt.Errorf("has invalid keys: %s", strings.Join(unknown, ", "))
}

func collectKeys(t reflect.Type, into map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if name == "-" || f.Name == "_" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "squash") {
			collectKeys(f.Type, into)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		into[strings.ToLower(name)] = true
	}
}

// RejectMoved fails when conf sets a top-level key that moved out of this component,
// saying, for each, what to write instead (moved maps the key to that advice).
func RejectMoved(conf *confmap.Conf, moved map[string]string) error {
	var msgs []string
	for k := range conf.ToStringMap() {
		if advice, ok := moved[strings.ToLower(k)]; ok {
			msgs = append(msgs, fmt.Sprintf("%s is no longer a key here: %s", k, advice))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	slices.Sort(msgs)
	return errors.New(strings.Join(msgs, "; "))
}
