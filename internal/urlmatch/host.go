package urlmatch

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// hostKind says what kind of host parseHost produced.
type hostKind uint8

const (
	hostDomain hostKind = iota
	hostIPv4
	hostIPv6
)

// DNS limits enforced on domain hosts (excluding the dropped trailing dot).
// Browsers accept longer names, but no such name can be resolved, so
// refusing them costs nothing and bounds the work done per lookup.
const (
	maxHostLen  = 253
	maxLabelLen = 63
)

// idnaProfile is the UTS #46 profile used by the WHATWG URL Standard's
// "domain to ASCII" with beStrict=false: non-transitional processing (so
// "ß" stays "ß" and becomes "xn--zca"), CheckBidi, CheckJoiners,
// CheckHyphens=false, UseSTD3ASCIIRules=false (the forbidden domain code
// point check below takes its place) and no DNS length check (done
// separately). Later options override earlier ones, so the overrides must
// come after MapForLookup.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.CheckJoiners(true),
	idna.CheckHyphens(false),
	idna.StrictDomainName(false),
	idna.VerifyDNSLength(false),
)

// parseHost implements the WHATWG host parser for special schemes, followed
// by this package's own stricter checks. It returns the canonical host:
// lower-case ASCII (punycode) domain without a trailing dot, dotted-quad
// IPv4, or bracketed compressed IPv6. The error always wraps ErrInvalid.
func parseHost(in string) (string, hostKind, error) {
	if in == "" {
		return "", 0, invalid("missing host")
	}
	if in[0] == '[' {
		if len(in) < 2 || in[len(in)-1] != ']' {
			return "", 0, invalid("unterminated IPv6 address")
		}
		inner := in[1 : len(in)-1]
		// A second bracket can only come from malformed input such as
		// "[::1]]"; some parsers strip all brackets and accept it.
		if strings.ContainsAny(inner, "[]") {
			return "", 0, invalid("unbalanced brackets in host")
		}
		addr, ok := parseIPv6(inner)
		if !ok {
			return "", 0, invalid("invalid IPv6 address")
		}
		return "[" + formatIPv6(addr) + "]", hostIPv6, nil
	}

	domain := percentDecode(in)
	if !utf8.ValidString(domain) {
		return "", 0, invalid("host is not valid UTF-8")
	}
	ascii, err := domainToASCII(domain)
	if err != nil {
		return "", 0, err
	}
	for i := 0; i < len(ascii); i++ {
		if isForbiddenDomainByte(ascii[i]) {
			return "", 0, invalid("forbidden character in host")
		}
	}
	if endsInANumber(ascii) {
		v4, ok := parseIPv4(ascii)
		if !ok {
			return "", 0, invalid("invalid IPv4 address")
		}
		return formatIPv4(v4), hostIPv4, nil
	}

	// Stricter than WHATWG from here on.
	ascii = strings.TrimSuffix(ascii, ".")
	if err := checkLabels(ascii); err != nil {
		return "", 0, err
	}
	if endsInANumber(ascii) {
		// Unreachable for inputs that passed the IPv4 branch above; kept so
		// that a domain host can never look like an address.
		return "", 0, invalid("invalid IPv4 address")
	}
	return ascii, hostDomain, nil
}

// checkLabels rejects empty labels (".a.com", "a..com", "a.com.." once the
// single trailing dot is gone) and names longer than DNS allows.
func checkLabels(host string) error {
	if host == "" {
		return invalid("empty host")
	}
	if len(host) > maxHostLen {
		return invalid("host name too long")
	}
	start := 0
	for i := 0; i <= len(host); i++ {
		if i == len(host) || host[i] == '.' {
			n := i - start
			if n == 0 {
				return invalid("empty label in host")
			}
			if n > maxLabelLen {
				return invalid("host label too long")
			}
			start = i + 1
		}
	}
	return nil
}

// domainToASCII is the WHATWG "domain to ASCII" algorithm with
// beStrict=false, plus a fixed-point check: the result must map to itself,
// which guarantees that parsing a serialized URL or pattern yields the same
// host again.
func domainToASCII(domain string) (string, error) {
	if isASCII(domain) && !hasACELabel(domain) {
		// The standard's fast path: ASCII input without "xn--" labels is
		// only lower-cased.
		return strings.ToLower(domain), nil
	}
	a, err := idnaProfile.ToASCII(domain)
	if err != nil || a == "" {
		return "", invalid("host is not a valid internationalized domain name")
	}
	if !isASCII(a) {
		return "", invalid("host is not a valid internationalized domain name")
	}
	// x/net/idna turns an empty "xn--" label into an empty label, so
	// "xn--.com" becomes ".com" (checkLabels rejects that later) and
	// "a.xn--" becomes "a.", which looks like an ordinary trailing dot. A
	// trailing empty label is accepted only if the input's last character
	// maps to a dot.
	if strings.HasSuffix(a, ".") {
		r, _ := utf8.DecodeLastRuneInString(domain)
		if m, err := idnaProfile.ToASCII(string(r)); err != nil || !strings.HasSuffix(m, ".") {
			return "", invalid("host is not a valid internationalized domain name")
		}
	}
	// A result that is not a fixed point is rejected.
	b, err := idnaProfile.ToASCII(a)
	if err != nil || b != a {
		return "", invalid("host is not a valid internationalized domain name")
	}
	return a, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// hasACELabel reports whether some label of s (split strictly on '.')
// starts with "xn--", ignoring ASCII case.
func hasACELabel(s string) bool {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			l := s[start:i]
			if len(l) >= 4 && strings.EqualFold(l[:4], "xn--") {
				return true
			}
			start = i + 1
		}
	}
	return false
}

// isForbiddenDomainByte reports whether b is a WHATWG forbidden domain code
// point, or is not ASCII at all.
func isForbiddenDomainByte(b byte) bool {
	if b <= 0x20 || b >= 0x7f {
		return true
	}
	switch b {
	case '#', '%', '/', ':', '<', '>', '?', '@', '[', '\\', ']', '^', '|':
		return true
	}
	return false
}

// percentDecode decodes %XX sequences; a '%' not followed by two hex digits
// is kept as is.
func percentDecode(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// ipv4Overflow is returned by parseIPv4Number for values that do not fit in
// 32 bits; it is larger than any valid part.
const ipv4Overflow = 1 << 33

// parseIPv4Number is the WHATWG IPv4 number parser. Values larger than 32
// bits are reported as ipv4Overflow rather than failure, as in the standard.
func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	radix := uint64(10)
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
		radix = 16
	} else if len(s) >= 2 && s[0] == '0' {
		s = s[1:]
		radix = 8
	}
	if s == "" {
		return 0, true
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d uint64
		switch {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case radix == 16 && 'a' <= c && c <= 'f':
			d = uint64(c-'a') + 10
		case radix == 16 && 'A' <= c && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= radix {
			return 0, false
		}
		if n < ipv4Overflow {
			n = n*radix + d
		}
	}
	if n > ipv4Overflow {
		n = ipv4Overflow
	}
	return n, true
}

// endsInANumber is the WHATWG "ends in a number checker".
func endsInANumber(s string) bool {
	if strings.HasSuffix(s, ".") {
		if s == "." {
			return false
		}
		s = s[:len(s)-1]
	}
	last := s[strings.LastIndexByte(s, '.')+1:]
	if last != "" {
		allDigits := true
		for i := 0; i < len(last); i++ {
			if !isDigit(last[i]) {
				allDigits = false
				break
			}
		}
		if allDigits {
			return true
		}
	}
	_, ok := parseIPv4Number(last)
	return ok
}

// parseIPv4 is the WHATWG IPv4 parser.
func parseIPv4(s string) (uint32, bool) {
	if strings.HasSuffix(s, ".") && len(s) > 1 {
		s = s[:len(s)-1]
	}
	var nums [4]uint64
	n := 0
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if n == 4 {
				return 0, false
			}
			v, ok := parseIPv4Number(s[start:i])
			if !ok {
				return 0, false
			}
			nums[n] = v
			n++
			start = i + 1
		}
	}
	for i := 0; i < n-1; i++ {
		if nums[i] > 255 {
			return 0, false
		}
	}
	if nums[n-1] >= 1<<(8*(5-n)) {
		return 0, false
	}
	ipv4 := nums[n-1]
	for i := 0; i < n-1; i++ {
		ipv4 += nums[i] << (8 * (3 - i))
	}
	return uint32(ipv4), true
}

func formatIPv4(a uint32) string {
	b := make([]byte, 0, 15)
	for i := 3; i >= 0; i-- {
		b = strconv.AppendUint(b, uint64(a>>(8*i))&0xff, 10)
		if i > 0 {
			b = append(b, '.')
		}
	}
	return string(b)
}

// parseIPv6 is the WHATWG IPv6 parser, applied to the text between the
// brackets.
func parseIPv6(s string) ([8]uint16, bool) {
	var addr [8]uint16
	piece, compress, p := 0, -1, 0
	at := func(i int) int { // -1 stands for EOF
		if i < len(s) {
			return int(s[i])
		}
		return -1
	}
	if at(p) == ':' {
		if at(p+1) != ':' {
			return addr, false
		}
		p += 2
		piece++
		compress = piece
	}
	for at(p) != -1 {
		if piece == 8 {
			return addr, false
		}
		if at(p) == ':' {
			if compress != -1 {
				return addr, false
			}
			p++
			piece++
			compress = piece
			continue
		}
		value, length := 0, 0
		for length < 4 && at(p) != -1 && isHex(byte(at(p))) {
			value = value*16 + int(unhex(byte(at(p))))
			p++
			length++
		}
		if at(p) == '.' {
			if length == 0 {
				return addr, false
			}
			p -= length
			if piece > 6 {
				return addr, false
			}
			seen := 0
			for at(p) != -1 {
				v4 := -1
				if seen > 0 {
					if at(p) == '.' && seen < 4 {
						p++
					} else {
						return addr, false
					}
				}
				if at(p) == -1 || !isDigit(byte(at(p))) {
					return addr, false
				}
				for at(p) != -1 && isDigit(byte(at(p))) {
					d := at(p) - '0'
					switch {
					case v4 == -1:
						v4 = d
					case v4 == 0:
						return addr, false
					default:
						v4 = v4*10 + d
					}
					if v4 > 255 {
						return addr, false
					}
					p++
				}
				addr[piece] = addr[piece]<<8 | uint16(v4)
				seen++
				if seen == 2 || seen == 4 {
					piece++
				}
			}
			if seen != 4 {
				return addr, false
			}
			break
		} else if at(p) == ':' {
			p++
			if at(p) == -1 {
				return addr, false
			}
		} else if at(p) != -1 {
			return addr, false
		}
		addr[piece] = uint16(value)
		piece++
	}
	if compress != -1 {
		swaps := piece - compress
		piece = 7
		for piece != 0 && swaps > 0 {
			addr[piece], addr[compress+swaps-1] = addr[compress+swaps-1], addr[piece]
			piece--
			swaps--
		}
	} else if piece != 8 {
		return addr, false
	}
	return addr, true
}

// formatIPv6 is the WHATWG IPv6 serializer: lower-case hex without leading
// zeros, and the first longest run of two or more zero pieces as "::".
func formatIPv6(a [8]uint16) string {
	compress, best := -1, 1
	for i := 0; i < 8; {
		if a[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && a[j] == 0 {
			j++
		}
		if j-i > best {
			compress, best = i, j-i
		}
		i = j
	}
	b := make([]byte, 0, 39)
	for i := 0; i < 8; i++ {
		if i == compress {
			if i == 0 {
				b = append(b, "::"...)
			} else {
				b = append(b, ':')
			}
			i += best - 1
			continue
		}
		b = strconv.AppendUint(b, uint64(a[i]), 16)
		if i != 7 {
			b = append(b, ':')
		}
	}
	return string(b)
}

// isIPHost reports whether a canonical host is an IP literal: bracketed
// IPv6, or a host whose last label is numeric (after parsing, that can only
// be a dotted-quad IPv4 address).
func isIPHost(h string) bool {
	if h == "" {
		return false
	}
	if h[0] == '[' {
		return true
	}
	last := h[strings.LastIndexByte(h, '.')+1:]
	if last == "" {
		return false
	}
	for i := 0; i < len(last); i++ {
		if !isDigit(last[i]) {
			return false
		}
	}
	return true
}
