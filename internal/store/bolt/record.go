package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Every value the driver stores, in the kv bucket and in the meta bucket,
// is sealed in a small envelope:
//
//	byte 0     envelope version: 1 (meta records, and values of schema 2)
//	           or 2 (values of the kv bucket from schema 3 on)
//	bytes 1-4  CRC-32C (Castagnoli), big-endian, of: the version byte,
//	           the key's length as a uvarint, the key, then (version 2)
//	           the mod revision's 8 bytes, then the payload
//	bytes 5-12 version 2 only: the mod revision, big-endian: the revision
//	           of the commit that wrote the value
//	then       the payload (the value the caller wrote)
//
// The checksum is computed when the value is written and verified at every
// read, so one flipped bit anywhere in a value, or a value moved under
// another key, is reported as damage instead of being read as something
// nobody wrote. CRC-32C detects every error of up to 3 bits in values of
// this size and is hardware accelerated (SSE4.2, ARMv8 CRC).
const (
	recordVersion    = 1
	recordVersionRev = 2
	recordHeaderSize = 5
	revSize          = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errChecksum and errEnvelope describe a record that fails verification.
var (
	errChecksum = errors.New("checksum mismatch")
	errEnvelope = errors.New("bad record envelope")
)

func recordSum(version byte, key, rev, payload []byte) uint32 {
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = version
	n := binary.PutUvarint(hdr[1:], uint64(len(key)))
	sum := crc32.Update(0, castagnoli, hdr[:1+n])
	sum = crc32.Update(sum, castagnoli, key)
	sum = crc32.Update(sum, castagnoli, rev)
	return crc32.Update(sum, castagnoli, payload)
}

// seal returns the stored form of payload under key without a revision
// (the meta bucket's records).
func seal(key, payload []byte) []byte {
	out := make([]byte, recordHeaderSize+len(payload))
	out[0] = recordVersion
	binary.BigEndian.PutUint32(out[1:], recordSum(recordVersion, key, nil, payload))
	copy(out[recordHeaderSize:], payload)
	return out
}

// sealAt returns the stored form of payload under key, written by the
// commit at revision rev (the kv bucket's records).
func sealAt(key, payload []byte, rev uint64) []byte {
	out := make([]byte, recordHeaderSize+revSize+len(payload))
	out[0] = recordVersionRev
	r := out[recordHeaderSize : recordHeaderSize+revSize]
	binary.BigEndian.PutUint64(r, rev)
	binary.BigEndian.PutUint32(out[1:], recordSum(recordVersionRev, key, r, payload))
	copy(out[recordHeaderSize+revSize:], payload)
	return out
}

// unseal verifies a stored value and returns its payload, which aliases raw.
func unseal(key, raw []byte) ([]byte, error) {
	p, _, err := unsealRev(key, raw)
	return p, err
}

// unsealRev verifies a stored value and returns its payload (aliasing raw)
// and its mod revision (0 for a value sealed without one).
func unsealRev(key, raw []byte) ([]byte, uint64, error) {
	if len(raw) < recordHeaderSize {
		return nil, 0, fmt.Errorf("%w: %d bytes", errEnvelope, len(raw))
	}
	var rev []byte
	payload := raw[recordHeaderSize:]
	switch raw[0] {
	case recordVersion:
	case recordVersionRev:
		if len(payload) < revSize {
			return nil, 0, fmt.Errorf("%w: %d bytes", errEnvelope, len(raw))
		}
		rev, payload = payload[:revSize], payload[revSize:]
	default:
		return nil, 0, fmt.Errorf("%w: version %d", errEnvelope, raw[0])
	}
	if got, want := recordSum(raw[0], key, rev, payload), binary.BigEndian.Uint32(raw[1:]); got != want {
		return nil, 0, fmt.Errorf("%w (stored %08x, computed %08x)", errChecksum, want, got)
	}
	var r uint64
	if rev != nil {
		r = binary.BigEndian.Uint64(rev)
	}
	return payload, r, nil
}

// sealU64 and unsealU64 store the meta bucket's counters (schema version,
// revision) sealed like every other value.
func sealU64(key []byte, v uint64) []byte { return seal(key, u64(v)) }

func unsealU64(key, raw []byte) (uint64, error) {
	p, err := unseal(key, raw)
	if err != nil {
		return 0, err
	}
	if len(p) != 8 {
		return 0, fmt.Errorf("%w: %d-byte counter", errEnvelope, len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}

// Seal returns the stored form of payload under key, as the driver writes
// it: for repair tools and tests that write the file directly.
func Seal(key, payload []byte) []byte { return seal(key, payload) }

// SealAt returns the stored form of a kv record written at revision rev,
// as the driver writes it.
func SealAt(key, payload []byte, rev uint64) []byte { return sealAt(key, payload, rev) }

// Unseal verifies a value read from the file directly and returns its
// payload; the error describes the damage.
func Unseal(key, raw []byte) ([]byte, error) { return unseal(key, raw) }

// UnsealRev is Unseal that also returns the value's mod revision (0 when
// it was sealed without one).
func UnsealRev(key, raw []byte) ([]byte, uint64, error) { return unsealRev(key, raw) }
