// Package schema holds the JSON Schemas of the documents Gatehouse reads
// and writes, embedded so that the CLI can print them and an HTTP server
// can serve them without a file on disk.
package schema

import _ "embed"

// AccountV1 is the JSON Schema (draft 2020-12) of the account document,
// format "gatehouse.account/v1": what gatehouse export writes and
// gatehouse diff, gatehouse apply and AdminService.ApplyAccount read.
//
//go:embed account.v1.json
var AccountV1 []byte

// AccountV1Path is the path under which the schema is served, the last part
// of its $id.
const AccountV1Path = "/schema/account.v1.json"
