// Package selector validates, compiles and evaluates the CSS selectors that
// admins attach to privacy rules (BUTTON_BLOCK and DATA_MASK).
//
// The package owns three things:
//
//   - the accepted selector language, checked when a rule is written
//     ([Compile]);
//   - the element descriptor a session client reports ([Element]: tag, id,
//     classes, attributes, plus its ancestor chain);
//   - the decision whether a compiled selector matches such a descriptor
//     ([Selector.Match]), which runs on every agent click.
//
// It is a leaf package: it depends on the standard library and on
// github.com/andybalholm/cascadia only, and must not import gRPC, generated
// protobuf code or any other gatehouse package. Transport layers convert
// their messages into [Element] values before calling it.
//
// # Why some selectors are rejected
//
// The service never sees the document. For an element it knows the tag, id,
// class list and attributes of that element and of each ancestor, and
// nothing else: not its siblings, its children, its text, its position
// among siblings, user interaction (hover, focus, visited links) or live
// form state (checked, disabled). A selector whose result depends on any of
// those cannot be evaluated faithfully. Evaluating it anyway would be worse
// than refusing it: general-purpose engines treat :hover as never matching
// and sibling combinators as "no sibling found", so a DATA_MASK rule written
// with them would silently mask nothing. Such selectors are therefore
// rejected on write with a reason that names the offending part.
//
// Accepted: type and universal selectors, #id, .class, attribute selectors
// ([a], [a=v], [a~=v], [a|=v], [a^=v], [a$=v], [a*=v], each optionally with
// the "i" flag), the descendant (whitespace) and child (>) combinators,
// selector lists (a, b) and :not() whose argument is a list of compound
// selectors (no combinators inside :not, at most three nested levels).
//
// Rejected with a specific reason: pseudo-elements; sibling combinators (+
// and ~); structural, interaction, form-state and text pseudo-classes
// (:nth-child, :first-child, :empty, :hover, :focus, :checked, :has,
// :contains and the like); namespace prefixes; comments; the non-standard
// cascadia attribute operators != and #=; :is() and :where() (cascadia does
// not implement them); attribute tests that can never match ([a~=""],
// [a~="x y"], [a^=""], [a$=""], [a*=""]) and class names containing
// whitespace.
//
// :root is rejected as well. The chain a client reports runs from the
// outermost ancestor it knows about, which is sometimes <body> rather than
// <html>, so "the outermost ancestor" is not reliably the document root. A
// rule that needs the root can name it with the html type selector.
//
// # Matching rules
//
// Tag and attribute names compare ASCII case-insensitively, as in HTML
// documents. Id and class values compare case-sensitively. Attribute values
// compare case-sensitively unless the selector carries the "i" flag. The ID
// and Classes fields of an [Element] are the element's id and class
// attributes: an empty ID or an empty class list means the attribute is
// absent, and "id" or "class" keys in Attributes are ignored. Matching
// agrees with cascadia evaluated on an equivalent html.Node chain; the
// tests check this on generated and fuzzed input.
//
// Inputs are bounded: a selector may be at most [MaxLength] bytes and
// contain at most [MaxCompounds] compound selectors, so matching cost is
// linear in the ancestor chain length times the selector size.
package selector
