package output

import (
	"encoding/json"
	"github.com/kyverno-gate/kyverno-gate/report"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// SARIFFormat writes SARIF 2.1.0 (one run, one result per finding) for
// code scanning: each result points at the file and line that introduced
// the finding (report.Finding.File and Line: the overlay patch that sets the
// field, else the declaring file; 1 when the line is unknown), relative to
// the repository root (uriBaseId %SRCROOT%), with the declaring file as a
// related location when they differ, and carries a stable partial
// fingerprint (no line or patch in it). Approved findings are results of level note with
// an accepted in-source suppression. Overlays that could not be evaluated
// are tool execution notifications.
type SARIFFormat struct{}

func (SARIFFormat) Name() string { return "sarif" }

// SARIFSchema is the $schema the log names.
const SARIFSchema = "https://json.schemastore.org/sarif-2.1.0.json"

// SARIFFingerprintKey is the partialFingerprints key: its value is the
// overlay path and the finding ID ("overlays/production:3f2a9c1b0d4e"),
// the same on every run for the same problem in the same overlay.
const SARIFFingerprintKey = "kyvernoGate/v1"

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	SemanticVer    string      `json:"semanticVersion,omitempty"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string             `json:"id"`
	Name                 string             `json:"name"`
	ShortDescription     sarifText          `json:"shortDescription"`
	FullDescription      sarifText          `json:"fullDescription"`
	Help                 sarifText          `json:"help"`
	DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
	Properties           sarifRuleProps     `json:"properties"`
}

type sarifConfiguration struct {
	Level string `json:"level"`
}

type sarifRuleProps struct {
	Tags []string `json:"tags"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ExitCode                   int                 `json:"exitCode"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level   string    `json:"level"`
	Message sarifText `json:"message"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	RelatedLocations    []sarifLocation   `json:"relatedLocations,omitempty"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Suppressions        []sarifSuppress   `json:"suppressions,omitempty"`
	Properties          map[string]any    `json:"properties"`
}

type sarifLocation struct {
	ID               *int                   `json:"id,omitempty"`
	PhysicalLocation *sarifPhysical         `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogicalLocation `json:"logicalLocations,omitempty"`
	Message          *sarifText             `json:"message,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI       string `json:"uri"`
	URIBaseID string `json:"uriBaseId"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogicalLocation struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName,omitempty"`
	Kind               string `json:"kind"`
}

type sarifSuppress struct {
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	Justification string `json:"justification,omitempty"`
}

var semverRE = regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// ruleInfo describes a rule: gate/kind.
type ruleInfo struct {
	name, short, full string
	level             string
}

var knownRules = map[string]ruleInfo{
	"api-versions": {"UnservedAPIVersion", "The destination cluster does not serve this API version",
		"The rendering contains an object whose API version the destination cluster does not serve (KUBE_API_VERSIONS); Argo CD could not apply it.", "warning"},
	"validate": {"InvalidKyvernoObject", "Kyverno object is not valid",
		"Kyverno's own schemas and validators reject the rendered object (unknown fields, invalid CEL, invalid rules) or report a deprecation; the API server would refuse it or silently drop fields.", "error"},
	"weaken/weaker": {"WeakensEnforcement", "Change weakens enforcement",
		"Compared with the baseline, the change lets through requests that were blocked before (Enforce to Audit, a narrowed match, a new exception, failurePolicy Ignore, a removed rule). It is rejected unless an approval annotation bound to its fingerprint is added.", "error"},
	"weaken/unknown": {"MayWeakenEnforcement", "Change may weaken enforcement",
		"Compared with the baseline, the change could not be decided structurally (an edited pattern, condition or CEL expression), so it counts as weaker. It is rejected unless an approval annotation bound to its fingerprint is added.", "error"},
	"weaken/stale-approval": {"StaleApproval", "Approval matches no current finding",
		"An approval annotation names a fingerprint that no current weakening or floor violation has: the change it approved was reverted, locked or changed since. Remove it.", "warning"},
	"weaken/invalid-approval": {"InvalidApprovalKey", "Annotation is not an approval",
		"An annotation with the approval prefix does not name a fingerprint; it approves nothing.", "warning"},
	"weaken/missing-baseline": {"MissingBaseline", "Environment has no baseline",
		"An environment that .kyverno-gate.yaml declares is generated under Argo CD with nothing to compare with (no lock file, or baseline none), so a weakening would pass unnoticed. Commit a lock file (kyverno-gate lock) or set the baseline parameter.", "warning"},
	"floor/violation": {"FloorViolation", "Environment floor violated",
		"The rendering violates a floor that .kyverno-gate.yaml declares for its environment (e.g. every rule enforces). It is rejected unless an approval annotation bound to its fingerprint is added.", "error"},
	"test/failed": {"KyvernoTestFailed", "Kyverno test fails against the rendered overlay",
		"A kyverno test result does not hold when the suite runs against this overlay's rendered policies (strictly: results kyverno test would pass while the rule does not act are failures too).", "error"},
	"test/suite-error": {"KyvernoTestError", "Kyverno test suite could not run",
		"A kyverno test file, or a file it names, could not be loaded.", "error"},
	"test/no-tests": {"NoKyvernoTests", "No Kyverno test covers the overlay",
		"No kyverno test suite covers a policy of this overlay; add suites, point the tests parameter at them, or set allow-no-tests=true.", "error"},
}

func ruleID(f *report.Finding) string {
	if f.Kind == "" {
		return string(f.Gate)
	}
	return string(f.Gate) + "/" + string(f.Kind)
}

func ruleFor(id string, f *report.Finding) sarifRule {
	info, ok := knownRules[id]
	if !ok {
		info = ruleInfo{name: pascal(id), short: "Finding of the " + string(f.Gate) + " gate", full: "A finding of kyverno-gate's " + string(f.Gate) + " gate.", level: "error"}
	}
	return sarifRule{
		ID: id, Name: info.name,
		ShortDescription:     sarifText{info.short},
		FullDescription:      sarifText{info.full},
		Help:                 sarifText{info.full},
		DefaultConfiguration: sarifConfiguration{Level: info.level},
		Properties:           sarifRuleProps{Tags: []string{"kyverno", "policy", string(f.Gate)}},
	}
}

// pascal turns "gate/kind-x" into "GateKindX".
func pascal(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if r == '/' || r == '-' || r == '_' || r == ' ' {
			up = true
			continue
		}
		if up && r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		up = false
		b.WriteRune(r)
	}
	return b.String()
}

func sarifLevel(s report.Severity) string {
	switch s {
	case report.Warning:
		return "warning"
	case report.Note:
		return "note"
	}
	return "error"
}

// sarifURI percent-encodes a repository-relative path.
func sarifURI(p string) string {
	return (&url.URL{Path: strings.TrimPrefix(p, "./")}).EscapedPath()
}

func (SARIFFormat) Write(w io.Writer, r *report.Report) error {
	run := sarifRun{
		Tool:        sarifTool{Driver: sarifDriver{Name: r.Tool.Name, Version: strings.TrimPrefix(r.Tool.Version, "v"), InformationURI: r.Tool.InformationURI, Rules: []sarifRule{}}},
		Invocations: []sarifInvocation{{ExecutionSuccessful: true, ExitCode: r.ExitCode}},
		Results:     []sarifResult{},
	}
	if semverRE.MatchString(run.Tool.Driver.Version) {
		run.Tool.Driver.SemanticVer = run.Tool.Driver.Version
	}
	if run.Tool.Driver.Name == "" {
		run.Tool.Driver.Name = "kyverno-gate"
	}
	// Rules, sorted by id, so that ruleIndex is stable.
	byID := map[string]sarifRule{}
	for id := range knownRules {
		g, _, _ := strings.Cut(id, "/")
		byID[id] = ruleFor(id, &report.Finding{Gate: report.Gate(g)})
	}
	for i := range r.Overlays {
		for j := range r.Overlays[i].Findings {
			f := &r.Overlays[i].Findings[j]
			id := ruleID(f)
			if _, ok := byID[id]; !ok {
				byID[id] = ruleFor(id, f)
			}
		}
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	index := map[string]int{}
	for i, id := range ids {
		index[id] = i
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, byID[id])
	}
	inv := &run.Invocations[0]
	for i := range r.Overlays {
		o := &r.Overlays[i]
		if o.Verdict == report.Failed {
			inv.ExecutionSuccessful = false
			inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{
				Level: "error", Message: sarifText{o.Label() + " could not be evaluated: " + o.Error}})
		}
		for j := range o.Findings {
			f := &o.Findings[j]
			id := ruleID(f)
			text := o.Label() + ": " + f.Message
			if f.Hint != "" && !f.Approved {
				text += "\n\n" + f.Hint
			}
			res := sarifResult{
				RuleID: id, RuleIndex: index[id], Level: sarifLevel(f.Severity),
				Message:             sarifText{text},
				PartialFingerprints: map[string]string{SARIFFingerprintKey: o.Path + ":" + f.ID},
				Properties:          map[string]any{"gate": f.Gate, "overlay": o.Path, "id": f.ID},
			}
			loc := sarifLocation{}
			if f.File != "" {
				loc.PhysicalLocation = &sarifPhysical{ArtifactLocation: sarifArtifact{URI: sarifURI(f.File), URIBaseID: "%SRCROOT%"},
					Region: &sarifRegion{StartLine: max(f.Line, 1)}}
			} else {
				// No source file (e.g. "no test covers this overlay"): the
				// overlay's folder.
				loc.PhysicalLocation = &sarifPhysical{ArtifactLocation: sarifArtifact{URI: sarifURI(strings.TrimSuffix(o.Path, "/") + "/"), URIBaseID: "%SRCROOT%"}}
			}
			if f.Subject.String() != "" {
				fq := f.Subject.String()
				if f.Rule != "" {
					fq += "/" + f.Rule
				}
				loc.LogicalLocations = []sarifLogicalLocation{{Name: f.Subject.String(), FullyQualifiedName: fq, Kind: "resource"}}
			}
			res.Locations = []sarifLocation{loc}
			if wt := f.Witness; wt != nil && wt.File != "" {
				id := len(res.RelatedLocations) + 1
				res.RelatedLocations = append(res.RelatedLocations, sarifLocation{ID: &id,
					PhysicalLocation: &sarifPhysical{ArtifactLocation: sarifArtifact{URI: sarifURI(wt.File), URIBaseID: "%SRCROOT%"},
						Region: &sarifRegion{StartLine: max(wt.Line, 1)}},
					Message: &sarifText{"witness " + wt.Describe() + ": denied by the baseline, admitted now"}})
			}
			if o := f.Origin; o != nil && o.Via == report.OriginPatch && o.ObjectFile != "" {
				// The result is on the patch; the object it patches is
				// declared elsewhere.
				id := len(res.RelatedLocations) + 1
				res.RelatedLocations = append(res.RelatedLocations, sarifLocation{ID: &id,
					PhysicalLocation: &sarifPhysical{ArtifactLocation: sarifArtifact{URI: sarifURI(o.ObjectFile), URIBaseID: "%SRCROOT%"},
						Region: &sarifRegion{StartLine: max(o.ObjectLine, 1)}},
					Message: &sarifText{f.Subject.String() + " is declared here"}})
			}
			if o := f.Origin; o != nil {
				res.Properties["origin"] = o.Via
			}
			if f.Field != "" {
				res.Properties["field"] = f.Field
			}
			for k, v := range map[string]string{"environment": o.Environment, "kind": string(f.Kind), "object": f.Subject.String(), "rule": f.Rule,
				"resource": f.Resource, "fingerprint": f.Fingerprint} {
				if v != "" {
					res.Properties[k] = v
				}
			}
			if f.Fingerprint != "" {
				res.Properties["approved"] = f.Approved
			}
			if s := f.ApprovalToAdd; s != nil && !f.Approved {
				res.Properties["approvalKey"] = s.Key
			}
			if f.Approved {
				just := "approved"
				if a := f.Approval; a != nil {
					just = "approved by " + a.Key + " (" + approvalDetail(a) + ")"
				}
				res.Suppressions = []sarifSuppress{{Kind: "inSource", Status: "accepted", Justification: just}}
			}
			run.Results = append(run.Results, res)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(sarifLog{Schema: SARIFSchema, Version: "2.1.0", Runs: []sarifRun{run}})
}
