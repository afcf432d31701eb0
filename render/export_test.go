package render

// Builds is how many kustomize builds a rendering took (chunk.go).
func Builds(r *Result) int { return r.builds }
