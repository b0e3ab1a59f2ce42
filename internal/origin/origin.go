// Package origin carries, in a request's context, which trusted component of the
// collector wrote the records it holds. Only the components that create human decisions
// and audit events (the auditevent receiver) mark their context; spans from any OTLP
// receiver arrive unmarked. The mark lives in the context, never in span content, so a
// sender cannot forge it; a component that drops the context (a batch processor, an
// exporter's sending queue) drops the mark, and the records are then treated as untrusted.
// A trusted writer's notice of records it refused travels the same way (Refusal).
package origin

import (
	"context"
	"time"
)

type trustedWriterKey struct{}

// WithTrustedWriter returns ctx marked as carrying records written by the trusted
// component name.
func WithTrustedWriter(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, trustedWriterKey{}, name)
}

// TrustedWriter returns the trusted component that wrote the records of ctx, and false
// when ctx carries no mark (spans from an OTLP sender).
func TrustedWriter(ctx context.Context) (string, bool) {
	name, ok := ctx.Value(trustedWriterKey{}).(string)
	return name, ok && name != ""
}

type refusalKey struct{}

// Refusal is a trusted writer's notice that it refused records before they became rows
// (an unauthenticated or invalid request). It travels like the trusted writer's mark, in
// the context of an empty batch sent down the writer's own pipeline, so that exactly the
// trails its records would have reached count it, with no registry between components.
type Refusal struct {
	// RecordType is the type the refused records would have had (event, approval).
	RecordType string
	// Reason names why, in snake_case (unauthenticated, invalid, too_large, ...).
	Reason string
	// Records is how many records were refused; a request whose body was not read
	// counts as one.
	Records int
	// At is when the refusal happened: its hour is the one the refusal is filed in.
	At time.Time
}

// WithRefusal returns ctx carrying the notice r.
func WithRefusal(ctx context.Context, r Refusal) context.Context {
	return context.WithValue(ctx, refusalKey{}, r)
}

// RefusalOf returns the refusal notice ctx carries, if any.
func RefusalOf(ctx context.Context) (Refusal, bool) {
	r, ok := ctx.Value(refusalKey{}).(Refusal)
	return r, ok && r.Records > 0 && r.Reason != ""
}
