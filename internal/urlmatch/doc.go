// Package urlmatch decides whether a top-level page URL is allowed by a
// domain allowlist. It owns three things: parsing and normalizing http(s)
// URLs the way a browser does (Parse, URL), parsing and normalizing
// allowlist entries and privacy-rule URL patterns (ParsePattern, Pattern),
// and answering "which entry allows this URL" quickly (Index).
//
// The package is pure: no I/O, no logging, no global mutable state. It must
// not import gRPC, generated protobuf code or any other part of the service;
// callers translate between their types and these. Its only dependencies
// are the standard library and golang.org/x/net (idna, publicsuffix).
//
// # Threat model
//
// The URL comes from a page the co-browse agent is about to act on, and an
// attacker may control it completely. Matching by substring ("URL contains
// test.com") is broken by test.com.evil.net, evil.net/?test.com,
// test.com@evil.net and many more. This package instead reduces the URL to
// the host a browser would actually connect to, and compares hosts exactly
// or at a label boundary. Every ambiguity is resolved towards refusing:
// an input this package cannot interpret with certainty is ErrInvalid, and
// an invalid URL is never allowed.
//
// # Parsing choice
//
// Parse implements the WHATWG URL Standard's basic URL parser for the two
// special schemes it permits, written in this package (about 500 lines
// including the host parser), with IDNA from golang.org/x/net/idna.
//
// net/url was rejected: it implements RFC 3986, not what browsers do. It
// does not treat '\' as '/' (so "https://evil.net\@test.com" has host
// test.com for net/url but evil.net for a browser), does not remove tabs
// and newlines, does not normalize IPv4 number forms (0x7f.1, 2130706433,
// 0177.0.0.1), does not apply IDNA, and parses "http:test.com" as an
// opaque URL without host. Each difference is a way to make the checked
// host differ from the visited host.
//
// github.com/nlnwa/whatwg-url implements the WHATWG standard and was
// evaluated against hostile inputs. It gives the right host for the cases
// above, but: it accepts "http://[::1]]/" (it trims all brackets with
// strings.Trim); it turns "http://xn--.com/" into the host ".com" (x/net/idna
// maps an empty "xn--" label to an empty label and nothing rejects it); it
// accepts port 0; and it needs github.com/bits-and-blooms/bitset, a further
// module this repository does not otherwise use. The subset of the standard
// needed here (no base URL, no non-special schemes, no query or fragment
// handling beyond cutting them off) is small enough to implement directly
// and audit, so this package does that and keeps full control over every
// rule. The whatwg-url parser remains a useful differential oracle.
//
// # Normalization and deviations from the standard
//
// Following the standard: leading and trailing C0 control or space is
// trimmed; tab, LF and CR are removed anywhere; the scheme is lower-cased;
// any run of '/' and '\' after "http:" is skipped, so "http:test.com" and
// "https:/\test.com" have the host test.com; the userinfo, i.e. everything
// before the last '@' of the authority, is discarded and is never the
// host; '\' ends the authority, so "https://test.com\@evil.net" has the host
// test.com and "https://evil.net\@test.com" the host evil.net; the host is
// percent-decoded and passed through UTS #46 non-transitional processing
// (CheckBidi, CheckJoiners, no CheckHyphens, no STD3 rules), ASCII hosts
// without "xn--" labels are only lower-cased, forbidden domain code points
// fail; hosts ending in a numeric label are IPv4 addresses in any of the
// standard's number forms or fail; IPv6 literals are parsed and serialized
// in compressed lower-case form; default ports are dropped; "." and ".."
// path segments, also percent-encoded, are resolved; query and fragment are
// cut off. A string without a scheme, like "example.com/x" or
// "//example.com", is a relative reference that cannot be resolved without
// a base URL, so it is ErrInvalid. A scheme other than http or https is
// ErrNotPermitted; by the standard's rules "localhost:8080" has the scheme
// "localhost".
//
// Stricter than the standard (each only turns an accepted URL into
// ErrInvalid): a single trailing dot of a domain is dropped, because
// "test.com." is the same DNS name as "test.com"; empty labels ("a..b",
// ".a") and names beyond DNS limits (253 bytes, 63 per label) are
// rejected; an IDNA result must map to itself, so punycode that decodes to
// something else is rejected; port 0 is rejected; an IPv6 literal with more
// than one pair of brackets is rejected explicitly. Userinfo is allowed
// but ignored, as a browser ignores it for choosing the host.
//
// # Patterns
//
// Patterns go through the same host and path normalization, so
// "bücher.example", "XN--BCHER-KVA.example." and "xn--bcher-kva.example" are
// one pattern, and a Cyrillic "tеst.com" can never equal "test.com". On top
// of that, a pattern host may only contain a-z, 0-9, '-' and '_' in its
// labels, may use "*" only as a whole leading label, may not carry
// userinfo, query or fragment, and may not be a public suffix ("com",
// "co.uk", "github.io"), which would allow whole registries. Only names the
// Public Suffix List actually lists count; "localhost", "intranet" and
// other unlisted single-label names are valid patterns. A pattern with a
// path never matches a URL whose path contains an encoded '/' or '\' or a
// "..;" segment, because servers resolve those inconsistently.
//
// Matching is by exact host or subdomain at a label boundary, never by
// substring, and IP literals match only themselves. A URL with an IP host
// never matches a domain pattern, and IPv4-mapped IPv6 addresses are not
// equated with IPv4 addresses.
package urlmatch
