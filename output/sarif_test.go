package output

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"
)

// TestSARIFSchema validates the SARIF of every golden report against the
// OASIS SARIF 2.1.0 JSON schema (testdata/sarif-schema-2.1.0.json, as the
// npm package @microsoft/sarif-multitool-linux 5.7.0 ships it), then
// checks what code scanning relies on beyond the schema.
func TestSARIFSchema(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "sarif-schema-2.1.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema jsonschema.Schema
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	resolved, err := schema.Resolve(&jsonschema.ResolveOptions{BaseURI: "https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-schema-2.1.0.json"})
	if err != nil {
		t.Fatal(err)
	}
	for name, build := range goldenReports {
		out := write(t, SARIFFormat{}, build())
		var doc any
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := resolved.Validate(doc); err != nil {
			t.Errorf("%s: not valid SARIF 2.1.0: %v", name, err)
		}
		structural(t, name, out)
	}
	// The check command's goldens on the example repository (cmd/kyverno-gate).
	examples, _ := filepath.Glob(filepath.Join("..", "cmd", "kyverno-gate", "testdata", "golden", "check", "*.sarif"))
	if len(examples) == 0 {
		t.Error("no SARIF goldens of the check command found")
	}
	for _, f := range examples {
		out, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := resolved.Validate(doc); err != nil {
			t.Errorf("%s: not valid SARIF 2.1.0: %v", f, err)
		}
	}
	// The validator does catch mistakes.
	var bad any
	_ = json.Unmarshal([]byte(`{"version":"2.1.0","runs":[{"tool":{"driver":{}},"results":[{"message":{"text":"x"},"level":"fatal"}]}]}`), &bad)
	if resolved.Validate(bad) == nil {
		t.Error("an invalid log validated")
	}
}

// structural checks what GitHub code scanning needs: a location with a
// repository-relative file and a line on every result, rules that exist,
// unique partial fingerprints.
func structural(t *testing.T, name string, out []byte) {
	t.Helper()
	var log sarifLog
	if err := json.Unmarshal(out, &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 {
		t.Fatalf("%s: version %s, %d runs", name, log.Version, len(log.Runs))
	}
	run := log.Runs[0]
	seen := map[string]bool{}
	for i, res := range run.Results {
		if res.RuleIndex >= len(run.Tool.Driver.Rules) || run.Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID {
			t.Errorf("%s: result %d: rule %s at index %d", name, i, res.RuleID, res.RuleIndex)
		}
		if len(res.Locations) != 1 || res.Locations[0].PhysicalLocation == nil {
			t.Errorf("%s: result %d has no physical location", name, i)
			continue
		}
		uri := res.Locations[0].PhysicalLocation.ArtifactLocation.URI
		if uri == "" || strings.HasPrefix(uri, "/") || strings.Contains(uri, "://") {
			t.Errorf("%s: result %d: uri %q is not repository-relative", name, i, uri)
		}
		if reg := res.Locations[0].PhysicalLocation.Region; reg != nil && reg.StartLine < 1 {
			t.Errorf("%s: result %d: line %d", name, i, reg.StartLine)
		}
		fp := res.PartialFingerprints[SARIFFingerprintKey]
		if fp == "" || seen[fp] {
			t.Errorf("%s: result %d: fingerprint %q missing or repeated", name, i, fp)
		}
		seen[fp] = true
	}
}

// TestSARIFFingerprints: the weaken fingerprint when there is one, else a
// hash that does not change between runs.
func TestSARIFFingerprints(t *testing.T) {
	var a, b sarifLog
	_ = json.Unmarshal(write(t, SARIFFormat{}, weakeningReport()), &a)
	_ = json.Unmarshal(write(t, SARIFFormat{}, weakeningReport()), &b)
	got := map[string]bool{}
	for i, r := range a.Runs[0].Results {
		fp := r.PartialFingerprints[SARIFFingerprintKey]
		if fp != b.Runs[0].Results[i].PartialFingerprints[SARIFFingerprintKey] {
			t.Errorf("result %d: unstable fingerprint", i)
		}
		got[fp] = true
	}
	for _, want := range []string{"overlays/production:3f2a9c1b0d4e", "overlays/production:9d8e7f6a5b4c"} {
		if !got[want] {
			t.Errorf("no result with fingerprint %s: %v", want, got)
		}
	}
	// Approved: a note with an accepted suppression.
	for _, r := range a.Runs[0].Results {
		if r.PartialFingerprints[SARIFFingerprintKey] == "overlays/production:9d8e7f6a5b4c" {
			if r.Level != "note" || len(r.Suppressions) != 1 || r.Suppressions[0].Status != "accepted" {
				t.Errorf("approved result: %+v", r)
			}
		}
	}
}

// TestSARIFMultitool runs Microsoft's SARIF validator (schema and SARIF
// rules) over the golden reports when KYVERNO_GATE_SARIF_MULTITOOL names
// its binary, e.g. package/Sarif.Multitool from
// `npm pack @microsoft/sarif-multitool-linux`. Errors fail; warnings and
// notes are style advice.
func TestSARIFMultitool(t *testing.T) {
	tool := os.Getenv("KYVERNO_GATE_SARIF_MULTITOOL")
	if tool == "" {
		t.Skip("KYVERNO_GATE_SARIF_MULTITOOL is not set")
	}
	dir := t.TempDir()
	args := []string{"validate"}
	for name, build := range goldenReports {
		p := filepath.Join(dir, name+".sarif")
		if err := os.WriteFile(p, write(t, SARIFFormat{}, build()), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	args = append(args, "-o", filepath.Join(dir, "validation.sarif"), "--level", "Error")
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil || strings.Contains(string(out), ": error ") {
		t.Fatalf("Sarif.Multitool validate: %v\n%s", err, out)
	}
}
