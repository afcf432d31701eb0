//go:build !linux

package sandbox

// Resident approximates the resident set by what the Go runtime has mapped
// (GoMapped): there is no /proc here.
func Resident() (uint64, error) { return GoMapped(), nil }
