package partition

import (
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"strings"
)

// Scheme is a key-to-partition mapping.
type Scheme string

// The supported schemes.
const (
	Murmur2 Scheme = "murmur2"
	FNV1a   Scheme = "fnv1a"
	CRC32   Scheme = "crc32"
)

// Schemes lists the supported schemes, the default first.
var Schemes = []Scheme{Murmur2, FNV1a, CRC32}

// Parse returns the Scheme named s.
func Parse(s string) (Scheme, error) {
	for _, sc := range Schemes {
		if string(sc) == s {
			return sc, nil
		}
	}
	names := make([]string, len(Schemes))
	for i, sc := range Schemes {
		names[i] = string(sc)
	}
	return "", fmt.Errorf("unknown partitioner %q (want %s)", s, strings.Join(names, ", "))
}

// Partition returns the partition of key among n partitions (n > 0).
func (s Scheme) Partition(key []byte, n int32) int32 {
	switch s {
	case FNV1a:
		h := fnv.New32a()
		h.Write(key)
		p := int32(h.Sum32()) % n
		if p < 0 {
			p = -p
		}
		return p
	case CRC32:
		return int32(crc32.ChecksumIEEE(key) % uint32(n))
	default:
		return int32(uint32(Murmur2Hash(key))&0x7fffffff) % n
	}
}

// Murmur2Hash is Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2).
func Murmur2Hash(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[length&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}
