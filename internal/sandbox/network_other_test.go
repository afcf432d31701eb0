//go:build !linux || !(amd64 || arm64)

package sandbox

import (
	"errors"
	"testing"
)

func helperX32()      {}
func helperDiverged() {}

func TestDenyNetworkUnsupported(t *testing.T) {
	if err := DenyNetwork(); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("DenyNetwork() = %v, want errors.ErrUnsupported", err)
	}
}
