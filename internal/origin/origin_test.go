package origin

import (
	"context"
	"testing"
)

func TestTrustedWriter(t *testing.T) {
	if name, ok := TrustedWriter(context.Background()); ok {
		t.Errorf("an unmarked context names %q", name)
	}
	if name, ok := TrustedWriter(context.WithValue(context.Background(), struct{}{}, "auditevent")); ok {
		t.Errorf("a value under another key names %q", name)
	}
	if name, ok := TrustedWriter(WithTrustedWriter(context.Background(), "")); ok {
		t.Errorf("an empty name is trusted as %q", name)
	}
	name, ok := TrustedWriter(WithTrustedWriter(context.Background(), "auditevent"))
	if !ok || name != "auditevent" {
		t.Errorf("TrustedWriter = %q, %v; want auditevent, true", name, ok)
	}
}
