// Package dlp finds and masks sensitive data in OpenTelemetry spans: payment card
// numbers, US social security numbers, e-mail addresses, phone numbers and credentials
// (API keys, tokens, private keys), plus every value stored under a secret-looking key
// name. A Masker is built once from a Config and is safe for concurrent use; it runs on
// every span, so clean strings cost one pass over their bytes and no allocation.
//
// See README.md in this directory for what each detector matches and deliberately
// does not match.
package dlp

import (
	"math/bits"
	"strings"
)

// Kind names, stable: they appear in configuration, in results (audit.dlp.result) and
// in the placeholders written in place of a match.
const (
	KindCreditCard    = "credit_card"
	KindSSN           = "ssn"
	KindEmail         = "email"
	KindPhone         = "phone"
	KindOpenAIKey     = "openai_key"
	KindAnthropicKey  = "anthropic_key"
	KindAWSAccessKey  = "aws_access_key"
	KindGitHubToken   = "github_token"
	KindSlackToken    = "slack_token"
	KindJWT           = "jwt"
	KindBearerToken   = "bearer_token"
	KindPrivateKey    = "private_key"
	KindSecretKeyName = "secret_key_name"
)

// kind is the internal index of a kind; KindSet is a bit set over it.
type kind uint8

const (
	kCard kind = iota
	kSSN
	kEmail
	kPhone
	kOpenAI
	kAnthropic
	kAWS
	kGitHub
	kSlack
	kJWT
	kBearer
	kPrivateKey
	kKeyName
	numKinds
)

var kindNames = [numKinds]string{
	kCard:       KindCreditCard,
	kSSN:        KindSSN,
	kEmail:      KindEmail,
	kPhone:      KindPhone,
	kOpenAI:     KindOpenAIKey,
	kAnthropic:  KindAnthropicKey,
	kAWS:        KindAWSAccessKey,
	kGitHub:     KindGitHubToken,
	kSlack:      KindSlackToken,
	kJWT:        KindJWT,
	kBearer:     KindBearerToken,
	kPrivateKey: KindPrivateKey,
	kKeyName:    KindSecretKeyName,
}

func (k kind) String() string { return kindNames[k] }
func (k kind) bit() KindSet   { return 1 << k }

// piiKinds are personal data; secretKinds are credentials: removing one of them sets
// audit.credential_masked.
const (
	piiKinds    KindSet = 1<<kCard | 1<<kSSN | 1<<kEmail | 1<<kPhone
	secretKinds KindSet = 1<<kOpenAI | 1<<kAnthropic | 1<<kAWS | 1<<kGitHub | 1<<kSlack |
		1<<kJWT | 1<<kBearer | 1<<kPrivateKey | 1<<kKeyName
	allKinds KindSet = 1<<numKinds - 1
)

// labelPriority orders kinds for the placeholder of overlapping matches: the most
// specific credential first, the generic key-name match after them, personal data last.
var labelPriority = [numKinds]kind{kPrivateKey, kAnthropic, kOpenAI, kGitHub, kSlack, kAWS,
	kJWT, kBearer, kKeyName, kCard, kSSN, kEmail, kPhone}

// alphabetical lists the kinds sorted by name, for sorted result lists.
var alphabetical = func() [numKinds]kind {
	var a [numKinds]kind
	for i := range a {
		a[i] = kind(i)
	}
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && kindNames[a[j]] < kindNames[a[j-1]]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
	return a
}()

// kindByName maps a kind name to its index.
func kindByName(name string) (kind, bool) {
	for i, n := range kindNames {
		if n == name {
			return kind(i), true
		}
	}
	return 0, false
}

// Kinds returns every kind name, personal data first, then the credentials.
func Kinds() []string { return append([]string(nil), kindNames[:]...) }

// IsSecret reports whether kind is a credential kind, whose removal is recorded as
// audit.credential_masked=true. Personal-data kinds (credit_card, ssn, email, phone) and
// unknown names are not.
func IsSecret(kind string) bool {
	k, ok := kindByName(kind)
	return ok && secretKinds&k.bit() != 0
}

// KindSet is a set of kinds.
type KindSet uint16

// Has reports whether the set holds the named kind.
func (s KindSet) Has(kind string) bool {
	k, ok := kindByName(kind)
	return ok && s&k.bit() != 0
}

// Empty reports whether the set is empty.
func (s KindSet) Empty() bool { return s == 0 }

// Len is the number of kinds in the set.
func (s KindSet) Len() int { return bits.OnesCount16(uint16(s)) }

// Kinds returns the kind names in the set, sorted and unique; nil for an empty set.
func (s KindSet) Kinds() []string {
	if s == 0 {
		return nil
	}
	out := make([]string, 0, s.Len())
	for _, k := range alphabetical {
		if s&k.bit() != 0 {
			out = append(out, kindNames[k])
		}
	}
	return out
}

// String is the sorted kind names joined by commas.
func (s KindSet) String() string { return strings.Join(s.Kinds(), ",") }

func (s KindSet) has(k kind) bool { return s&k.bit() != 0 }

// label is the kind a placeholder names for a set of overlapping matches.
func (s KindSet) label() kind {
	for _, k := range labelPriority {
		if s&k.bit() != 0 {
			return k
		}
	}
	return kKeyName
}

// Findings are the kinds found in a value, split by the action applied to them.
type Findings struct {
	Redacted KindSet // replaced by a [REDACTED:…] or [HMAC:…] placeholder
	Blocked  KindSet // kinds configured to block: the caller drops the containing payload
}

// Empty reports whether nothing was found.
func (f Findings) Empty() bool { return f.Redacted|f.Blocked == 0 }

// CredentialMasked reports whether a credential kind was found (and removed).
func (f Findings) CredentialMasked() bool { return (f.Redacted|f.Blocked)&secretKinds != 0 }

// All is every kind found, whatever the action.
func (f Findings) All() KindSet { return f.Redacted | f.Blocked }

func (f Findings) union(o Findings) Findings {
	return Findings{Redacted: f.Redacted | o.Redacted, Blocked: f.Blocked | o.Blocked}
}
