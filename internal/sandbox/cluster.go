package sandbox

import "sync/atomic"

// The one exception to "no network": reading a live cluster (export, drift,
// the cluster baseline; CLI features, never the Argo CD sidecar, which has
// no cluster access). Those commands read the cluster first and close the
// network before they read any repository content, so no repository can
// make kyverno-gate connect anywhere. Clients of a cluster ask
// NetworkDenied before they connect and refuse with a clear message
// instead of failing on a denied socket.

var networkDenied atomic.Bool

// NetworkDenied reports whether DenyNetwork has closed the network of this
// process.
func NetworkDenied() bool { return networkDenied.Load() }
