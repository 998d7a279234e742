// Package archtest holds no code: its tests pin which of Gatehouse's
// packages may import which (see docs/architecture.md), so that the layers
// stay what the folder list says they are.
package archtest
