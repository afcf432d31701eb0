package render

// Building a long kustomization in slices (issue 18).
//
// kustomize's accumulation is quadratic in the number of resources: every
// resMap Append compares the new resource's ID with the ID of every resource
// already accumulated, and an ID is recomputed from the YAML nodes each time
// (CurId: five field lookups). A kustomization listing n files pays n²/2 of
// them while reading the files, again when its result is merged into the
// overlay's accumulator, and again in the legacy sort, which re-appends
// every resource. At 3,535 policies that is ~80% of a 70 s build.
//
// Where the result provably does not depend on which other resources are in
// the same build, we run kustomize itself on slices of the long resources
// list (the same files, the same folders, so the same origins) and put the
// slices' results together: each resource is read, patched, annotated and
// printed by kustomize exactly as in the whole build, and only the final
// order and the duplicate-ID check, which span slices, are redone here
// (order.go's legacy comparator, the ID key of resid.Equals). Anything
// outside the cases below, or any failure of a slice, falls back to one whole
// build, so errors read exactly as kustomize's.
//
// A kustomization on the chain from the rendered folder down to the long
// list (each level's resources: one folder leading down, plus files) may
// only use transformers that act on each resource alone and never change
// its ID: targeted patches that leave kind, apiVersion, name and namespace
// alone, commonAnnotations, commonLabels, labels, buildMetadata, and
// sortOptions at the top. No kustomization anywhere in the tree may declare
// what a parent's accumulator absorbs from it (vars, configurations, crds,
// openapi). And no rendered object may be of a kind kustomize's name
// reference transformer reads references from (it runs once over the whole
// result). Every entry of the long list is otherwise built exactly as
// kustomize builds it, folders included.

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/resid"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/repofs"
)

// ChunkSize is the number of entries of a long resources list built at a
// time; lists of at most 2*ChunkSize entries are built whole. A variable so
// that tests can slice small fixtures. With slices of c entries the
// quadratic part costs n*c instead of n²; the fixed cost of a build (the
// chain's kustomizations read again) is small next to 100 policies.
var ChunkSize = 100

// chunkPlan says how to split one build.
type chunkPlan struct {
	// long is the real path of the kustomization file whose resources are
	// sliced, and n the length of its list.
	long string
	n    int
	// chain are the kustomization files above it (real paths) with the
	// index of the entry that leads down; their other entries are built
	// with the first slice only.
	chain []chainLevel
	// order is the final order: fifo keeps the slices' order, otherwise
	// kustomize's legacy order with these kind lists.
	fifo        bool
	first, last []string
}

type chainLevel struct {
	file  string
	index int
	n     int
}

// idKeeping lists the kustomization fields allowed on the chain: each acts
// on every resource alone and leaves its ID unchanged (patches are checked
// one by one).
var idKeeping = map[string]bool{
	"apiVersion": true, "kind": true, "metadata": true, "resources": true,
	"patches": true, "patchesJson6902": true,
	"commonAnnotations": true, "commonLabels": true, "labels": true,
	"buildMetadata": true, "sortOptions": true,
}

// referrerKinds are the kinds kustomize v0.21.1's default name reference
// configuration (api/internal/konfig/builtinpluginconsts/namereference.go)
// reads references from. That transformer looks across the whole result,
// so no slice may hold one. Checked by kind alone, whatever the group.
var referrerKinds = map[string]bool{
	"APIService": true, "ClusterRole": true, "ClusterRoleBinding": true, "CronJob": true, "DaemonSet": true,
	"Deployment": true, "HorizontalPodAutoscaler": true, "Ingress": true, "Job": true,
	"MutatingWebhookConfiguration": true, "Node": true, "PersistentVolume": true, "PersistentVolumeClaim": true,
	"Pod": true, "PodTemplate": true, "ReplicaSet": true, "ReplicationController": true, "Role": true,
	"RoleBinding": true, "Service": true, "ServiceAccount": true, "StatefulSet": true, "StorageClass": true,
	"ValidatingAdmissionPolicyBinding": true, "ValidatingWebhookConfiguration": true,
}

// planChunks returns how to build dir in slices, or nil to build it whole.
// absorbed says a kustomization of the tree declares something its parent
// absorbs (scanKustomizations finds it).
func planChunks(fs *repofs.Root, dir string, absorbed bool) *chunkPlan {
	if absorbed || ChunkSize <= 0 {
		return nil
	}
	plan := &chunkPlan{}
	cur := dir
	for depth := 0; depth < 16; depth++ {
		name := kustomizationName(fs, cur)
		if name == "" {
			return nil
		}
		file, err := fs.Resolve(filepath.Join(cur, name))
		if err != nil {
			return nil
		}
		data, err := fs.ReadFile(file)
		if err != nil {
			return nil
		}
		var fields map[string]any
		var k types.Kustomization
		if yaml.Unmarshal(data, &fields) != nil || yaml.Unmarshal(data, &k) != nil {
			return nil
		}
		for f := range fields {
			if !idKeeping[f] || (f == "sortOptions" && depth > 0) {
				return nil
			}
		}
		if k.Kind != "" && k.Kind != types.KustomizationKind {
			return nil
		}
		if depth == 0 && k.SortOptions != nil {
			switch k.SortOptions.Order {
			case types.FIFOSortOrder:
				plan.fifo = true
			case types.LegacySortOrder:
				if o := k.SortOptions.LegacySortOptions; o != nil {
					plan.first, plan.last = o.OrderFirst, o.OrderLast
				} else {
					plan.first, plan.last = legacyFirst, legacyLast
				}
			default:
				return nil
			}
		} else if depth == 0 {
			plan.first, plan.last = legacyFirst, legacyLast
		}
		for _, p := range append(append([]types.Patch{}, k.Patches...), k.PatchesJson6902...) {
			if !keepsIDs(fs, cur, p) {
				return nil
			}
		}
		for _, e := range k.Resources {
			if isRemote(e) || isFileURL(e) || filepath.IsAbs(e) {
				return nil
			}
			if _, err := fs.Resolve(filepath.Join(cur, e)); err != nil {
				return nil
			}
		}
		if len(k.Resources) > 2*ChunkSize {
			plan.long, plan.n = file, len(k.Resources)
			return plan
		}
		down := -1
		for i, e := range k.Resources {
			if fs.IsDir(filepath.Join(cur, e)) {
				if down >= 0 {
					return nil // two folders: not a chain
				}
				down = i
			}
		}
		if down < 0 || (plan.fifo && len(k.Resources) > 1) {
			// No long list; or files beside the chain, which the slices
			// would put out of a first-in-first-out order.
			return nil
		}
		plan.chain = append(plan.chain, chainLevel{file: file, index: down, n: len(k.Resources)})
		cur = filepath.Join(cur, k.Resources[down])
	}
	return nil
}

// keepsIDs reports whether a chain patch selects its targets by selector and
// cannot change a target's ID.
func keepsIDs(fs *repofs.Root, dir string, p types.Patch) bool {
	if p.Target == nil || (p.Options != nil && (p.Options.AllowNameChange || p.Options.AllowKindChange)) {
		return false // an untargeted patch must find its one target in every slice
	}
	text := p.Patch
	if p.Path != "" {
		data, err := fs.ReadFile(filepath.Join(dir, p.Path))
		if err != nil {
			return false
		}
		text = string(data)
	}
	n, err := kyaml.Parse(text)
	if err != nil {
		return false
	}
	switch n.YNode().Kind {
	case kyaml.SequenceNode: // JSON 6902 operations
		for _, op := range n.YNode().Content {
			if op.Kind != kyaml.MappingNode {
				return false
			}
			for _, key := range []string{"path", "from"} {
				if v := mapValue(op, key); v != nil && touchesID(v.Value) {
					return false
				}
			}
		}
		return true
	case kyaml.MappingNode:
		// A strategic merge patch keeps the target's kind, name and
		// namespace (Resource.ApplySmPatch) but not its apiVersion: only a
		// target pinned to the patch's own group and version is safe.
		av := n.GetApiVersion()
		if av == "" {
			return true
		}
		g, v := resid.ParseGroupVersion(av)
		return p.Target.Version != "" && p.Target.Group == g && p.Target.Version == v
	}
	return false
}

// touchesID reports whether a JSON pointer reaches a field of the ID.
func touchesID(ptr string) bool {
	parts := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	switch {
	case ptr == "" || ptr == "/":
		return true
	case parts[0] == "kind" || parts[0] == "apiVersion":
		return true
	case parts[0] == "metadata":
		return len(parts) == 1 || parts[1] == "name" || parts[1] == "namespace"
	}
	return false
}

// rewriteFor returns the kustomization rewrite of slice i: the long list
// keeps entries [lo, hi), chain levels keep only the entry leading down but
// in the first slice.
func (p *chunkPlan) rewriteFor(i int) func(real string, data []byte) ([]byte, error) {
	lo, hi := i*ChunkSize, min((i+1)*ChunkSize, p.n)
	return func(real string, data []byte) ([]byte, error) {
		if real == p.long {
			return keepResources(data, lo, hi)
		}
		if i == 0 {
			return data, nil
		}
		for _, c := range p.chain {
			if real == c.file && c.n > 1 {
				return keepResources(data, c.index, c.index+1)
			}
		}
		return data, nil
	}
}

func (p *chunkPlan) slices() int { return (p.n + ChunkSize - 1) / ChunkSize }

// keepResources rewrites a kustomization to list only resources [lo, hi).
func keepResources(data []byte, lo, hi int) ([]byte, error) {
	n, err := kyaml.Parse(string(data))
	if err != nil {
		return nil, err
	}
	seq := n.Field("resources")
	if seq == nil || seq.Value.YNode().Kind != kyaml.SequenceNode || hi > len(seq.Value.YNode().Content) {
		return nil, fmt.Errorf("resources changed while rendering")
	}
	seq.Value.YNode().Content = seq.Value.YNode().Content[lo:hi]
	out, err := n.String()
	return []byte(out), err
}

// joinSlices puts the slices' results together as the whole build would
// have them, or says why it cannot (the caller then builds whole).
func (p *chunkPlan) joinSlices(parts [][]*resource.Resource) ([]*resource.Resource, error) {
	var all []*resource.Resource
	ids := map[[5]string]bool{}
	for _, part := range parts {
		for _, r := range part {
			if referrerKinds[r.GetKind()] {
				return nil, fmt.Errorf("%s may refer to other objects", r.GetKind())
			}
			id := r.CurId()
			key := [5]string{id.Group, id.Version, id.Kind, id.Name, id.EffectiveNamespace()}
			if ids[key] {
				return nil, fmt.Errorf("%s appears twice", id)
			}
			ids[key] = true
			all = append(all, r)
		}
	}
	if p.fifo {
		return all, nil
	}
	keys := make(map[*resource.Resource]legacyKey, len(all))
	for _, r := range all {
		keys[r] = newLegacyKey(r.CurId(), p.first, p.last)
	}
	sort.SliceStable(all, func(i, j int) bool { return keys[all[i]].less(keys[all[j]]) })
	// kustomize sorted each slice itself: the join must keep its order.
	pos := make(map[*resource.Resource]int, len(all))
	for i, r := range all {
		pos[r] = i
	}
	for _, part := range parts {
		for i := 1; i < len(part); i++ {
			if pos[part[i-1]] > pos[part[i]] {
				return nil, fmt.Errorf("order of %s and %s differs from kustomize's", part[i-1].CurId(), part[i].CurId())
			}
		}
	}
	return all, nil
}
