package diff

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kyverno-gate/kyverno-gate/baseline"
	"github.com/kyverno-gate/kyverno-gate/internal/fuzzseed"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
)

// Fuzz targets of the diff engine: approval annotations (repository bytes)
// and the diff itself on repository policies; those of the set logic it
// decides with are package scope's. See docs/fuzzing.md.

// ---- approvals

var approvalLineRE = regexp.MustCompile(`approve\.kyverno-gate\.io/(\S+):\s*"([^"]*)"`)

// FuzzApproval checks ParseApproval and CollectApprovals on an annotation
// key suffix and value: no panic, the same answer twice, an accepted value
// holds no placeholder or ";" and reads back from its own rendering
// (describe), an expiry date is kept and ends the approval the day after,
// and every approval key lands in exactly one place.
func FuzzApproval(f *testing.F) {
	for _, s := range [][2]string{
		{"3ee624205261", "reason=migration window; ticket=SEC-42; expires=2026-12-31"},
		{"163d6ff11364", "reason=registries stay at Audit; ticket=PLAT-1234; by=security-team"},
		{"3ee624205261", ""},
		{"3ee624205261", SuggestedValue},
		{"3ee624205261", "reason=a; reason=b"},
		{"3ee624205261", " expires = 2026-02-30 "},
		{"3EE624205261", "ticket=x=y;;by=me"},
		{"<fingerprint>", "why"},
	} {
		f.Add(s[0], s[1])
	}
	for _, file := range fuzzseed.Files(f, fuzzseed.YAML) {
		for _, m := range approvalLineRE.FindAllStringSubmatch(string(file.Data), -1) {
			f.Add(m[1], m[2])
		}
	}
	f.Fuzz(func(t *testing.T, suffix, value string) {
		a, err := ParseApproval(value)
		a2, err2 := ParseApproval(value)
		if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(a, a2) {
			t.Fatalf("not deterministic: %+v %v / %+v %v", a, err, a2, err2)
		}
		if err == nil {
			for _, v := range []string{a.Reason, a.Ticket, a.By} {
				if strings.Contains(v, ";") || strings.TrimSpace(v) != v || placeholderRE.MatchString(v) {
					t.Fatalf("accepted value %q", v)
				}
			}
			back, err := ParseApproval(a.describe())
			if err != nil || !reflect.DeepEqual(back, a) {
				t.Fatalf("%q: parsed %+v, its rendering %q reads back as %+v, %v", value, a, a.describe(), back, err)
			}
			if hasKey(value, "expires") {
				if a.Expires.IsZero() {
					t.Fatalf("%q: accepted with an expiry, but Expires is zero (never expires)", value)
				}
				last := a.Expires.Add(24*time.Hour - time.Nanosecond)
				if a.Expired(last) || !a.Expired(last.Add(time.Nanosecond)) || !a.Valid(a.Expires) {
					t.Fatalf("%q: expiry %v not honoured", value, a.Expires)
				}
			} else if !a.Expires.IsZero() || a.Expired(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) {
				t.Fatalf("%q: no expiry given, but Expires = %v", value, a.Expires)
			}
		}

		key := ApprovalPrefix + suffix
		res := &render.Resource{APIVersion: "kyverno.io/v1", Kind: "ClusterPolicy", Name: "p", Source: "p.yaml",
			Object: map[string]any{"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
				"metadata": map[string]any{"name": "p", "annotations": map[string]any{key: value, "other": value}}}}
		got := CollectApprovals([]*render.Resource{res})
		n := len(got.BadKeys)
		for fp, as := range got.ByFingerprint {
			n += len(as)
			for _, x := range as {
				if x.Fingerprint != fp || !fingerprintRE.MatchString(fp) || x.Key() != key {
					t.Fatalf("approval %+v filed under %q", x, fp)
				}
				if fmt.Sprint(x.Err) != fmt.Sprint(err) {
					t.Fatalf("collected error %v, ParseApproval says %v", x.Err, err)
				}
			}
		}
		if n != 1 {
			t.Fatalf("key %q: %d approvals collected, want 1: %+v", key, n, got)
		}
		if len(got.BadKeys) == 1 && (got.BadKeys[0].Err == nil || fingerprintRE.MatchString(suffix)) {
			t.Fatalf("key %q: bad key %+v", key, got.BadKeys[0])
		}
	})
}

// hasKey reports whether the approval value has a pair with key k.
func hasKey(value, k string) bool {
	for _, pair := range strings.Split(value, ";") {
		if key, _, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && strings.TrimSpace(key) == k {
			return true
		}
	}
	return false
}

// ---- the diff on repository policies

// renderedFuzz reads a YAML stream as a lock file is read, then makes each
// object what render makes of it: decoded from its printed YAML. nil when
// it is not a stream of objects.
func renderedFuzz(data []byte) []*render.Resource {
	res, err := baseline.Parse(data, "fuzz.yaml")
	if err != nil {
		return nil
	}
	out := make([]*render.Resource, 0, len(res.Resources))
	for _, r := range res.Resources {
		one, err := baseline.Parse(r.YAML, "fuzz.yaml")
		if err != nil || len(one.Resources) != 1 {
			return nil
		}
		p := one.Resources[0]
		p.YAML = r.YAML
		out = append(out, p)
	}
	return out
}

func loadFuzz(t *testing.T, resources []*render.Resource) []*kyverno.Object {
	if resources == nil {
		return nil
	}
	objs, err := kyverno.Load(resources)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func checkChanges(t *testing.T, cs []Change) {
	t.Helper()
	for _, c := range cs {
		switch c.Class {
		case Weaker, Stricter, Unknown:
		default:
			t.Fatalf("change of class %q: %v", c.Class, c)
		}
		if c.Fingerprint != Fingerprint(c.Kind, c.Policy, c.Rule, c.Field, c.Before, c.After) || !fingerprintRE.MatchString(c.Fingerprint) {
			t.Fatalf("bad fingerprint: %v", c)
		}
	}
}

// FuzzDiffSelf feeds the diff a rendering (a YAML stream, each object
// decoded from its printed YAML as render does) seeded with the example
// repository's and the corpus's policies: a rendering compared with itself,
// with a second load of the same bytes and with its own lock file
// (LockHeader + Stream, read back by baseline.Parse) has no change, and
// adding or removing it all gives the same changes every time.
func FuzzDiffSelf(f *testing.F) {
	for _, file := range fuzzseed.Files(f, fuzzseed.YAML) {
		f.Add(file.Data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		resources := renderedFuzz(data)
		objs := loadFuzz(t, resources)
		if objs == nil {
			return
		}
		if cs := Diff(objs, objs); len(cs) > 0 {
			t.Fatalf("a rendering differs from itself: %v", cs)
		}
		if cs := Diff(objs, loadFuzz(t, renderedFuzz(data))); len(cs) > 0 {
			t.Fatalf("two loads of the same bytes differ: %v", cs)
		}
		lock, err := baseline.Parse(append([]byte(baseline.LockHeader("overlays/x")), baseline.Stream(resources)...), "lock.yaml")
		if err != nil {
			t.Fatalf("its lock file does not read back: %v", err)
		}
		if cs := Diff(objs, loadFuzz(t, lock.Resources)); len(cs) > 0 {
			t.Fatalf("the rendering differs from its lock file: %v", cs)
		}
		for _, pair := range [][2][]*kyverno.Object{{nil, objs}, {objs, nil}} {
			cs := Diff(pair[0], pair[1])
			checkChanges(t, cs)
			if again := Diff(pair[0], pair[1]); !reflect.DeepEqual(cs, again) {
				t.Fatalf("not deterministic:\n%v\n%v", cs, again)
			}
		}
	})
}

// FuzzDiff feeds the diff two renderings, seeded with the gate's test
// cases (baseline, then head): the same changes every time, each with a
// valid class and fingerprint.
func FuzzDiff(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "cases", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if parts := headSep.Split(string(data), -1); len(parts) == 2 {
			f.Add([]byte(parts[0]), []byte(parts[1]))
		}
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		old, new := loadFuzz(t, renderedFuzz(a)), loadFuzz(t, renderedFuzz(b))
		if old == nil || new == nil {
			return
		}
		cs := Diff(old, new)
		checkChanges(t, cs)
		if again := Diff(loadFuzz(t, renderedFuzz(a)), loadFuzz(t, renderedFuzz(b))); !reflect.DeepEqual(cs, again) {
			t.Fatalf("not deterministic:\n%v\n%v", cs, again)
		}
	})
}
