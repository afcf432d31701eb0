package output

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"

	"github.com/kyverno-gate/kyverno-gate/gate"
)

// The check report: what `kyverno-gate check` found over one or many
// overlays, in one model that every format (text, json, markdown, sarif,
// junit, github) writes. The JSON format is this model as is, so the field
// comments below are the schema's documentation (see also
// docs/check-report.md); SchemaVersion changes whenever a field is removed
// or changes meaning, not when one is added.

// SchemaVersion is the version of the JSON report this package writes.
const SchemaVersion = 2

// CheckVerdict is the verdict of a whole check or of one overlay.
type CheckVerdict string

const (
	// VerdictVetted: every gate passed (warnings and approved findings allowed).
	VerdictVetted CheckVerdict = "vetted"
	// VerdictRejected: some finding is an unapproved error.
	VerdictRejected CheckVerdict = "rejected"
	// VerdictError: the overlay could not be evaluated (render failure,
	// timeout, internal error); nothing is known about it.
	VerdictError CheckVerdict = "error"
)

// ExitCode is the process exit status for the verdict, as generate uses
// it: 0 vetted, 1 rejected, 2 could not evaluate.
func (v CheckVerdict) ExitCode() int {
	switch v {
	case VerdictVetted:
		return 0
	case VerdictRejected:
		return 1
	}
	return 2
}

// rank orders verdicts from best to worst for Combine.
func (v CheckVerdict) rank() int {
	switch v {
	case VerdictVetted:
		return 0
	case VerdictRejected:
		return 1
	}
	return 2
}

// Combine returns the verdict of several overlays: the worst of them, an
// evaluation error counting worse than a rejection (a run that could not
// look at everything cannot vouch for anything). No overlays is vetted.
func Combine(vs ...CheckVerdict) CheckVerdict {
	out := VerdictVetted
	for _, v := range vs {
		if v.rank() > out.rank() {
			out = v
		}
	}
	return out
}

// Check maps generate's Verdict onto a CheckVerdict.
func (v Verdict) Check() CheckVerdict {
	switch v {
	case Vetted:
		return VerdictVetted
	case Rejected:
		return VerdictRejected
	}
	return VerdictError
}

// Severity of a report finding: gate.Error and gate.Warning, plus Note for
// an approved weakening or floor violation, which does not reject.
type Severity string

const (
	SeverityError   Severity = Severity(gate.Error)
	SeverityWarning Severity = Severity(gate.Warning)
	SeverityNote    Severity = "note"
)

// CheckReport is the whole outcome of a check.
type CheckReport struct {
	// SchemaVersion is SchemaVersion; consumers should refuse a version
	// they do not know.
	SchemaVersion int  `json:"schemaVersion"`
	Tool          Tool `json:"tool"`
	// Verdict is the combined verdict of the overlays (see Combine), and
	// ExitCode the status the command exits with.
	Verdict  CheckVerdict `json:"verdict"`
	ExitCode int          `json:"exitCode"`
	// Overlays are the results per rendered directory, in the order
	// checked (the repository configuration's environment order when it
	// declares them, weakest first).
	Overlays []OverlayResult `json:"overlays"`
	// Posture is the matrix of effective actions, nil when not computed.
	Posture *Matrix `json:"posture,omitempty"`
}

// Tool names the program that wrote the report.
type Tool struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	InformationURI string `json:"informationUri,omitempty"`
}

// DefaultTool is the tool block with version v.
func DefaultTool(v string) Tool {
	return Tool{Name: "kyverno-gate", Version: v, InformationURI: "https://github.com/kyverno-gate/kyverno-gate"}
}

// OverlayResult is the outcome for one rendered directory.
type OverlayResult struct {
	// Path is the rendered directory relative to the repository root, with
	// forward slashes.
	Path string `json:"path"`
	// Environment is the repository configuration's name for Path, "" when
	// it declares none.
	Environment string       `json:"environment,omitempty"`
	Verdict     CheckVerdict `json:"verdict"`
	// Baseline says what the weakening gate compared with, e.g.
	// "git:origin/main" or "lock file overlays/production/kyverno-gate.lock.yaml";
	// "" when there was no baseline.
	Baseline string `json:"baseline,omitempty"`
	// Error says why the overlay could not be evaluated (verdict error).
	Error string `json:"error,omitempty"`
	// Findings, errors first, then by gate in the order gates run; the
	// approved ones have severity note.
	Findings []Finding `json:"findings"`
	// Tests are the Kyverno test results against this rendering, nil when
	// the test gate did not run.
	Tests *TestSummary `json:"tests,omitempty"`
}

// Name is the environment name, else the path: the column header of the
// overlay.
func (o *OverlayResult) Name() string {
	if o.Environment != "" {
		return o.Environment
	}
	return o.Path
}

// Label names the overlay for people: "overlays/production (production)".
func (o *OverlayResult) Label() string {
	if o.Environment != "" && o.Environment != o.Path {
		return o.Path + " (" + o.Environment + ")"
	}
	return o.Path
}

// Finding is one finding of a gate, with what reports need beyond
// gate.Finding.
type Finding struct {
	// Gate is the gate that found it: apiVersions, validate, weaken,
	// floor, test.
	Gate string `json:"gate"`
	// Kind says what kind of finding of the gate it is, when the gate has
	// several: weaken "weaker", "unknown", "stale-approval",
	// "invalid-approval"; floor "violation"; test "failed", "suite-error",
	// "no-tests". "" otherwise.
	Kind     string   `json:"kind,omitempty"`
	Severity Severity `json:"severity"`
	// File is where the finding was introduced, relative to the
	// repository root ("" when unknown): for a finding about a field of a
	// rendered object, the last kustomize patch of the overlay's chain that
	// sets that field (the kustomization for an inline patch, else the
	// patch file), else the file that declares the object; for a test
	// finding the test file. Line is the 1-based line in File (0 when
	// unknown): what the patch sets, else the field, the rule or the
	// object's metadata.name in the declaring file. Origin says which.
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Object   string `json:"object,omitempty"`   // e.g. "ClusterPolicy require-labels"
	Rule     string `json:"rule,omitempty"`     // policy rule or validation
	Resource string `json:"resource,omitempty"` // a resource involved, e.g. a test resource or witness
	// Field is the field of Object the finding is about, a dotted path
	// with list items in brackets, by name when they have one
	// ("spec.rules[check-team].validate.failureAction"); "" when the
	// finding is about the whole object.
	Field string `json:"field,omitempty"`
	// Origin says how File and Line were chosen and where the object is
	// declared; nil when the finding is not about a rendered object.
	Origin  *Origin `json:"origin,omitempty"`
	Message string  `json:"message"`
	Hint    string  `json:"hint,omitempty"`
	// ID is stable across runs for the same problem: the Fingerprint when
	// there is one, else a hash of gate, the declaring file (see
	// FindingID), object, rule, resource and message; never a line.
	ID string `json:"id"`
	// Fingerprint binds approvals (weaken and floor findings only): the
	// annotation approve.kyverno-gate.io/<fingerprint> approves exactly
	// this finding.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Approved is true when a valid approval covers the finding (severity
	// note).
	Approved bool `json:"approved"`
	// Approval is the approval annotation found for the finding: the valid
	// one, or the expired or invalid one that did not count.
	Approval *Approval `json:"approval,omitempty"`
	// ApprovalToAdd says how to approve an unapproved finding.
	ApprovalToAdd *ApprovalSuggestion `json:"approvalToAdd,omitempty"`
	// Change is the enforcement change behind a weaken or floor finding.
	Change *Change `json:"change,omitempty"`
	// Witness is a resource the baseline denied and the head admits.
	Witness *Witness `json:"witness,omitempty"`
}

// Origin values of Via.
const (
	// OriginPatch: a kustomize patch sets the finding's field; File and
	// Line are the patch's.
	OriginPatch = "patch"
	// OriginObject: no patch of the chain sets the field (or the finding
	// is about the whole object); File declares the object.
	OriginObject = "object"
)

// Origin is where a finding about a rendered object comes from.
type Origin struct {
	// Via is OriginPatch or OriginObject.
	Via string `json:"via"`
	// ObjectFile is the file that declares the object (kustomize's origin
	// annotation), relative to the root; ObjectLine the line of its
	// metadata.name there (0 when unknown).
	ObjectFile string `json:"objectFile,omitempty"`
	ObjectLine int    `json:"objectLine,omitempty"`
	// Patch is the patch that sets the field, when Via is OriginPatch.
	Patch *PatchRef `json:"patch,omitempty"`
}

// PatchRef names a kustomize patch and what of it touches the field.
type PatchRef struct {
	// Kustomization is the kustomization (or component) listing the patch;
	// List the list it is in (patches, patchesStrategicMerge,
	// patchesJson6902) and Entry its 0-based position there.
	Kustomization string `json:"kustomization"`
	List          string `json:"list"`
	Entry         int    `json:"entry"`
	// Type is "json6902" or "strategicMerge".
	Type string `json:"type"`
	// Op and Path: the operation (a JSON patch op; merge, replace or delete
	// for a strategic merge patch) and the JSON pointer it sets.
	Op   string `json:"op"`
	Path string `json:"path"`
}

// Approval is an approval annotation present on a rendered object.
type Approval struct {
	Key string `json:"key"`
	// Status is "valid", "expired" or "invalid".
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Ticket  string `json:"ticket,omitempty"`
	By      string `json:"by,omitempty"`
	Expires string `json:"expires,omitempty"` // YYYY-MM-DD, last day it counts
	Object  string `json:"object,omitempty"`  // the object carrying it
	File    string `json:"file,omitempty"`
	Error   string `json:"error,omitempty"` // why it is invalid
}

// ApprovalSuggestion is the annotation that would approve a finding and
// where to put it.
type ApprovalSuggestion struct {
	Key   string `json:"key"`
	Value string `json:"value"` // placeholders to fill in or drop
	// Object is the object to annotate, e.g. "ClusterPolicy
	// require-labels"; Target the same as a reference; both empty when the
	// overlay renders no Kyverno object (use commonAnnotations).
	Object string     `json:"object,omitempty"`
	Target *ObjectRef `json:"target,omitempty"`
	// Kustomization is the overlay's kustomization file, relative to the
	// root, "" when the rendered folder has none.
	Kustomization string `json:"kustomization,omitempty"`
	// AnyObject is true when the finding's own object is gone: any Kyverno
	// object of the overlay may carry the annotation.
	AnyObject bool `json:"anyObject,omitempty"`
	// Patch is an entry for the kustomization's patches: list.
	Patch string `json:"patch,omitempty"`
}

// ObjectRef names a Kubernetes object.
type ObjectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// Change is an enforcement change (weaken) or floor violation (floor).
type Change struct {
	// Class is "weaker" or "unknown" (counted as weaker); floor
	// violations are "weaker".
	Class  string `json:"class"`
	Kind   string `json:"kind"`
	Policy string `json:"policy"`
	Rule   string `json:"rule,omitempty"`
	Field  string `json:"field,omitempty"`
	// Before and After are the effective values; for a floor violation
	// the actual and the required value.
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// Witness is a resource that proves a weakening: the baseline denies it,
// the head admits it.
type Witness struct {
	File       string `json:"file"`
	Line       int    `json:"line,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// PolicyKind, Policy and Rule denied it in the baseline, with Message.
	PolicyKind string `json:"policyKind,omitempty"`
	Policy     string `json:"policy,omitempty"`
	Rule       string `json:"rule,omitempty"`
	Message    string `json:"message,omitempty"`
	// Exclusive is true when the witness proves this finding on its own.
	Exclusive bool `json:"exclusive"`
}

// ID names the witness like kubectl: "Pod apps/pod-no-team".
func (w *Witness) ID() string {
	if w.Namespace != "" {
		return w.Kind + " " + w.Namespace + "/" + w.Name
	}
	return w.Kind + " " + w.Name
}

// TestSummary is the Kyverno test outcome of one overlay.
type TestSummary struct {
	// Counts as `kyverno test` reports them, and Failed as kyverno-gate
	// judges them (failed rows and suites that could not run).
	Suites         int `json:"suites"`
	Skipped        int `json:"skipped"`
	Errors         int `json:"errors"`
	Results        int `json:"results"`
	UpstreamPassed int `json:"upstreamPassed"`
	UpstreamFailed int `json:"upstreamFailed"`
	Failed         int `json:"failed"`
	// Cases are the rows, one per expected result, plus one per suite that
	// was skipped or could not run.
	Cases []TestCase `json:"cases,omitempty"`
}

// TestCase is one row of a Kyverno test (or a whole suite that did not run).
type TestCase struct {
	// Suite is the test file relative to the root, SuiteName its name.
	Suite     string `json:"suite"`
	SuiteName string `json:"suiteName,omitempty"`
	Policy    string `json:"policy,omitempty"`
	Rule      string `json:"rule,omitempty"`
	Resource  string `json:"resource,omitempty"`
	Expected  string `json:"expected,omitempty"`
	Got       string `json:"got,omitempty"`
	// Status is kyverno-gate's judgement: "pass", "fail", "skip" (suite
	// skipped: none of its policies is in the overlay) or "error" (suite
	// could not run).
	Status string `json:"status"`
	// Upstream is how `kyverno test` judges the row.
	Upstream string `json:"upstream,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
	// Strict says why a row upstream passes fails here.
	Strict string `json:"strict,omitempty"`
}

// Name names the case: "policy/rule resource".
func (c *TestCase) Name() string {
	var parts []string
	pr := c.Policy
	if c.Rule != "" {
		pr += "/" + c.Rule
	}
	if pr != "" {
		parts = append(parts, pr)
	}
	if c.Resource != "" {
		parts = append(parts, c.Resource)
	}
	if len(parts) == 0 {
		return c.SuiteName
	}
	return strings.Join(parts, " ")
}

// FromGate converts gate findings; the ID is filled in, everything else
// optional stays empty.
func FromGate(fs []gate.Finding) []Finding {
	out := make([]Finding, 0, len(fs))
	for _, f := range fs {
		rf := Finding{Gate: f.Gate, Severity: Severity(f.Severity), File: f.File, Object: f.Object, Rule: f.Rule,
			Resource: f.Resource, Field: f.Field, Message: f.Message, Hint: f.Hint}
		rf.Kind = guessKind(f)
		rf.ID = FindingID(rf)
		out = append(out, rf)
	}
	return out
}

// guessKind names the kind of a finding from its gate and message, for
// gates that do not say.
func guessKind(f gate.Finding) string {
	switch f.Gate {
	case "weaken":
		switch {
		case strings.HasPrefix(f.Message, "stale approval"):
			return "stale-approval"
		case strings.HasPrefix(f.Message, "annotation ") && strings.Contains(f.Message, "is not an approval"):
			return "invalid-approval"
		case strings.HasPrefix(f.Message, "may weaken"):
			return "unknown"
		}
		return "weaker"
	case "floor":
		return "violation"
	case "test":
		switch {
		case f.File == "":
			return "no-tests"
		case strings.HasPrefix(f.Message, "could not run"):
			return "suite-error"
		}
		return "failed"
	}
	return ""
}

// FindingID returns f's stable id: its fingerprint, else the first 12 hex
// digits of a SHA-256 over gate, file, object, rule, resource and message,
// where file is the file that declares the object when Origin knows it
// (so that the id does not move with the patch a finding is attributed
// to), else File.
func FindingID(f Finding) string {
	if f.Fingerprint != "" {
		return f.Fingerprint
	}
	file := f.File
	if f.Origin != nil && f.Origin.ObjectFile != "" {
		file = f.Origin.ObjectFile
	}
	h := sha256.New()
	for _, s := range []string{f.Gate, file, f.Object, f.Rule, f.Resource, f.Message} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// GateFinding returns f as a gate.Finding (severity note becomes warning).
func (f *Finding) GateFinding() gate.Finding {
	s := gate.Severity(f.Severity)
	if f.Severity == SeverityNote {
		s = gate.Warning
	}
	return gate.Finding{Gate: f.Gate, Severity: s, File: f.File, Object: f.Object, Rule: f.Rule, Resource: f.Resource, Field: f.Field,
		Message: f.Message, Hint: f.Hint}
}

// Place is "file:line" (or "file", or "").
func (f *Finding) Place() string {
	if f.File == "" {
		return ""
	}
	if f.Line > 0 {
		return f.File + ":" + strconv.Itoa(f.Line)
	}
	return f.File
}

// Count returns the number of findings of severity s.
func (o *OverlayResult) Count(s Severity) int {
	n := 0
	for _, f := range o.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Finalize completes a report built by hand or by the collect package:
// schema version, IDs, per-overlay verdicts when unset (error when Error
// is set, rejected with an error finding, else vetted), the combined
// verdict and the exit code. Findings keep their order.
func (r *CheckReport) Finalize() {
	r.SchemaVersion = SchemaVersion
	var vs []CheckVerdict
	for i := range r.Overlays {
		o := &r.Overlays[i]
		if o.Findings == nil {
			o.Findings = []Finding{}
		}
		for j := range o.Findings {
			if o.Findings[j].ID == "" {
				o.Findings[j].ID = FindingID(o.Findings[j])
			}
		}
		if o.Verdict == "" {
			switch {
			case o.Error != "":
				o.Verdict = VerdictError
			case o.Count(SeverityError) > 0:
				o.Verdict = VerdictRejected
			default:
				o.Verdict = VerdictVetted
			}
		}
		vs = append(vs, o.Verdict)
	}
	if r.Overlays == nil {
		r.Overlays = []OverlayResult{}
	}
	r.Verdict = Combine(vs...)
	r.ExitCode = r.Verdict.ExitCode()
}

// PolicyRule names a row of the posture matrix.
type PolicyRule struct {
	Kind   string `json:"kind"`   // e.g. "ClusterPolicy", "ValidatingPolicy"
	Policy string `json:"policy"` // "name" or "namespace/name"
	// Rule is the rule name; "" for CEL policies, whose actions apply to
	// the whole policy.
	Rule string `json:"rule,omitempty"`
}

// String is "ClusterPolicy require-labels/check-team".
func (p PolicyRule) String() string {
	s := p.Kind + " " + p.Policy
	if p.Rule != "" {
		s += "/" + p.Rule
	}
	return s
}

// ChangeMark marks a posture cell's change against the baseline.
type ChangeMark string

const (
	// MarkNone: same action and no enforcement change of the rule.
	MarkNone ChangeMark = "none"
	// MarkWeaker: less is blocked than in the baseline (the action, or an
	// enforcement change of the rule such as a narrowed match).
	MarkWeaker ChangeMark = "weaker"
	// MarkStricter: more is blocked.
	MarkStricter ChangeMark = "stricter"
	// MarkUnknown: changed in a way that could not be decided; counts as
	// weaker.
	MarkUnknown ChangeMark = "unknown"
	// MarkChanged: the action text changed but not what is blocked (e.g.
	// Audit to Warn).
	MarkChanged ChangeMark = "changed"
	// MarkNew: the rule is not in the baseline.
	MarkNew ChangeMark = "new"
	// MarkRemoved: the rule is in the baseline only (Action "absent").
	MarkRemoved ChangeMark = "removed"
)

// ActionAbsent is the action of a rule the environment does not render.
const ActionAbsent = "absent"

// Cell is one environment's posture for one rule.
type Cell struct {
	// Action is the effective action: "Enforce" or "Audit" (with
	// overrides: "Enforce in namespaces [x], otherwise Audit"), for CEL
	// policies the validationActions joined by "+" ("Deny", "Warn+Audit"),
	// "Off" when admission processing is off, ActionAbsent when the
	// environment does not render the rule.
	Action string `json:"action"`
	// Baseline is the baseline's action when it differs from Action.
	Baseline string `json:"baseline,omitempty"`
	// Change is the mark against the baseline, "" when the environment
	// had no baseline.
	Change ChangeMark `json:"change,omitempty"`
	// Fingerprints are those of the enforcement changes of the rule (or
	// of its whole policy) against the baseline.
	Fingerprints []string `json:"fingerprints,omitempty"`
}

// Column is one environment's cells, for NewMatrix.
type Column struct {
	Environment string
	Cells       map[PolicyRule]Cell
}

// Matrix is the posture matrix: rules down, environments across.
type Matrix struct {
	Environments []string    `json:"environments"`
	Rows         []MatrixRow `json:"rows"`
}

// MatrixRow is one rule across the environments.
type MatrixRow struct {
	PolicyRule
	// Cells has one entry per environment, in the order of Environments.
	Cells []Cell `json:"cells"`
}

// NewMatrix builds the matrix of cols, in their order; a rule missing
// from a column is absent there (with no change mark).
func NewMatrix(cols ...Column) *Matrix {
	m := &Matrix{Environments: []string{}, Rows: []MatrixRow{}}
	keys := map[PolicyRule]bool{}
	for _, c := range cols {
		m.Environments = append(m.Environments, c.Environment)
		for k := range c.Cells {
			keys[k] = true
		}
	}
	var rows []PolicyRule
	for k := range keys {
		rows = append(rows, k)
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Policy != b.Policy {
			return a.Policy < b.Policy
		}
		return a.Rule < b.Rule
	})
	for _, k := range rows {
		row := MatrixRow{PolicyRule: k}
		for _, c := range cols {
			cell, ok := c.Cells[k]
			if !ok {
				cell = Cell{Action: ActionAbsent}
			}
			row.Cells = append(row.Cells, cell)
		}
		m.Rows = append(m.Rows, row)
	}
	return m
}

// Changed reports whether any cell of the row changed against its baseline.
func (r *MatrixRow) Changed() bool {
	for _, c := range r.Cells {
		if c.Change != "" && c.Change != MarkNone {
			return true
		}
	}
	return false
}
