package selector

import (
	"errors"
	"fmt"
	goparser "go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCompileAccepts(t *testing.T) {
	for _, src := range []string{
		"button.pay",
		"#card-number",
		"form.checkout input[name=\"cvv\"]",
		"div > .secret",
		"div>.secret",
		"[data-private]",
		"input[type=password i]",
		"input[type=\"password\"I]",
		"a, b",
		"a,b",
		"a ,b",
		":not(.public)",
		":not( .public , #x )",
		":not(:not(:not(.a)))",
		"[data-x=\"a+b~c\"]",
		"[data-x='a+b~c']",
		"[a~=b]",
		"[a|=en]",
		"[a^=x]",
		"[a$=x]",
		"[a*=x]",
		"[ a = b ]",
		"[a=\"\"]",
		"[a|=\"\"]",
		"*",
		"* > *",
		"*.secret",
		"html body form input",
		"DIV.Secret",
		"#\\31 23",
		".a\\+b",
		"input[name=\"a\\\"]b\"]",
		"--custom-tag",
		"a\\,b",
		"\u00e9l\u00e9ment.caf\u00e9",
		"  div  >  span  ",
		"a\n>\tb",
		"[data-x=\"a\\\nb\"]",
	} {
		t.Run(src, func(t *testing.T) {
			sel, err := Compile(src)
			if err != nil {
				t.Fatalf("Compile(%q): %v", src, err)
			}
			if want := strings.Trim(src, cssSpace); sel.String() != want {
				t.Errorf("String() = %q, want %q", sel.String(), want)
			}
		})
	}
}

func TestCompileRejects(t *testing.T) {
	for _, tc := range []struct{ src, reason string }{
		{":hover", `":hover" needs document state the service cannot see`},
		{"a:HOVER", `":hover" needs document state`},
		{":h\\over", `":hover" needs document state`},
		{"a:focus", `":focus" needs document state`},
		{"a:active", `":active" needs document state`},
		{"a:visited", `":visited" needs document state`},
		{"input:checked", `":checked" needs document state`},
		{"input:disabled", `":disabled" needs document state`},
		{"a:nth-child(2)", `":nth-child" needs document state`},
		{"a:nth-child(2n+1)", `":nth-child" needs document state`},
		{"a:nth-of-type(2)", `":nth-of-type" needs document state`},
		{"li:first-child", `":first-child" needs document state`},
		{"li:last-child", `":last-child" needs document state`},
		{"li:only-child", `":only-child" needs document state`},
		{"p:empty", `":empty" needs document state`},
		{":has(a)", `":has" needs document state`},
		{"p:contains(\"x\")", `":contains" needs document state`},
		{"p:containsOwn(x)", `":containsown" needs document state`},
		{"p:matches(x)", `":matches" needs document state`},
		{"p:lang(en)", `":lang" needs document state`},
		{":not(:hover)", `":hover" needs document state`},
		{":root", `":root" is not supported`},
		{":is(a, b)", `":is" is not supported`},
		{":where(a)", `":where" is not supported`},
		{":input", `pseudo-class ":input" is not supported`},
		{":frobnicate", `pseudo-class ":frobnicate" is not supported`},
		{"::before", `pseudo-element "::before" is not supported`},
		{"a::after", `pseudo-element "::after" is not supported`},
		{"a:before", `pseudo-element ":before" is not supported`},
		{"::frob", `pseudo-element "::frob" is not supported`},
		{"a + b", `"+" (next-sibling combinator) needs document state`},
		{"a+b", `"+" (next-sibling combinator) needs document state`},
		{"a ~ b", `"~" (subsequent-sibling combinator) needs document state`},
		{"a~b", `"~" (subsequent-sibling combinator) needs document state`},
		{"+ a", `"+" (next-sibling combinator)`},
		{"a > + b", `"+" (next-sibling combinator)`},
		{":not(a + b)", `"+" (next-sibling combinator) needs document state`},
		{":not(a~b)", `"~" (subsequent-sibling combinator) needs document state`},
		{"[data-x=\"a\"] + b", `"+" (next-sibling combinator)`},
		{":not(a b)", `combinators inside ":not()" are not supported`},
		{":not(a > b)", `combinators inside ":not()" are not supported`},
		{":not(:not(:not(:not(a))))", `nested more than 3 levels`},
		{"", "selector is empty"},
		{"   \t\n", "selector is empty"},
		{"a" + strings.Repeat(" a", 600), "selector is 1201 bytes long; the limit is 1024"},
		{strings.Repeat("a ", 65) + "a", "more than 64 compound selectors"},
		{strings.Repeat("a,", 64) + "a", "more than 64 compound selectors"},
		{"a\xffb", "not valid utf-8"},
		{"#", `expected an id after "#"`},
		{".", `expected a class name after "."`},
		{"[", `unterminated attribute selector "["`},
		{"[a", `unterminated attribute selector "[a"`},
		{"[a=", `unterminated attribute selector`},
		{"[a=b", `unterminated attribute selector`},
		{"[=b]", `expected an attribute name`},
		{"[a=1]", `expected an attribute value after "="`},
		{"[a!=b]", `attribute operator "!=" is not standard css`},
		{"[a#=b]", `attribute operator "#=" is not supported`},
		{"[a%=b]", `attribute operator "%=" is not supported`},
		{"[a~=\"\"]", `value "" for "~=" in [a] must be a single word`},
		{"[a~=\"x y\"]", `value "x y" for "~=" in [a] must be a single word`},
		{"[a^=\"\"]", `empty value for "^=" in [a] can never match`},
		{"[a$='']", `empty value for "$=" in [a] can never match`},
		{"[a*=\"\"]", `empty value for "*=" in [a] can never match`},
		{"[a=b s]", `expected "]"`},
		{"[a=\"b]", `unterminated string`},
		{".a\\ b", `class name "a b" contains white space`},
		{"a >", `expected a selector after ">" at end of input`},
		{"a,", `expected a selector after ","`},
		{", a", `expected a selector at offset 0`},
		{"a)", `unexpected ")" at offset 1`},
		{"a]", `unexpected "]"`},
		{"a b)", `unexpected ")"`},
		{"*|*", `namespace prefixes`},
		{"ns|a", `namespace prefixes`},
		{"a/**/b", `comments`},
		{"/* x */ a", `comments`},
		{":not(", `expected a selector after "("`},
		{":not(a", `unterminated ":not("`},
		{":not()", `expected a selector after "(" at offset 5, found ")"`},
		{":not", `expected "(" after ":not"`},
		{"a\\", `incomplete escape sequence`},
		{"a\"b\"", `unexpected "\"" at offset 1`},
		{"1a", `expected a selector at offset 0`},
		{"a > > b", `expected a selector after ">"`},
		{"a!", `unexpected "!"`},
		{":", `expected a pseudo-class name after ":"`},
	} {
		t.Run(tc.src, func(t *testing.T) {
			sel, err := Compile(tc.src)
			if err == nil {
				t.Fatalf("Compile(%q) accepted the selector (%v)", tc.src, sel)
			}
			if sel != nil {
				t.Errorf("Compile(%q) returned a selector with an error", tc.src)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			if !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("Reason = %q, want it to contain %q", e.Reason, tc.reason)
			}
			if err.Error() != "invalid selector: "+e.Reason {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

// TestRejectedSiblingOperatorsOutsideStrings checks the rule that "+" and
// "~" are refused everywhere except inside quoted strings, attribute
// values given as escaped identifiers, and the "~=" operator.
func TestRejectedSiblingOperatorsOutsideStrings(t *testing.T) {
	bases := []string{"a", "a.b", "[x]", "[x=\"y\"]", ":not(a)", "#i"}
	for _, op := range []string{"+", "~"} {
		for _, l := range bases {
			for _, r := range bases {
				for _, sp := range []string{"", " ", "\t"} {
					for _, form := range []string{"%s%s%s%s%s", ":not(%s%s%s%s%s)", "z, %s%s%s%s%s", "z > %s%s%s%s%s"} {
						src := fmt.Sprintf(form, l, sp, op, sp, r)
						if _, err := Compile(src); err == nil {
							t.Errorf("Compile(%q) accepted a sibling combinator", src)
						}
					}
				}
			}
		}
	}
	for _, src := range []string{`[x="+"]`, `[x='~']`, `[x~=y]`, `[x=\+]`, `.\~a`, `#a\+b`} {
		if _, err := Compile(src); err != nil {
			t.Errorf("Compile(%q): %v", src, err)
		}
	}
}

func TestCompileLimits(t *testing.T) {
	long := "a" + strings.Repeat(" a", 30) + strings.Repeat(".b", (MaxLength-61)/2)
	if len(long) > MaxLength {
		t.Fatalf("test selector too long: %d", len(long))
	}
	if _, err := Compile(long); err != nil {
		t.Errorf("Compile of %d-byte selector: %v", len(long), err)
	}
	exact := strings.Repeat("a", MaxLength)
	if _, err := Compile(exact); err != nil {
		t.Errorf("Compile of a %d-byte selector: %v", MaxLength, err)
	}
	if _, err := Compile(exact + "a"); err == nil {
		t.Errorf("Compile of a %d-byte selector succeeded", MaxLength+1)
	}
	if _, err := Compile("  " + exact + "  "); err != nil {
		t.Errorf("surrounding white space counted against the limit: %v", err)
	}
	if _, err := Compile(strings.Repeat("a ", MaxCompounds-1) + "a"); err != nil {
		t.Errorf("Compile with %d compounds: %v", MaxCompounds, err)
	}
}

func TestMustCompile(t *testing.T) {
	if MustCompile("a").String() != "a" {
		t.Error("MustCompile(\"a\") lost its source")
	}
	defer func() {
		if recover() == nil {
			t.Error("MustCompile(\":hover\") did not panic")
		}
	}()
	MustCompile(":hover")
}

func TestNilSelector(t *testing.T) {
	var s *Selector
	if s.Match(Element{Tag: "a"}, nil) {
		t.Error("nil selector matched")
	}
	if s.String() != "" {
		t.Error("nil selector has a source")
	}
}

// TestImportsStayLeaf enforces the package contract that it depends only on
// the standard library and cascadia.
func TestImportsStayLeaf(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := goparser.ParseFile(fset, name, src, goparser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if path != "github.com/andybalholm/cascadia" && strings.Contains(first, ".") {
				t.Errorf("%s imports %s; the package may use only the standard library and cascadia", name, path)
			}
		}
	}
}
