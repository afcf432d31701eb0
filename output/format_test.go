package output

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/kyverno-gate/kyverno-gate/report"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var goldenReports = map[string]func() *report.Report{
	"weakening": weakeningReport,
	"clean":     cleanReport,
	"error":     errorReport,
}

// goldenFormats: name → file extension. text is written without colour;
// text-colour with.
var goldenFormats = map[string]string{
	"text":        "txt",
	"text-colour": "colour.txt",
	"json":        "json",
	"markdown":    "md",
	"sarif":       "sarif",
	"junit":       "junit.xml",
	"github":      "github.txt",
}

func formatFor(t *testing.T, name string) Format {
	t.Helper()
	switch name {
	case "text":
		return &TextFormat{Colour: func(io.Writer) bool { return false }}
	case "text-colour":
		return &TextFormat{Colour: func(io.Writer) bool { return true }}
	}
	f, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func write(t *testing.T, f Format, r *report.Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := f.Write(&b, r); err != nil {
		t.Fatalf("%s: %v", f.Name(), err)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	for rname, build := range goldenReports {
		for fname, ext := range goldenFormats {
			t.Run(rname+"/"+fname, func(t *testing.T) {
				got := write(t, formatFor(t, fname), build())
				path := filepath.Join("testdata", "golden", rname+"."+ext)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test ./output -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s (run go test ./output -update and review the diff):\n%s", fname, path, got)
				}
			})
		}
	}
}

func TestLookup(t *testing.T) {
	for _, n := range []string{"text", "json", "markdown", "md", "sarif", "junit", "github", "JSON"} {
		f, err := Lookup(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		want := strings.ToLower(n)
		if want == "md" {
			want = "markdown"
		}
		if f.Name() != want {
			t.Errorf("Lookup(%s).Name() = %s", n, f.Name())
		}
	}
	if _, err := Lookup("yaml"); err == nil || !strings.Contains(err.Error(), "github, json, junit, markdown, sarif, text") {
		t.Errorf("Lookup(yaml) = %v", err)
	}
	tg, err := ParseTarget("sarif=out/results.sarif")
	if err != nil || tg.Format.Name() != "sarif" || tg.File != "out/results.sarif" {
		t.Errorf("ParseTarget = %+v, %v", tg, err)
	}
	if tg, err := ParseTarget("json"); err != nil || tg.File != "" {
		t.Errorf("ParseTarget(json) = %+v, %v", tg, err)
	}
	if _, err := ParseTarget("json="); err == nil {
		t.Error("ParseTarget(json=) accepted")
	}
}

func TestColour(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	var b bytes.Buffer
	if Colour(&b, env(nil)) {
		t.Error("colour on a buffer")
	}
	// A pipe is a file but not a terminal.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if Colour(w, env(nil)) {
		t.Error("colour on a pipe")
	}
	// A character device: /dev/null stands in for a terminal.
	if tty, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !Colour(tty, env(nil)) {
			t.Error("no colour on a character device")
		}
		if Colour(tty, env(map[string]string{"NO_COLOR": "1"})) {
			t.Error("colour despite NO_COLOR")
		}
		if Colour(tty, env(map[string]string{"TERM": "dumb"})) {
			t.Error("colour on TERM=dumb")
		}
	}
	// Without colour the text report has no escape sequences.
	out := write(t, &TextFormat{Colour: func(io.Writer) bool { return false }}, weakeningReport())
	if bytes.Contains(out, []byte("\x1b[")) {
		t.Error("escape sequences without colour")
	}
	// Default decision on a buffer: none.
	out = write(t, &TextFormat{}, weakeningReport())
	if bytes.Contains(out, []byte("\x1b[")) {
		t.Error("escape sequences on a buffer")
	}
}

func TestVerdicts(t *testing.T) {
	for _, c := range []struct {
		r    *report.Report
		want report.Verdict
		code int
	}{{weakeningReport(), report.Rejected, 1}, {cleanReport(), report.Vetted, 0}, {errorReport(), report.Failed, 2}} {
		if c.r.Verdict != c.want || c.r.ExitCode != c.code {
			t.Errorf("verdict %s exit %d, want %s %d", c.r.Verdict, c.r.ExitCode, c.want, c.code)
		}
	}
	if report.Combine() != report.Vetted || report.Combine(report.Rejected, report.Failed, report.Vetted) != report.Failed {
		t.Error("Combine")
	}
	// An approved finding and a warning do not reject.
	r := &report.Report{Overlays: []report.Overlay{{Path: "o", Findings: []report.Finding{{Gate: "weaken", Severity: report.Note, Approved: true, Message: "m"},
		{Gate: "validate", Severity: report.Warning, Message: "w"}}}}}
	r.Finalize()
	if r.Verdict != report.Vetted || r.Overlays[0].Findings[0].ID == "" {
		t.Errorf("%+v", r)
	}
}

func TestJSONSchemaVersion(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(write(t, JSONFormat{}, weakeningReport()), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schemaVersion"] != float64(report.SchemaVersion) || doc["verdict"] != "rejected" || doc["exitCode"] != float64(1) {
		t.Errorf("head: %v %v %v", doc["schemaVersion"], doc["verdict"], doc["exitCode"])
	}
	f := doc["overlays"].([]any)[1].(map[string]any)["findings"].([]any)[0].(map[string]any)
	for _, k := range []string{"gate", "severity", "file", "line", "object", "rule", "resource", "message", "hint", "id", "fingerprint", "approved", "approvalToAdd", "change", "witness"} {
		if _, ok := f[k]; !ok {
			t.Errorf("finding has no %s", k)
		}
	}
	add := f["approvalToAdd"].(map[string]any)
	for _, k := range []string{"key", "value", "object", "patch", "target", "kustomization"} {
		if _, ok := add[k]; !ok {
			t.Errorf("approvalToAdd has no %s", k)
		}
	}
}

// TestGitHubEscaping: data escapes %, CR and LF; properties also : and ,.
func TestGitHubEscaping(t *testing.T) {
	r := &report.Report{Overlays: []report.Overlay{{Path: "o", Findings: []report.Finding{{
		Gate: "validate", Severity: report.Error, File: "a,b:c%.yaml", Line: 3, Subject: report.ParseSubject("ClusterPolicy x,y"),
		Message: "100% bad\r\nsecond: line, here"}}}}}
	r.Finalize()
	got := string(write(t, GitHubFormat{}, r))
	want := "::error file=a%2Cb%3Ac%25.yaml,line=3,title=kyverno-gate validate%3A ClusterPolicy x%2Cy [o]::o: 100%25 bad%0D%0Asecond: line, here\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestMarkdownEscaping: text from the repository cannot break the table
// or inject HTML.
func TestMarkdownEscaping(t *testing.T) {
	out := string(write(t, &MarkdownFormat{}, weakeningReport()))
	if strings.Contains(out, "<b>") {
		t.Error("HTML passed through")
	}
	if !strings.Contains(out, `\| pipes \|`) && !strings.Contains(out, `| pipes |`) {
		t.Error("message missing")
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "| ") {
			cells := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|")
			header := strings.HasPrefix(line, "| Overlay") || strings.HasPrefix(line, "| `overlays")
			if header && cells != 7 {
				t.Errorf("overlay row has %d pipes: %s", cells, line)
			}
		}
	}
	if !strings.HasPrefix(out, MarkdownMarker+"\n") {
		t.Error("no marker")
	}
	// The cap drops findings, not the approvals.
	small := string(write(t, &MarkdownFormat{MaxBytes: 2500}, weakeningReport()))
	if !strings.Contains(small, "more (the comment is capped") || !strings.Contains(small, "approve.kyverno-gate.io/3f2a9c1b0d4e") {
		t.Errorf("capped comment:\n%s", small)
	}
}

func TestJUnitWellFormed(t *testing.T) {
	for name, build := range goldenReports {
		var v junitSuites
		if err := xml.Unmarshal(write(t, JUnitFormat{}, build()), &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n := 0
		for _, s := range v.Suites {
			n += len(s.Cases)
			if s.Tests != len(s.Cases) {
				t.Errorf("%s: suite %s tests=%d, %d cases", name, s.Name, s.Tests, len(s.Cases))
			}
		}
		if v.Tests != n {
			t.Errorf("%s: tests=%d, %d cases", name, v.Tests, n)
		}
	}
	// The failing row and its test finding make one case, not two.
	var v junitSuites
	_ = xml.Unmarshal(write(t, JUnitFormat{}, weakeningReport()), &v)
	prod := v.Suites[1]
	if prod.Failures != 2 || prod.Tests != 5 {
		t.Errorf("production: %d tests, %d failures; want 5, 2", prod.Tests, prod.Failures)
	}
}

// TestJSONSchema validates the JSON of every golden report (and of the
// check command's goldens) against the documented schema (check-report.schema.json), which forbids unknown
// properties so that the schema and the Go model cannot drift apart.
func TestJSONSchema(t *testing.T) {
	raw, err := os.ReadFile("check-report.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema jsonschema.Schema
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	resolved, err := schema.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, build := range goldenReports {
		var doc any
		if err := json.Unmarshal(write(t, JSONFormat{}, build()), &doc); err != nil {
			t.Fatal(err)
		}
		if err := resolved.Validate(doc); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The check command's goldens on the example repository (cmd/kyverno-gate).
	examples, _ := filepath.Glob(filepath.Join("..", "cmd", "kyverno-gate", "testdata", "golden", "check", "*.json"))
	if len(examples) == 0 {
		t.Error("no JSON goldens of the check command found")
	}
	for _, p := range examples {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if err := resolved.Validate(doc); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	var bad any
	_ = json.Unmarshal([]byte(`{"schemaVersion":2,"tool":{"name":"k","version":"1"},"verdict":"ok","exitCode":0,"overlays":[]}`), &bad)
	if resolved.Validate(bad) == nil {
		t.Error("a bad verdict validated")
	}
}

// TestJUnitHostileText: CDATA terminators and control characters in
// messages still give well-formed XML.
func TestJUnitHostileText(t *testing.T) {
	r := &report.Report{Overlays: []report.Overlay{{Path: "o", Findings: []report.Finding{
		{Gate: "validate", Severity: report.Error, Subject: report.ParseSubject("ClusterPolicy \x01x"), Message: "a ]]> b \x00 c <d> & e"},
		{Gate: "validate", Severity: report.Warning, Message: "w ]]> \x1b[31m"},
	}}}}
	r.Finalize()
	var v struct {
		Suites []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Text string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	out := write(t, JUnitFormat{}, r)
	if err := xml.Unmarshal(out, &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := v.Suites[0].Cases[0].Failure.Text; !strings.Contains(got, "a ]]> b \uFFFD c <d> & e") {
		t.Errorf("failure text %q", got)
	}
}
