package schema

import (
	"errors"
	"fmt"
	"testing"
)

func TestPermanent(t *testing.T) {
	base := errors.New("course key is empty")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"marked", Permanent(base), true},
		{"marked then wrapped", fmt.Errorf("catalog handler: %w", Permanent(base)), true},
		{"joined with a transient one", errors.Join(errors.New("redis down"), Permanent(base)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.want {
				t.Fatalf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	if Permanent(nil) != nil {
		t.Fatal("Permanent(nil) must stay nil")
	}
	if !errors.Is(Permanent(base), base) {
		t.Fatal("Permanent must keep the cause reachable with errors.Is")
	}
}
