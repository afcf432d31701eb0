// Package report is the one model of what kyverno-gate found. A gate makes
// each Finding once, with everything a report needs (subject, kind, change,
// approval, witness), and appends it to the Overlay it judges; the pipeline
// attributes it to its file and line; every command and every output
// format reads the same Report. It links neither Kyverno nor kustomize, so
// the formats and their tests build in seconds.
//
// The JSON format is this model as is, so the field comments below are the
// schema's documentation (see also docs/check-report.md); SchemaVersion
// changes whenever a field is removed or changes meaning, not when one is
// added.
package report

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SchemaVersion is the version of the JSON report this package writes.
// Version 3: the finding kind of a missing baseline is "missing-baseline"
// (it was "weaker"), and overlays carry their exitCode.
const SchemaVersion = 3

// Verdict is the verdict of a whole check, of one overlay or of a test run.
type Verdict string

const (
	// Vetted: every gate passed (warnings and approved findings allowed).
	Vetted Verdict = "vetted"
	// Rejected: some finding is an unapproved error.
	Rejected Verdict = "rejected"
	// Failed: the overlay could not be evaluated (render failure, timeout,
	// internal error); nothing is known about it.
	Failed Verdict = "error"
)

// ExitCode is the process exit status for the verdict, the same for every
// command: 0 vetted, 1 rejected, 2 could not evaluate.
func (v Verdict) ExitCode() int {
	switch v {
	case Vetted:
		return 0
	case Rejected:
		return 1
	}
	return 2
}

// Headline is the verdict as the text reports print it.
func (v Verdict) Headline() string {
	switch v {
	case Vetted:
		return "vetted"
	case Rejected:
		return "REJECTED"
	}
	return "could not be evaluated"
}

// Combine returns the verdict of several overlays: the worst of them, an
// evaluation error counting worse than a rejection (a run that could not
// look at everything cannot vouch for anything). No overlays is vetted.
func Combine(vs ...Verdict) Verdict {
	out := Vetted
	for _, v := range vs {
		if v.ExitCode() > out.ExitCode() {
			out = v
		}
	}
	return out
}

// Severity of a finding.
type Severity string

const (
	// Error findings reject the rendering.
	Error Severity = "error"
	// Warning findings are reported and do not reject.
	Warning Severity = "warning"
	// Note is an approved weakening or floor violation: reported, not
	// rejecting.
	Note Severity = "note"
)

// Gate names the gate that made a finding.
type Gate string

// The gates, in the order they run.
const (
	GateAPIVersions Gate = "api-versions"
	GateValidate    Gate = "validate"
	GateWeaken      Gate = "weaken"
	GateFloor       Gate = "floor"
	GateTest        Gate = "test"
)

// Gates lists the gates in the order they run, which is the order of
// findings of the same severity.
var Gates = []Gate{GateAPIVersions, GateValidate, GateWeaken, GateFloor, GateTest}

// Kind says what kind of finding of its gate a finding is.
type Kind string

const (
	// KindNone: the gate has one kind of finding (api-versions, validate).
	KindNone Kind = ""
	// weaken: an enforcement change that is (or, unknown, may be) weaker.
	KindWeaker  Kind = "weaker"
	KindUnknown Kind = "unknown"
	// weaken: an approval whose change is gone, an approval key that is
	// not a fingerprint.
	KindStaleApproval   Kind = "stale-approval"
	KindInvalidApproval Kind = "invalid-approval"
	// weaken: an environment under Argo CD with nothing to compare with.
	KindMissingBaseline Kind = "missing-baseline"
	// floor: a floor of .kyverno-gate.yaml is not met.
	KindViolation Kind = "violation"
	// test: a result that failed, a suite that could not run, no suite.
	KindFailed     Kind = "failed"
	KindSuiteError Kind = "suite-error"
	KindNoTests    Kind = "no-tests"
)

// Subject kinds that are not Kubernetes kinds.
const (
	// SubjectTest is a Kyverno test suite (Name: the Test's name).
	SubjectTest = "Test"
	// SubjectTestPolicy is a policy a test result names: the test says
	// its name ("name" or "namespace/name"), not its kind.
	SubjectTestPolicy = "policy"
	// SubjectEnvironment is an environment of .kyverno-gate.yaml.
	SubjectEnvironment = "environment"
)

// Subject is what a finding is about: a rendered object ("ClusterPolicy
// require-labels"; a kind may carry its group, "PolicyException.kyverno.io",
// where the name alone is ambiguous), or one of the Subject* kinds. It is
// written as one string, "Kind name" or "Kind namespace/name".
type Subject struct {
	Kind      string
	Namespace string
	Name      string
}

// String is "Kind name", "Kind namespace/name", or "" for no subject.
func (s Subject) String() string {
	switch {
	case s.Kind == "" && s.Name == "":
		return ""
	case s.Namespace != "":
		return s.Kind + " " + s.Namespace + "/" + s.Name
	}
	return s.Kind + " " + s.Name
}

// BareKind is Kind without its group.
func (s Subject) BareKind() string {
	k, _, _ := strings.Cut(s.Kind, ".")
	return k
}

// Group is the group Kind names, "" when none.
func (s Subject) Group() string {
	_, g, _ := strings.Cut(s.Kind, ".")
	return g
}

// ParseSubject reads what String wrote.
func ParseSubject(s string) Subject {
	kind, rest, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return Subject{Kind: kind}
	}
	rest = strings.TrimSpace(rest)
	if ns, n, ok := strings.Cut(rest, "/"); ok && kind != SubjectTestPolicy {
		return Subject{Kind: kind, Namespace: ns, Name: n}
	}
	return Subject{Kind: kind, Name: rest}
}

func (s Subject) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *Subject) UnmarshalText(b []byte) error {
	*s = ParseSubject(string(b))
	return nil
}

// Report is the whole outcome of a run over one or many overlays.
type Report struct {
	// SchemaVersion is SchemaVersion; consumers should refuse a version
	// they do not know.
	SchemaVersion int  `json:"schemaVersion"`
	Tool          Tool `json:"tool"`
	// Verdict is the combined verdict of the overlays (see Combine), and
	// ExitCode the status the command exits with.
	Verdict  Verdict `json:"verdict"`
	ExitCode int     `json:"exitCode"`
	// Overlays are the results per rendered directory, in the order
	// checked (the repository configuration's environment order when it
	// declares them, weakest first).
	Overlays []Overlay `json:"overlays"`
	// Posture is the matrix of effective actions, nil when not computed.
	Posture *Matrix `json:"posture,omitempty"`
	// Command is the command the report is of, for its headline ("check"
	// when empty; "drift").
	Command string `json:"-"`
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

// Overlay is the outcome for one rendered directory. Gates append their
// findings to it and fill their own sections (Tests, Posture).
type Overlay struct {
	// Path is the rendered directory relative to the repository root, with
	// forward slashes.
	Path string `json:"path"`
	// Environment is the repository configuration's name for Path, "" when
	// it declares none.
	Environment string  `json:"environment,omitempty"`
	Verdict     Verdict `json:"verdict"`
	// ExitCode is the status generate exits with for this overlay alone.
	ExitCode int `json:"exitCode"`
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
	// Migrations are the policies this rendering moves to the
	// policies.kyverno.io kinds compared with the baseline, whatever
	// their verdict (filled by the weaken gate).
	Migrations []Migration `json:"migrations,omitempty"`
	// Posture is this overlay's column of the posture matrix, filled by the
	// weaken gate; nil when it did not run.
	Posture *Column `json:"-"`
	// Timings is how long each gate took (for make bench).
	Timings map[Gate]time.Duration `json:"-"`
}

// Add appends findings.
func (o *Overlay) Add(fs ...Finding) { o.Findings = append(o.Findings, fs...) }

// Name is the environment name, else the path: the column header of the
// overlay.
func (o *Overlay) Name() string {
	if o.Environment != "" {
		return o.Environment
	}
	return o.Path
}

// Label names the overlay for people: "overlays/production (production)".
func (o *Overlay) Label() string {
	if o.Environment != "" && o.Environment != o.Path {
		return o.Path + " (" + o.Environment + ")"
	}
	return o.Path
}

// Changes are the findings of gate g about an enforcement change or floor
// violation (those with a Change), approved or not, in order.
func (o *Overlay) Changes(g Gate) []Finding {
	var out []Finding
	for _, f := range o.Findings {
		if f.Gate == g && f.Change != nil {
			out = append(out, f)
		}
	}
	return out
}

// Problems are the findings that are not approved (errors and warnings),
// in order.
func (o *Overlay) Problems() []Finding {
	var out []Finding
	for _, f := range o.Findings {
		if f.Severity != Note {
			out = append(out, f)
		}
	}
	return out
}

// Rejected reports whether any finding is an error.
func (o *Overlay) Rejected() bool { return o.Count(Error) > 0 }

// Tally counts findings by severity.
type Tally struct{ Errors, Warnings, Approved int }

// Tally counts o's findings.
func (o *Overlay) Tally() Tally {
	return Tally{Errors: o.Count(Error), Warnings: o.Count(Warning), Approved: o.Count(Note)}
}

// Add sums two tallies.
func (t Tally) Add(u Tally) Tally {
	return Tally{Errors: t.Errors + u.Errors, Warnings: t.Warnings + u.Warnings, Approved: t.Approved + u.Approved}
}

// String is the one summary sentence every report prints after a verdict:
// "2 problems (1 warning, 1 approved)", "1 warning", "" for none.
func (t Tally) String() string {
	var rest []string
	if t.Warnings > 0 {
		rest = append(rest, Plural(t.Warnings, "warning"))
	}
	if t.Approved > 0 {
		rest = append(rest, fmt.Sprintf("%d approved", t.Approved))
	}
	switch {
	case t.Errors > 0 && len(rest) > 0:
		return Plural(t.Errors, "problem") + " (" + strings.Join(rest, ", ") + ")"
	case t.Errors > 0:
		return Plural(t.Errors, "problem")
	}
	return strings.Join(rest, ", ")
}

// Plural is "1 word" or "n words".
func Plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// Finding is one problem a gate found (or an approved one, severity
// note), phrased for the person who must fix it.
type Finding struct {
	// Gate is the gate that found it.
	Gate Gate `json:"gate"`
	// Kind says what kind of finding of the gate it is, when the gate has
	// several (see the Kind constants); "" otherwise.
	Kind     Kind     `json:"kind,omitempty"`
	Severity Severity `json:"severity"`
	// File is where the finding was introduced, relative to the
	// repository root ("" when unknown): for a finding about a field of a
	// rendered object, the last kustomize patch of the overlay's chain that
	// sets that field (the kustomization for an inline patch, else the
	// patch file), else the file that declares the object; for a test
	// finding the test file. Line is the 1-based line in File (0 when
	// unknown): what the patch sets, else the field, the rule or the
	// object's metadata.name in the declaring file. Origin says which.
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	// Subject is what the finding is about, written as "Kind name" or
	// "Kind namespace/name" (e.g. "ClusterPolicy require-labels").
	Subject  Subject `json:"object,omitzero"`
	Rule     string  `json:"rule,omitempty"`     // policy rule or validation
	Resource string  `json:"resource,omitempty"` // a resource involved, e.g. a test resource or witness
	// Field is the field of Subject the finding is about, a dotted path
	// with list items in brackets, by name when they have one, else by
	// index ("spec.rules[check-team].validate.failureAction",
	// "metadata.annotations[approve.kyverno-gate.io/3f2a9c1b0d4e]"); ""
	// when the finding is about the whole object. Attribution uses it to
	// find the patch that introduced the finding.
	Field string `json:"field,omitempty"`
	// Origin says how File and Line were chosen and where the object is
	// declared; nil when the finding is not about a rendered object.
	Origin  *Origin `json:"origin,omitempty"`
	Message string  `json:"message"`
	Hint    string  `json:"hint,omitempty"` // what to do next
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
	// Migration is the comparison behind a weaken finding about a policy
	// moved to the policies.kyverno.io kinds (see Migration).
	Migration *Migration `json:"migration,omitempty"`
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

// Migration is a kyverno.io policy (ClusterPolicy, Policy) that the
// baseline renders and the head replaces with policies of the
// policies.kyverno.io kinds, compared rule by rule. Verdict is the worst
// of the rules' and the policy's own: "equivalent", "stricter",
// "weaker" or "unknown" (counted as weaker); a weaker or unknown one is
// also a weaken finding that carries this, and needs its approval.
type Migration struct {
	From    Subject   `json:"from"`
	To      []Subject `json:"to"`
	Verdict string    `json:"verdict"`
	// Reasons are policy-level differences (the webhook's failurePolicy,
	// background processing), each "<verdict>: <what>".
	Reasons []string        `json:"reasons,omitempty"`
	Rules   []MigrationRule `json:"rules"`
	// Fingerprint is the weaken finding's, when there is one.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// MigrationRule is one rule of a migrated policy against its successors.
type MigrationRule struct {
	Rule string `json:"rule"`
	// To are the successors that replace this rule (none: it was dropped).
	To []Subject `json:"to,omitempty"`
	// Action is the rule's effective action before and after, e.g.
	// "Enforce → Deny"; "" when the rule has none (mutate, generate).
	Action  string `json:"action,omitempty"`
	Verdict string `json:"verdict"`
	// Reasons say what differs (or what could not be compared), each
	// "<verdict>: <what>"; none when equivalent.
	Reasons []string `json:"reasons,omitempty"`
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
	// Template, when set, names the Pod declared in File that the search
	// put in the template of this controller (Kind) to make the witness.
	Template string `json:"template,omitempty"`
	// Pattern, when set, says the search made the witness from a baseline
	// rule's pattern ("ClusterPolicy a rule r's pattern, violating
	// metadata.labels.team"); File is "" then.
	Pattern string `json:"pattern,omitempty"`
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

// Describe is ID, with how the search made it when it did.
func (w *Witness) Describe() string {
	id := w.ID()
	if w.Template != "" {
		id += ": the " + w.Template + " in its template"
	}
	if w.Pattern != "" {
		id += ", made from " + w.Pattern
	}
	return id
}

// String is "file (Kind namespace/name)", Describe alone when the search
// made it from a pattern (no file).
func (w *Witness) String() string {
	if w.File == "" {
		return w.Describe()
	}
	return w.File + " (" + w.Describe() + ")"
}

// TestSummary is the Kyverno test outcome of one overlay.
type TestSummary struct {
	TestCounts
	// Cases are the rows, one per expected result, plus one per suite that
	// was skipped or could not run.
	Cases []TestCase `json:"cases,omitempty"`
	// CarriedOver are the suites whose results, written for a policy that
	// was migrated, ran against its successor: "<suite>: ClusterPolicy a →
	// ValidatingPolicy b".
	CarriedOver []string `json:"carriedOver,omitempty"`
}

// TestCounts sums the results of a run: suites, and the results (one per
// expected result and resource, the rows of `kyverno test`'s table) of the
// suites that ran, as kyverno-gate judges them and as `kyverno test` would.
type TestCounts struct {
	Suites  int `json:"suites"`  // suites found (Test documents)
	Skipped int `json:"skipped"` // suites not run: none of their policies is in the overlay
	Errors  int `json:"errors"`  // suites that could not run
	// FailedSuites are the suites that could not run or have a failed result.
	FailedSuites int `json:"failedSuites"`
	Results      int `json:"results"`
	// FailedResults are the results kyverno-gate fails, PassedResults the others.
	FailedResults int `json:"failedResults"`
	PassedResults int `json:"passedResults"`
	// UpstreamPassed and UpstreamFailed count the results as `kyverno test`
	// would (a skip counts as passed), when it would report them at all
	// (see UpstreamStop).
	UpstreamPassed int `json:"upstreamPassed"`
	UpstreamFailed int `json:"upstreamFailed"`
	// Failed is every failure kyverno-gate reports: FailedResults plus
	// Errors.
	Failed int `json:"failed"`
	// UpstreamStop, when set, is where and why `kyverno test` would fail as
	// a whole instead of reporting results, e.g. "before running any suite:
	// it cannot load the test file tests/x/kyverno-test.yaml".
	UpstreamStop string `json:"upstreamStop,omitempty"`
}

// String says what the counts count, for the line after a verdict:
// "9 suites (1 could not run, 2 with failed results); 39 results: 3
// failed, 36 passed; kyverno test would report 38 passed, 1 failed".
func (c TestCounts) String() string {
	var b strings.Builder
	b.WriteString(Plural(c.Suites, "suite"))
	var parts []string
	if c.Skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", c.Skipped))
	}
	if c.Errors > 0 {
		parts = append(parts, fmt.Sprintf("%d could not run", c.Errors))
	}
	if n := c.FailedSuites - c.Errors; n > 0 {
		parts = append(parts, fmt.Sprintf("%d with failed results", n))
	}
	if len(parts) > 0 {
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	fmt.Fprintf(&b, "; %s: %d failed, %d passed", Plural(c.Results, "result"), c.FailedResults, c.PassedResults)
	if c.UpstreamStop != "" {
		b.WriteString("; kyverno test would fail " + c.UpstreamStop)
	} else {
		fmt.Fprintf(&b, "; kyverno test would report %d passed, %d failed", c.UpstreamPassed, c.UpstreamFailed)
	}
	return b.String()
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
	// UpstreamStop, on every case of a suite, says why `kyverno test` would
	// stop at that suite instead of reporting it.
	UpstreamStop string `json:"upstreamStop,omitempty"`
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
	for _, s := range []string{string(f.Gate), file, f.Subject.String(), f.Rule, f.Resource, f.Message} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
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
func (o *Overlay) Count(s Severity) int {
	n := 0
	for _, f := range o.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Finalize completes an overlay: IDs, and the verdict when unset (error
// when Error is set, rejected with an error finding, else vetted) with its
// exit code. Findings keep their order.
func (o *Overlay) Finalize() {
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
			o.Verdict = Failed
		case o.Rejected():
			o.Verdict = Rejected
		default:
			o.Verdict = Vetted
		}
	}
	o.ExitCode = o.Verdict.ExitCode()
}

// Finalize completes a report built by hand or by the pipeline: schema
// version, every overlay (see Overlay.Finalize), the combined verdict and
// the exit code.
func (r *Report) Finalize() {
	r.SchemaVersion = SchemaVersion
	var vs []Verdict
	for i := range r.Overlays {
		o := &r.Overlays[i]
		o.Finalize()
		vs = append(vs, o.Verdict)
	}
	if r.Overlays == nil {
		r.Overlays = []Overlay{}
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

// Sort orders findings errors first, then warnings, then approved, then by
// gate in the order gates run (unknown gates last), then by place; the
// order of a report is the same on every run.
func Sort(fs []Finding) {
	rank := func(g Gate) int {
		for i, x := range Gates {
			if x == g {
				return i
			}
		}
		return len(Gates)
	}
	sev := map[Severity]int{Error: 0, Warning: 1, Note: 2}
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		if a.Severity != b.Severity {
			return sev[a.Severity] < sev[b.Severity]
		}
		if ra, rb := rank(a.Gate), rank(b.Gate); ra != rb {
			return ra < rb
		}
		for _, p := range [][2]string{{string(a.Gate), string(b.Gate)}, {a.File, b.File}, {a.Subject.String(), b.Subject.String()},
			{a.Rule, b.Rule}, {a.Resource, b.Resource}, {a.Message, b.Message}} {
			if p[0] != p[1] {
				return p[0] < p[1]
			}
		}
		return false
	})
}
