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
// Parse implements the part of the WHATWG URL Standard's basic URL parser
// that applies here (no base URL, special schemes only), written in this
// package in a few hundred lines, with IDNA from golang.org/x/net/idna.
//
// net/url was rejected: it implements RFC 3986, not what browsers do. It
// does not treat '\' as '/' (so "https://evil.net\@test.com" has the host
// test.com for net/url but evil.net for a browser), does not remove tabs
// and newlines, does not normalize IPv4 number forms (0x7f.1, 2130706433,
// 0177.0.0.1), does not apply IDNA, and parses "http:test.com" as an
// opaque URL without host. Each difference is a way to make the checked
// host differ from the visited host.
//
// github.com/nlnwa/whatwg-url implements the WHATWG standard and agrees
// with this package on the cases above, but comparing the two on hostile
// and random input showed, on its side: "http://[::1]]/" and
// "http://[[::1]/" are accepted (it trims brackets with strings.Trim); "http://xn--.com/" yields the host
// ".com" (x/net/idna maps an empty "xn--" label to an empty label and
// nothing rejects it); port 0 is accepted; IPv4 parts are parsed with
// strconv.ParseInt, so "http://+0/" becomes 0.0.0.0 and labels like
// "20000000000000000000a" are reported as out-of-range numbers instead of
// being domain labels; and UseSTD3ASCIIRules is applied to non-ASCII hosts,
// which the standard does not do. It also needs
// github.com/bits-and-blooms/bitset, a further module. Since the subset
// needed here is small enough to implement directly and audit, this
// package does that and keeps control over every rule, rather than
// wrapping a lenient parser in corrections.
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
// A single trailing dot of a domain is dropped, because "test.com." is the
// same DNS name as "test.com". Stricter than the standard (each of these
// only turns an accepted URL into ErrInvalid): empty labels ("a..b", ".a",
// "a.xn--") and names beyond DNS limits (253 bytes, 63 per label) are
// rejected; an IDNA result must map to itself; port 0 is rejected, as port
// 0 stands for the default port in URL; an IPv6 literal with more than one
// pair of brackets is rejected explicitly. Userinfo is allowed but
// ignored, as it is not the host. Bytes of invalid UTF-8 in the path are
// percent-encoded one by one (the standard would first replace them with
// U+FFFD); in the host they are ErrInvalid.
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
// Public Suffix List actually lists count, plus names directly above one of
// its wildcard rules ("ck" for "*.ck"); "localhost", "intranet" and other
// unlisted names are valid patterns. The list is the snapshot compiled into
// golang.org/x/net/publicsuffix, so it changes only when that module is
// upgraded. A pattern with a
// path never matches a URL whose path contains an encoded '/' or '\' or a
// "..;" segment, because servers resolve those inconsistently.
//
// Matching is by exact host or subdomain at a label boundary, never by
// substring, and IP literals match only themselves. A URL with an IP host
// never matches a domain pattern, and IPv4-mapped IPv6 addresses are not
// equated with IPv4 addresses.
package urlmatch
