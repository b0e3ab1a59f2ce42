// Package origin carries, in a request's context, which trusted component of the
// collector wrote the records it holds. Only the components that create human decisions
// and audit events (the auditevent receiver) mark their context; spans from any OTLP
// receiver arrive unmarked. The mark lives in the context, never in span content, so a
// sender cannot forge it; a component that drops the context (a batch processor, an
// exporter's sending queue) drops the mark, and the records are then treated as untrusted.
package origin

import "context"

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
