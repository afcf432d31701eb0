//go:build !linux || !(amd64 || arm64)

package sandbox

import "runtime"

// DenyNetwork has no implementation on this platform: it returns an error
// wrapping errors.ErrUnsupported.
func DenyNetwork() error {
	return errUnsupported("no seccomp network filter on " + runtime.GOOS + "/" + runtime.GOARCH)
}
