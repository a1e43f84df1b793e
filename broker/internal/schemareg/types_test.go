package schemareg

import "testing"

func TestWireTypes(t *testing.T) {
	tests := []struct {
		typ  SchemaType
		wire int32
		back SchemaType // what the wire number converts back to
	}{
		{TypeNone, 0, TypeNone},
		{TypeString, 1, TypeString},
		{TypeJSON, 2, TypeJSON},
		{TypeProtobuf, 3, TypeProtobuf},
		{TypeAvro, 4, TypeAvro},
		{TypeBoolean, 5, TypeBoolean},
		{TypeInt8, 6, TypeInt8},
		{TypeInt64, 9, TypeInt64},
		{TypeDouble, 11, TypeDouble},
		{TypeTimestamp, 14, TypeTimestamp},
		{TypeKeyValue, 15, TypeKeyValue},
		{TypeInstant, 16, TypeInstant},
		{TypeLocalDateTime, 19, TypeLocalDateTime},
		{TypeProtobufNative, 20, TypeProtobufNative},
		{TypeBytes, 0, TypeNone},
		{TypeAutoConsume, 0, TypeNone},
		{TypeExternal, 0, TypeNone},
	}
	for _, tc := range tests {
		n, err := TypeToWire(tc.typ)
		if err != nil || n != tc.wire {
			t.Errorf("TypeToWire(%s) = %d, %v; want %d", tc.typ, n, err, tc.wire)
		}
		back, err := TypeFromWire(n)
		if err != nil || back != tc.back {
			t.Errorf("TypeFromWire(%d) = %s, %v; want %s", n, back, err, tc.back)
		}
	}
	for _, n := range []int32{-1, 21, 1 << 20} {
		if _, err := TypeFromWire(n); err == nil {
			t.Errorf("TypeFromWire(%d) accepted", n)
		}
	}
	if _, err := TypeToWire("NOPE"); err == nil {
		t.Error("TypeToWire accepted an unknown type")
	}
}

func TestParseType(t *testing.T) {
	tests := []struct {
		in   string
		want SchemaType
		ok   bool
	}{
		{"AVRO", TypeAvro, true},
		{" avro ", TypeAvro, true},
		{"key_value", TypeKeyValue, true},
		{"BYTES", TypeBytes, true},
		{"AUTO_CONSUME", TypeAutoConsume, true},
		{"", "", false},
		{"AVRO2", "", false},
	}
	for _, tc := range tests {
		got, err := ParseType(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseType(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseStrategy(t *testing.T) {
	tests := []struct {
		in   string
		want Strategy
		ok   bool
	}{
		{"FULL", Full, true},
		{"full", Full, true},
		{"BACKWARD_TRANSITIVE", BackwardTransitive, true},
		{"ALWAYS_INCOMPATIBLE", AlwaysIncompatible, true},
		{"UNDEFINED", Undefined, true},
		{"", "", false},
		{"FULLY", "", false},
		{"AutoUpdateDisabled", "", false},
	}
	for _, tc := range tests {
		got, err := ParseStrategy(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseStrategy(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct {
		in, want Strategy
	}{{Undefined, Full}, {"", Full}, {"backward", Backward}} {
		if got, err := tc.in.effective(); err != nil || got != tc.want {
			t.Errorf("effective(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
