package output

import (
	"encoding/json"
	"io"
)

// JSONFormat writes the CheckReport as one indented JSON document (see
// CheckReport for the schema, versioned by schemaVersion, and
// docs/check-report.md).
type JSONFormat struct{}

func (JSONFormat) Name() string { return "json" }

func (JSONFormat) Write(w io.Writer, r *CheckReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
