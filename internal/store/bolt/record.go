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
//	byte 0     envelope version (recordVersion)
//	bytes 1-4  CRC-32C (Castagnoli), big-endian, of: the version byte,
//	           the key's length as a uvarint, the key, the payload
//	bytes 5-   the payload (the value the caller wrote)
//
// The checksum is computed when the value is written and verified at every
// read, so one flipped bit anywhere in a value, or a value moved under
// another key, is reported as damage instead of being read as something
// nobody wrote. CRC-32C detects every error of up to 3 bits in values of
// this size and is hardware accelerated (SSE4.2, ARMv8 CRC).
const (
	recordVersion    = 1
	recordHeaderSize = 5
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errChecksum and errEnvelope describe a record that fails verification.
var (
	errChecksum = errors.New("checksum mismatch")
	errEnvelope = errors.New("bad record envelope")
)

func recordSum(key, payload []byte) uint32 {
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = recordVersion
	n := binary.PutUvarint(hdr[1:], uint64(len(key)))
	sum := crc32.Update(0, castagnoli, hdr[:1+n])
	sum = crc32.Update(sum, castagnoli, key)
	return crc32.Update(sum, castagnoli, payload)
}

// seal returns the stored form of payload under key.
func seal(key, payload []byte) []byte {
	out := make([]byte, recordHeaderSize+len(payload))
	out[0] = recordVersion
	binary.BigEndian.PutUint32(out[1:], recordSum(key, payload))
	copy(out[recordHeaderSize:], payload)
	return out
}

// unseal verifies a stored value and returns its payload, which aliases raw.
func unseal(key, raw []byte) ([]byte, error) {
	if len(raw) < recordHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes", errEnvelope, len(raw))
	}
	if raw[0] != recordVersion {
		return nil, fmt.Errorf("%w: version %d", errEnvelope, raw[0])
	}
	payload := raw[recordHeaderSize:]
	if got, want := recordSum(key, payload), binary.BigEndian.Uint32(raw[1:]); got != want {
		return nil, fmt.Errorf("%w (stored %08x, computed %08x)", errChecksum, want, got)
	}
	return payload, nil
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

// Unseal verifies a value read from the file directly and returns its
// payload; the error describes the damage.
func Unseal(key, raw []byte) ([]byte, error) { return unseal(key, raw) }
