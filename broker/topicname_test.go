package broker

import "testing"

func TestParseTopic(t *testing.T) {
	tests := []struct {
		in, want, base, schemaID string
		partition                int
		wantErr                  bool
	}{
		{in: "t", want: "persistent://public/default/t", base: "persistent://public/default/t", schemaID: "public/default/t", partition: -1},
		{in: "a/b/t", want: "persistent://a/b/t", base: "persistent://a/b/t", schemaID: "a/b/t", partition: -1},
		{in: "non-persistent://a/b/t-partition-3", want: "non-persistent://a/b/t-partition-3", base: "non-persistent://a/b/t", schemaID: "a/b/t", partition: 3},
		{in: "persistent://a/b/t-partition-x", want: "persistent://a/b/t-partition-x", base: "persistent://a/b/t-partition-x", schemaID: "a/b/t-partition-x", partition: -1},
		{in: "persistent://a/b/c/d", want: "persistent://a/b/c/d", base: "persistent://a/b/c/d", schemaID: "a/b/c/d", partition: -1},
		{in: "http://a/b/t", wantErr: true},
		{in: "persistent://a/b", wantErr: true},
		{in: "persistent://a//t", wantErr: true},
		{in: "a/b", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			tn, err := parseTopic(tc.in)
			if tc.wantErr {
				if ErrorCode(err) != "InvalidTopicName" {
					t.Fatalf("err = %v, want InvalidTopicName", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tn.String() != tc.want || tn.Base().String() != tc.base || tn.SchemaID() != tc.schemaID || tn.Partition != tc.partition {
				t.Fatalf("got %s base %s schema id %s partition %d", tn, tn.Base(), tn.SchemaID(), tn.Partition)
			}
		})
	}
}

func TestMurmur3KnownVectors(t *testing.T) {
	tests := []struct {
		in   string
		want uint32
	}{
		{"", 0},
		{"hello", 0x248bfa47},
		{"The quick brown fox jumps over the lazy dog", 0x2e4ff723},
		{"abc", 0xb3dd93fa},
	}
	for _, tc := range tests {
		if got := murmur3([]byte(tc.in)); got != tc.want {
			t.Errorf("murmur3(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}
