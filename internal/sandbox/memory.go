package sandbox

import "runtime/metrics"

var goMemorySamples = []metrics.Sample{
	{Name: "/memory/classes/total:bytes"},
	{Name: "/memory/classes/heap/released:bytes"},
}

// GoMapped is the memory the Go runtime has mapped and not returned to the
// OS (runtime/metrics: total minus heap released). It misses memory
// allocated outside the Go heap and counts mapped pages never touched; on
// Linux, Resident reads the kernel's figure instead.
func GoMapped() uint64 {
	s := make([]metrics.Sample, len(goMemorySamples))
	copy(s, goMemorySamples)
	metrics.Read(s)
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}
