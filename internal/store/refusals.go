package store

import "errors"

// Refusals of a store that is a service of its own (etcd): it answers,
// but refuses the request. Nothing was committed.
var (
	// ErrAccessDenied: the store refused this process's credentials or
	// their permissions (etcd auth: a role revoked or changed, the user
	// deleted, its password changed, a token it no longer accepts). It
	// lasts until an operator restores the access.
	ErrAccessDenied = errors.New("store access denied")
	// ErrOverloaded comes with ErrUnavailable when the store answered
	// but refused the request as overloaded (etcd's "too many
	// requests"); nothing was committed and the caller may retry later.
	ErrOverloaded = errors.New("store overloaded")
)
