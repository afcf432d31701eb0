// Package largerepo makes the large policy repository the benchmarks run on
// (issue 7): every policy of a corpus laid out as kyverno/policies is (its
// policies and their `kyverno test` suites), behind a base kustomization and a
// production overlay that patches every policy to Enforce, with a saved
// baseline rendering to compare against, optionally copied N times (renamed)
// to show how each stage scales.
//
// Layout of the generated repository (Options.Dir):
//
//	.kyverno-gate.yaml             environment production, floor validateAction: Enforce
//	policies/c1/...                the corpus, as is (policies, tests, fixtures)
//	policies/c2/... policies/cN/   renamed copies for Scale > 1 (names get "-c<k>")
//	base/kustomization.yaml        every policy file kustomize accepts
//	overlays/production/           patches to Enforce, origin annotations
//	baseline.yaml                  "previous revision" of production: a saved
//	                               rendering in which some policies were Audit
//	                               and some did not exist (all head changes are
//	                               stricter, so no witness search is triggered)
//	summary.json                   what was listed, skipped and why
//
// It does not import Kyverno, so it builds in seconds.
package largerepo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/kio"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/render"
)

// Options says what to generate.
type Options struct {
	Corpus string // a checkout laid out as kyverno/policies
	Dir    string // the repository to create; must not exist or be empty
	// Scale is the number of copies of the corpus (1, 2, 4, ...); 0 means 1.
	Scale int
	// BaselineAuditEvery and BaselineDropEvery say which policies differ in
	// the baseline: every n-th ClusterPolicy is Audit there, every m-th
	// policy is absent. 0 means the defaults, 10 and 25; negative, never.
	BaselineAuditEvery, BaselineDropEvery int
}

// Summary is what Generate made.
type Summary struct {
	Scale int `json:"scale"`
	// Files and Objects count what base/kustomization.yaml lists, over all
	// copies; Kinds counts the listed Kyverno objects by kind.
	Files   int            `json:"files"`
	Objects int            `json:"objects"`
	Kinds   map[string]int `json:"kinds"`
	// Suites counts the test files (kyverno-test.yaml) over all copies.
	Suites int `json:"suites"`
	// Patched counts the policies the production overlay patches to
	// Enforce (spec-level, per kind) and the rules patched one by one
	// (rule-level failureAction, which wins over the spec-level one).
	Patched      int `json:"patched"`
	PatchedRules int `json:"patchedRules"`
	// Baseline changes: policies that were Audit in the baseline, and
	// policies the baseline did not have.
	BaselineAudit   int `json:"baselineAudit"`
	BaselineDropped int `json:"baselineDropped"`
	// Skipped are corpus files that look like policies and are not listed
	// (per corpus file, copy 1 only).
	Skipped []Skip `json:"skipped"`
}

// Skip is a file left out of the base, and why.
type Skip struct {
	File   string `json:"file"`
	Reason string `json:"reason"`
}

// Policy kinds that the generator lists in the base, by API group.
var policyKinds = map[string]map[string]bool{
	"kyverno.io": {"ClusterPolicy": true, "Policy": true, "CleanupPolicy": true, "ClusterCleanupPolicy": true,
		"PolicyException": true},
	"policies.kyverno.io": {"ValidatingPolicy": true, "NamespacedValidatingPolicy": true, "MutatingPolicy": true,
		"NamespacedMutatingPolicy": true, "GeneratingPolicy": true, "NamespacedGeneratingPolicy": true,
		"ImageValidatingPolicy": true, "NamespacedImageValidatingPolicy": true, "DeletingPolicy": true,
		"NamespacedDeletingPolicy": true, "PolicyException": true},
}

func isPolicy(apiVersion, kind string) bool {
	group, _, _ := strings.Cut(apiVersion, "/")
	return policyKinds[group][kind]
}

// Generate makes the repository.
func Generate(o Options) (*Summary, error) {
	if o.Scale <= 0 {
		o.Scale = 1
	}
	if o.BaselineAuditEvery == 0 {
		o.BaselineAuditEvery = 10
	}
	if o.BaselineDropEvery == 0 {
		o.BaselineDropEvery = 25
	}
	corpus, err := filepath.Abs(o.Corpus)
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(corpus); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("corpus %s is not a directory", o.Corpus)
	}
	if entries, err := os.ReadDir(o.Dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s exists and is not empty", o.Dir)
	}
	sum := &Summary{Scale: o.Scale, Kinds: map[string]int{}}

	files, err := corpusFiles(corpus)
	if err != nil {
		return nil, err
	}
	listed, names, skipped, err := selectPolicies(corpus, files)
	if err != nil {
		return nil, err
	}
	sum.Skipped = skipped

	var resources []string
	var objs []object
	for k := 1; k <= o.Scale; k++ {
		copyDir := filepath.Join(o.Dir, "policies", fmt.Sprintf("c%d", k))
		suffix := ""
		if k > 1 {
			suffix = fmt.Sprintf("-c%d", k)
		}
		if err := copyCorpus(corpus, copyDir, files, names, suffix); err != nil {
			return nil, err
		}
		for _, f := range listed {
			resources = append(resources, path.Join("../policies", fmt.Sprintf("c%d", k), f.rel))
			for _, ob := range f.objects {
				ob.name = rename(ob.name, suffix, names)
				objs = append(objs, ob)
			}
		}
		for _, f := range files {
			if path.Base(f) == "kyverno-test.yaml" {
				sum.Suites++
			}
		}
	}
	sum.Files = len(resources)
	sum.Objects = len(objs)
	for _, ob := range objs {
		if isPolicy(ob.apiVersion, ob.kind) {
			sum.Kinds[ob.kind]++
		}
	}

	if err := writeYAML(filepath.Join(o.Dir, "base", "kustomization.yaml"), map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1",
		"kind":       "Kustomization",
		"resources":  resources,
	}); err != nil {
		return nil, err
	}
	patches, patched, rules := productionPatches(objs)
	sum.Patched, sum.PatchedRules = patched, rules
	if err := writeYAML(filepath.Join(o.Dir, "overlays", "production", "kustomization.yaml"), map[string]any{
		"apiVersion":    "kustomize.config.k8s.io/v1beta1",
		"kind":          "Kustomization",
		"resources":     []string{"../../base"},
		"buildMetadata": []string{"originAnnotations"},
		"commonAnnotations": map[string]string{
			"policies.example.com/environment": "production",
		},
		"patches": patches,
	}); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, ".kyverno-gate.yaml"), []byte(repoConfig), 0o644); err != nil {
		return nil, err
	}
	audit, dropped, err := writeBaseline(o)
	if err != nil {
		return nil, err
	}
	sum.BaselineAudit, sum.BaselineDropped = audit, dropped
	data, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return nil, err
	}
	return sum, os.WriteFile(filepath.Join(o.Dir, "summary.json"), append(data, '\n'), 0o644)
}

const repoConfig = `apiVersion: kyverno-gate.io/v1alpha1
kind: Config
environments:
  - name: production
    path: overlays/production
    floors:
      validateAction: Enforce
`

// corpusFiles lists every regular file of the corpus, relative, with
// forward slashes, sorted.
func corpusFiles(corpus string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(corpus, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && e.Name() == ".git" {
			return filepath.SkipDir
		}
		if e.Type().IsRegular() {
			rel, err := filepath.Rel(corpus, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// object is one document of a listed policy file.
type object struct {
	apiVersion, kind, namespace, name string
	// validate rules of a legacy policy that set a rule-level
	// failureAction, by index
	ruleActions []int
	hasValidate bool
}

type policyFile struct {
	rel     string
	objects []object
}

// candidate reports whether a corpus file may be a policy file: YAML, not
// under a hidden folder (tests, chainsaw fixtures), not a kustomization or
// an Artifact Hub descriptor.
func candidate(rel string) bool {
	ext := path.Ext(rel)
	if ext != ".yaml" && ext != ".yml" {
		return false
	}
	for _, part := range strings.Split(rel, "/") {
		if strings.HasPrefix(part, ".") {
			return false
		}
	}
	switch path.Base(rel) {
	case "kustomization.yaml", "kustomization.yml", "Kustomization", "artifacthub-pkg.yml", "artifacthub-pkg.yaml":
		return false
	}
	return true
}

// selectPolicies picks the files the base lists: candidates with at least
// one Kyverno policy document, whose every document is a Kubernetes object
// with an identity no earlier file has (kustomize refuses duplicates), and
// which kustomize builds on its own. It also returns the names of every
// Kyverno policy or exception anywhere in the corpus (to rename in copies).
func selectPolicies(corpus string, files []string) ([]policyFile, map[string]bool, []Skip, error) {
	var (
		listed  []policyFile
		skipped []Skip
		names   = map[string]bool{}
		seen    = map[string]string{} // identity -> file
	)
	for _, rel := range files {
		ext := path.Ext(rel)
		if ext != ".yaml" && ext != ".yml" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(corpus, filepath.FromSlash(rel)))
		if err != nil {
			return nil, nil, nil, err
		}
		nodes, perr := (&kio.ByteReader{Reader: bytes.NewReader(data), OmitReaderAnnotations: true}).Read()
		if perr == nil {
			for _, n := range nodes {
				if isPolicy(n.GetApiVersion(), n.GetKind()) && n.GetName() != "" {
					names[n.GetName()] = true
				}
			}
		}
		if !candidate(rel) {
			continue
		}
		if perr != nil {
			if bytes.Contains(data, []byte("kyverno.io/")) {
				skipped = append(skipped, Skip{rel, "not valid YAML: " + firstLine(perr.Error())})
			}
			continue
		}
		hasPolicy := false
		for _, n := range nodes {
			hasPolicy = hasPolicy || isPolicy(n.GetApiVersion(), n.GetKind())
		}
		if !hasPolicy {
			continue // fixtures, values files, Artifact Hub metadata and the like
		}
		pf := policyFile{rel: rel}
		reason := ""
		ids := map[string]bool{}
		for _, n := range nodes {
			ob := object{apiVersion: n.GetApiVersion(), kind: n.GetKind(), namespace: n.GetNamespace(), name: n.GetName()}
			if ob.apiVersion == "" || ob.kind == "" || ob.name == "" {
				reason = "a document is not a Kubernetes object"
				break
			}
			group, _, _ := strings.Cut(ob.apiVersion, "/")
			id := group + "/" + ob.kind + "/" + ob.namespace + "/" + ob.name
			if prev, dup := seen[id]; dup {
				reason = fmt.Sprintf("%s %s is already declared by %s (kustomize refuses duplicates)", ob.kind, ob.name, prev)
				break
			}
			if ids[id] {
				reason = fmt.Sprintf("%s %s is declared twice in the file", ob.kind, ob.name)
				break
			}
			ids[id] = true
			if group == "kyverno.io" && (ob.kind == "ClusterPolicy" || ob.kind == "Policy") {
				rules, _ := n.Pipe(kyaml.Lookup("spec", "rules"))
				if rules != nil {
					elems, _ := rules.Elements()
					for i, r := range elems {
						v := r.Field("validate")
						if v == nil {
							continue
						}
						ob.hasValidate = true
						if v.Value.Field("failureAction") != nil {
							ob.ruleActions = append(ob.ruleActions, i)
						}
					}
				}
			}
			pf.objects = append(pf.objects, ob)
		}
		if reason == "" {
			if err := buildAlone(data); err != nil {
				reason = "kustomize refuses it: " + firstLine(err.Error())
			}
		}
		if reason != "" {
			skipped = append(skipped, Skip{rel, reason})
			continue
		}
		for id := range ids {
			seen[id] = rel
		}
		listed = append(listed, pf)
	}
	return listed, names, skipped, nil
}

// buildAlone runs kustomize on a kustomization listing only data.
func buildAlone(data []byte) error {
	fs := filesys.MakeFsInMemory()
	if err := fs.WriteFile("/k/policy.yaml", data); err != nil {
		return err
	}
	if err := fs.WriteFile("/k/kustomization.yaml", []byte("resources:\n- policy.yaml\n")); err != nil {
		return err
	}
	opts := krusty.MakeDefaultOptions()
	opts.PluginConfig = types.DisabledPluginConfig()
	_, err := krusty.MakeKustomizer(opts).Run(fs, "/k")
	return err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// rename gives a copy's name to a policy name of the corpus.
func rename(name, suffix string, names map[string]bool) string {
	if suffix == "" || !names[name] {
		return name
	}
	return name + suffix
}

// copyCorpus copies the corpus into dir. For copies (suffix != ""), every
// Kyverno policy and exception is renamed, and so is every reference to one
// (test results, values files, exceptions), so that each copy is the
// corpus again under other names.
func copyCorpus(corpus, dir string, files []string, names map[string]bool, suffix string) error {
	for _, rel := range files {
		src := filepath.Join(corpus, filepath.FromSlash(rel))
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if ext := path.Ext(rel); suffix != "" && (ext == ".yaml" || ext == ".yml") {
			data = renameDocs(data, suffix, names)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// renameDocs renames policies and references to them in a YAML stream;
// a stream that does not parse, or has nothing to rename, is returned as is.
func renameDocs(data []byte, suffix string, names map[string]bool) []byte {
	nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(data), OmitReaderAnnotations: true}).Read()
	if err != nil {
		return data
	}
	changed := false
	set := func(n *kyaml.RNode, fields ...string) {
		f, err := n.Pipe(kyaml.Lookup(fields...))
		if err != nil || f == nil || f.YNode().Kind != kyaml.ScalarNode {
			return
		}
		v := f.YNode().Value
		// Namespaced policies are named "namespace/name" in test results.
		ns, name, ok := strings.Cut(v, "/")
		if !ok {
			ns, name = "", v
		}
		if !names[name] {
			return
		}
		if ns != "" {
			name = ns + "/" + name
		}
		f.YNode().Value = name + suffix
		changed = true
	}
	each := func(n *kyaml.RNode, list string, fields ...string) {
		l, err := n.Pipe(kyaml.Lookup(strings.Split(list, ".")...))
		if err != nil || l == nil {
			return
		}
		elems, err := l.Elements()
		if err != nil {
			return
		}
		for _, e := range elems {
			set(e, fields...)
		}
	}
	for _, n := range nodes {
		group, _, _ := strings.Cut(n.GetApiVersion(), "/")
		switch {
		case isPolicy(n.GetApiVersion(), n.GetKind()):
			set(n, "metadata", "name")
			if n.GetKind() == "PolicyException" && group == "kyverno.io" {
				each(n, "spec.exceptions", "policyName")
			}
			if n.GetKind() == "PolicyException" && group == "policies.kyverno.io" {
				each(n, "spec.policyRefs", "name")
			}
		case group == "cli.kyverno.io" && n.GetKind() == "Test":
			each(n, "results", "policy")
		case group == "cli.kyverno.io" && n.GetKind() == "Values":
			each(n, "policies", "name")
		}
	}
	if !changed {
		return data
	}
	var out bytes.Buffer
	if err := (kio.ByteWriter{Writer: &out}).Write(nodes); err != nil {
		return data
	}
	return out.Bytes()
}

// productionPatches makes the production overlay's patches: every legacy
// policy to Enforce at spec level (one patch per kind), every rule-level
// failureAction to Enforce (one patch per policy that has them: it wins
// over the spec-level action), and every CEL validating policy to Deny.
func productionPatches(objs []object) (patches []map[string]any, policies, rules int) {
	kinds := map[string]bool{}
	var perPolicy []map[string]any
	for _, ob := range objs {
		group, _, _ := strings.Cut(ob.apiVersion, "/")
		switch {
		case group == "kyverno.io" && (ob.kind == "ClusterPolicy" || ob.kind == "Policy"):
			kinds[group+"/"+ob.kind] = true
			policies++
			if len(ob.ruleActions) > 0 {
				var ops []string
				for _, i := range ob.ruleActions {
					ops = append(ops, fmt.Sprintf("- op: replace\n  path: /spec/rules/%d/validate/failureAction\n  value: Enforce\n", i))
					rules++
				}
				target := map[string]any{"group": group, "kind": ob.kind, "name": ob.name}
				if ob.namespace != "" {
					target["namespace"] = ob.namespace
				}
				perPolicy = append(perPolicy, map[string]any{"target": target, "patch": strings.Join(ops, "")})
			}
		case group == "policies.kyverno.io" && (ob.kind == "ValidatingPolicy" || ob.kind == "NamespacedValidatingPolicy" ||
			ob.kind == "ImageValidatingPolicy" || ob.kind == "NamespacedImageValidatingPolicy"):
			kinds[group+"/"+ob.kind] = true
			policies++
		}
	}
	for _, gk := range sortedKeys(kinds) {
		group, kind, _ := strings.Cut(gk, "/")
		patch := "- op: add\n  path: /spec/validationFailureAction\n  value: Enforce\n"
		if group == "policies.kyverno.io" {
			patch = "- op: add\n  path: /spec/validationActions\n  value: [Deny]\n"
		}
		patches = append(patches, map[string]any{"target": map[string]any{"group": group, "kind": kind}, "patch": patch})
	}
	return append(patches, perPolicy...), policies, rules
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func writeYAML(file string, v any) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}

// writeBaseline renders the production overlay and saves it as the
// "previous revision": some ClusterPolicies Audit, some policies absent.
func writeBaseline(o Options) (audit, dropped int, err error) {
	res, err := render.Render(filepath.Join(o.Dir, "overlays", "production"), render.Options{Root: o.Dir})
	if err != nil {
		return 0, 0, fmt.Errorf("rendering the production overlay: %w", err)
	}
	var out bytes.Buffer
	nPolicy, nCluster := 0, 0
	for _, r := range res.Resources {
		doc := r.YAML
		if isPolicy(r.APIVersion, r.Kind) && r.Kind != "PolicyException" {
			nPolicy++
			if o.BaselineDropEvery > 0 && nPolicy%o.BaselineDropEvery == 0 {
				dropped++
				continue
			}
			if r.Kind == "ClusterPolicy" {
				nCluster++
				if o.BaselineAuditEvery > 0 && nCluster%o.BaselineAuditEvery == 0 {
					if doc, err = withAudit(r); err != nil {
						return 0, 0, err
					}
					audit++
				}
			}
		}
		out.WriteString("---\n")
		out.Write(doc)
	}
	return audit, dropped, os.WriteFile(filepath.Join(o.Dir, "baseline.yaml"), out.Bytes(), 0o644)
}

// withAudit returns r's YAML with spec.validationFailureAction Audit.
func withAudit(r *render.Resource) ([]byte, error) {
	n, err := kyaml.Parse(string(r.YAML))
	if err != nil {
		return nil, err
	}
	if err := n.PipeE(kyaml.LookupCreate(kyaml.MappingNode, "spec"), kyaml.SetField("validationFailureAction", kyaml.NewScalarRNode("Audit"))); err != nil {
		return nil, err
	}
	s, err := n.String()
	return []byte(s), err
}

// CopyDir copies a directory tree (regular files only), for benchmarks that
// need a private copy.
func CopyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !e.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// ErrNoCorpus is returned by Cached when the corpus is absent.
var ErrNoCorpus = errors.New("corpus not found (set KYVERNO_GATE_CORPUS or check out ../shared/corpus/kyverno-policies beside the module)")

// version names the generator's output format in cache folder names: bump it
// when Generate changes what it writes.
const version = "1"

// Corpus returns the corpus benchmarks use: $KYVERNO_GATE_CORPUS, else
// ../shared/corpus/kyverno-policies beside the module root.
func Corpus() (string, error) {
	if c := os.Getenv("KYVERNO_GATE_CORPUS"); c != "" {
		return filepath.Abs(c)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			c := filepath.Join(dir, "..", "shared", "corpus", "kyverno-policies")
			if info, err := os.Stat(c); err == nil && info.IsDir() {
				return filepath.Clean(c), nil
			}
			return "", ErrNoCorpus
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoCorpus
		}
		dir = parent
	}
}

// Cached returns a generated repository of the given scale, for benchmarks:
// $KYVERNO_GATE_LARGEREPO/x<scale> when it exists (bench/run.sh makes them
// once per run), else a folder under the system's temporary folder that is
// generated on first use and reused by later runs (its name has the
// generator's version and a hash of the corpus path). It returns
// ErrNoCorpus when there is no corpus to generate from.
func Cached(scale int) (string, error) {
	if d := os.Getenv("KYVERNO_GATE_LARGEREPO"); d != "" {
		p := filepath.Join(d, fmt.Sprintf("x%d", scale))
		if _, err := os.Stat(filepath.Join(p, "summary.json")); err == nil {
			return p, nil
		}
	}
	corpus, err := Corpus()
	if err != nil {
		return "", err
	}
	h := sha256.Sum256([]byte(corpus))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("kyverno-gate-largerepo-v%s-%s", version, hex.EncodeToString(h[:4])), fmt.Sprintf("x%d", scale))
	if _, err := os.Stat(filepath.Join(dir, "summary.json")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".gen-")
	if err != nil {
		return "", err
	}
	if _, err := Generate(Options{Corpus: corpus, Dir: tmp, Scale: scale}); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	// Another process may have won the race; either copy will do.
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(filepath.Join(dir, "summary.json")); serr != nil {
			return "", err
		}
	}
	return dir, nil
}
