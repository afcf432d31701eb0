package output

import (
	"encoding/json"
	"github.com/kyverno-gate/kyverno-gate/report"
	"io"
)

// JSONFormat writes the report.Report as one indented JSON document (see
// report.Report for the schema, versioned by schemaVersion, and
// docs/check-report.md).
type JSONFormat struct{}

func (JSONFormat) Name() string { return "json" }

func (JSONFormat) Write(w io.Writer, r *report.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
