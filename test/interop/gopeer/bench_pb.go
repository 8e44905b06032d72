// Message types of proto/ttrpc/bench.proto (package ttrpc.bench.v1), written
// by hand because no Go protobuf plugin is available offline. gogo's
// proto.Marshal/Unmarshal call the Marshal/Unmarshal methods below, so the wire
// format is exactly proto3's: fields in ascending order, zero values omitted,
// unknown fields skipped.
package main

import (
	"errors"
	"fmt"
	"io"
	"math"
)

var (
	// what protoc-gen-gogo's Unmarshal methods (containerd's API) return
	errTruncated = io.ErrUnexpectedEOF
	errOverflow  = errors.New("proto: integer overflow")
	errWireType  = errors.New("proto: illegal wire type")
)

// ---- encoding --------------------------------------------------------------

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendTag(b []byte, field int, wire int) []byte {
	return appendVarint(b, uint64(field)<<3|uint64(wire))
}

func appendBytesField(b []byte, field int, p []byte) []byte {
	if len(p) == 0 {
		return b
	}
	b = appendTag(b, field, 2)
	b = appendVarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendStringField(b []byte, field int, s string) []byte {
	if len(s) == 0 {
		return b
	}
	b = appendTag(b, field, 2)
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

// int32 and int64 are both sent as the 64-bit two's complement varint.
func appendIntField(b []byte, field int, v int64) []byte {
	if v == 0 {
		return b
	}
	b = appendTag(b, field, 0)
	return appendVarint(b, uint64(v))
}

func bytesFieldLen(field int, n int) int {
	if n == 0 {
		return 0
	}
	return varintLen(uint64(field)<<3) + varintLen(uint64(n)) + n
}

// ---- decoding --------------------------------------------------------------

type decoder struct {
	p   []byte
	off int
}

func (d *decoder) more() bool { return d.off < len(d.p) }

func (d *decoder) varint() (uint64, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, errOverflow
		}
		if d.off >= len(d.p) {
			return 0, errTruncated
		}
		c := d.p[d.off]
		d.off++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
}

func (d *decoder) tag() (field int, wire int, err error) {
	v, err := d.varint()
	if err != nil {
		return 0, 0, err
	}
	if v>>3 == 0 || v>>3 > math.MaxInt32 {
		return 0, 0, fmt.Errorf("proto: illegal tag %d", v>>3)
	}
	return int(v >> 3), int(v & 7), nil
}

func (d *decoder) bytes() ([]byte, error) {
	n, err := d.varint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.p)-d.off) {
		return nil, errTruncated
	}
	p := d.p[d.off : d.off+int(n)]
	d.off += int(n)
	return p, nil
}

// skip discards a field of the given wire type, as gogo does for unknown
// fields and for known fields with an unexpected wire type.
func (d *decoder) skip(wire int) error {
	switch wire {
	case 0:
		_, err := d.varint()
		return err
	case 1:
		if len(d.p)-d.off < 8 {
			return errTruncated
		}
		d.off += 8
	case 2:
		_, err := d.bytes()
		return err
	case 5:
		if len(d.p)-d.off < 4 {
			return errTruncated
		}
		d.off += 4
	default:
		return errWireType
	}
	return nil
}

// fields walks the message and calls fn for each field; fn returns handled
// false to have the field skipped.
func decodeFields(p []byte, fn func(d *decoder, field, wire int) (bool, error)) error {
	d := &decoder{p: p}
	for d.more() {
		field, wire, err := d.tag()
		if err != nil {
			return err
		}
		handled, err := fn(d, field, wire)
		if err != nil {
			return err
		}
		if !handled {
			if err := d.skip(wire); err != nil {
				return err
			}
		}
	}
	return nil
}

// ---- messages --------------------------------------------------------------

type Empty struct{}

func (m *Empty) Reset()                   { *m = Empty{} }
func (m *Empty) String() string           { return "Empty{}" }
func (*Empty) ProtoMessage()              {}
func (m *Empty) Marshal() ([]byte, error) { return []byte{}, nil }
func (m *Empty) Unmarshal(p []byte) error {
	return decodeFields(p, func(*decoder, int, int) (bool, error) { return false, nil })
}

type EchoPayload struct {
	Value []byte
}

func (m *EchoPayload) Reset()         { *m = EchoPayload{} }
func (m *EchoPayload) String() string { return fmt.Sprintf("EchoPayload{%d bytes}", len(m.Value)) }
func (*EchoPayload) ProtoMessage()    {}
func (m *EchoPayload) Marshal() ([]byte, error) {
	b := make([]byte, 0, bytesFieldLen(1, len(m.Value)))
	return appendBytesField(b, 1, m.Value), nil
}
func (m *EchoPayload) Unmarshal(p []byte) error {
	return decodeFields(p, func(d *decoder, field, wire int) (bool, error) {
		if field == 1 && wire == 2 {
			v, err := d.bytes()
			m.Value = append([]byte{}, v...)
			return true, err
		}
		return false, nil
	})
}

type SleepRequest struct {
	Millis int64
}

func (m *SleepRequest) Reset()         { *m = SleepRequest{} }
func (m *SleepRequest) String() string { return fmt.Sprintf("SleepRequest{%d}", m.Millis) }
func (*SleepRequest) ProtoMessage()    {}
func (m *SleepRequest) Marshal() ([]byte, error) {
	return appendIntField(nil, 1, m.Millis), nil
}
func (m *SleepRequest) Unmarshal(p []byte) error {
	return decodeFields(p, func(d *decoder, field, wire int) (bool, error) {
		if field == 1 && wire == 0 {
			v, err := d.varint()
			m.Millis = int64(v)
			return true, err
		}
		return false, nil
	})
}

type FailRequest struct {
	Code    int32
	Message string
}

func (m *FailRequest) Reset()         { *m = FailRequest{} }
func (m *FailRequest) String() string { return fmt.Sprintf("FailRequest{%d %q}", m.Code, m.Message) }
func (*FailRequest) ProtoMessage()    {}
func (m *FailRequest) Marshal() ([]byte, error) {
	b := appendIntField(nil, 1, int64(m.Code))
	return appendStringField(b, 2, m.Message), nil
}
func (m *FailRequest) Unmarshal(p []byte) error {
	return decodeFields(p, func(d *decoder, field, wire int) (bool, error) {
		switch {
		case field == 1 && wire == 0:
			v, err := d.varint()
			m.Code = int32(v)
			return true, err
		case field == 2 && wire == 2:
			v, err := d.bytes()
			m.Message = string(v)
			return true, err
		}
		return false, nil
	})
}

type MetadataEntry struct {
	Key   string
	Value string
}

func (m *MetadataEntry) Reset()         { *m = MetadataEntry{} }
func (m *MetadataEntry) String() string { return fmt.Sprintf("%s=%s", m.Key, m.Value) }
func (*MetadataEntry) ProtoMessage()    {}
func (m *MetadataEntry) Marshal() ([]byte, error) {
	b := appendStringField(nil, 1, m.Key)
	return appendStringField(b, 2, m.Value), nil
}
func (m *MetadataEntry) Unmarshal(p []byte) error {
	return decodeFields(p, func(d *decoder, field, wire int) (bool, error) {
		if wire != 2 || (field != 1 && field != 2) {
			return false, nil
		}
		v, err := d.bytes()
		if field == 1 {
			m.Key = string(v)
		} else {
			m.Value = string(v)
		}
		return true, err
	})
}

type MetadataReply struct {
	Entries     []*MetadataEntry
	TimeoutNano int64
}

func (m *MetadataReply) Reset() { *m = MetadataReply{} }
func (m *MetadataReply) String() string {
	return fmt.Sprintf("MetadataReply{%v %d}", m.Entries, m.TimeoutNano)
}
func (*MetadataReply) ProtoMessage() {}
func (m *MetadataReply) Marshal() ([]byte, error) {
	var b []byte
	for _, e := range m.Entries {
		p, _ := e.Marshal()
		b = appendTag(b, 1, 2)
		b = appendVarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return appendIntField(b, 2, m.TimeoutNano), nil
}
func (m *MetadataReply) Unmarshal(p []byte) error {
	return decodeFields(p, func(d *decoder, field, wire int) (bool, error) {
		switch {
		case field == 1 && wire == 2:
			v, err := d.bytes()
			if err != nil {
				return true, err
			}
			e := &MetadataEntry{}
			if err := e.Unmarshal(v); err != nil {
				return true, err
			}
			m.Entries = append(m.Entries, e)
			return true, nil
		case field == 2 && wire == 0:
			v, err := d.varint()
			m.TimeoutNano = int64(v)
			return true, err
		}
		return false, nil
	})
}

type StreamRequest struct {
	Count int32
	Size  int32
}

func (m *StreamRequest) Reset()         { *m = StreamRequest{} }
func (m *StreamRequest) String() string { return fmt.Sprintf("StreamRequest{%d %d}", m.Count, m.Size) }
func (*StreamRequest) ProtoMessage()    {}
func (m *StreamRequest) Marshal() ([]byte, error) {
	b := appendIntField(nil, 1, int64(m.Count))
	return appendIntField(b, 2, int64(m.Size)), nil
}
func (m *StreamRequest) Unmarshal(p []byte) error {
	return decodeFields(p, func(d *decoder, field, wire int) (bool, error) {
		if wire != 0 || (field != 1 && field != 2) {
			return false, nil
		}
		v, err := d.varint()
		if field == 1 {
			m.Count = int32(v)
		} else {
			m.Size = int32(v)
		}
		return true, err
	})
}
