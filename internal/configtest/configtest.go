// Package configtest loads a component's named test configurations from its
// testdata/config.yaml the way the collector does (unmarshal over the factory's default,
// then validate), so config tests state only what each case expects.
package configtest

import (
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

// Load unmarshals the configuration <type>/<name> of testdata/config.yaml over the
// factory's default and returns it with the unmarshal error (e.g. "has invalid keys").
// An empty name loads the unnamed <type> entry.
func Load(t testing.TB, f component.Factory, name string) (component.Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	id := component.NewID(f.Type())
	if name != "" {
		id = component.NewIDWithName(f.Type(), name)
	}
	sub, err := cm.Sub(id.String())
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	cfg := f.CreateDefaultConfig()
	return cfg, sub.Unmarshal(cfg)
}

// Check loads <type>/<name> and validates it. Without wantErr the configuration must be
// valid; otherwise loading or validation must fail with an error containing every
// wantErr text (a field name, the bad value, the fix).
func Check(t testing.TB, f component.Factory, name string, wantErr ...string) component.Config {
	t.Helper()
	cfg, err := Load(t, f, name)
	if err == nil {
		err = confmap.Validate(cfg)
	}
	switch {
	case len(wantErr) == 0 && err != nil:
		t.Fatalf("%s: unexpected error: %v", name, err)
	case len(wantErr) > 0 && err == nil:
		t.Fatalf("%s: no error, want one containing %q", name, wantErr)
	}
	for _, want := range wantErr {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not contain %q", name, err, want)
		}
	}
	return cfg
}
