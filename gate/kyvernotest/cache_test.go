package kyvernotest

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/internal/cache"
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// The result cache (issue 18) is exact only if its key covers every input
// of a suite: each kind of input is changed below and must miss, and what
// a hit returns must equal a run without the cache.
func TestCacheMissesOnEveryKindOfInput(t *testing.T) {
	policy, err := os.ReadFile(filepath.Join("testdata", "suite-ok", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// change alters the repository, the overlay or the cache after the
		// first two runs; a and b are two suites of the same policy.
		change func(t *testing.T, repo string, ov *Overlay, c *Cache)
		hits   int // of the two suites in the third run
		puts   int // entries the third run stores
	}{
		{"nothing", func(*testing.T, string, *Overlay, *Cache) {}, 2, 0},
		{"a resource file", func(t *testing.T, repo string, _ *Overlay, _ *Cache) {
			edit(t, filepath.Join(repo, "a", "resource.yaml"), "team: a", "team: b")
		}, 1, 1},
		{"the test file", func(t *testing.T, repo string, _ *Overlay, _ *Cache) {
			edit(t, filepath.Join(repo, "a", "kyverno-test.yaml"), "result: pass", "result: fail")
		}, 1, 1},
		{"a file the test file names, newly there", func(t *testing.T, repo string, _ *Overlay, _ *Cache) {
			edit(t, filepath.Join(repo, "a", "kyverno-test.yaml"), "resources:\n  - resource.yaml", "resources:\n  - resource.yaml\n  - more.yaml")
			os.WriteFile(filepath.Join(repo, "a", "more.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"), 0o644)
		}, 1, 1},
		{"the rendered policy", func(t *testing.T, _ string, ov *Overlay, _ *Cache) {
			ov.Entries[0].Doc = []byte(excludingApps)
		}, 0, 2},
		{"the settings", func(t *testing.T, _ string, _ *Overlay, c *Cache) {
			c.Salt = []byte(`["other"]`)
		}, 0, 2},
		{"the binary", func(t *testing.T, _ string, _ *Overlay, _ *Cache) {
			old := cache.Binary
			t.Cleanup(func() { cache.Binary = old })
			cache.Binary = func() string { return old() + " rebuilt" }
		}, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := t.TempDir()
			for _, d := range []string{"a", "b"} {
				repotest.CopyTree(t, filepath.Join("testdata", "suite-ok"), filepath.Join(repo, d))
			}
			ov := &Overlay{Entries: []Entry{{Object: Object{Kind: "ClusterPolicy", Name: "require-team"}, Doc: policy}}}
			c := openTestCache(t)
			first := runBoth(t, repo, ov, c)
			if st := c.Store.Stats(); st.Puts != 2 || st.Hits != 0 {
				t.Fatalf("first run: %+v, want 2 entries stored", st)
			}
			second := runBoth(t, repo, ov, c)
			for i := range second {
				if !second[i].Cached || !reflect.DeepEqual(second[i].Rows, first[i].Rows) {
					t.Fatalf("second run, suite %d: cached %v, rows %+v, want %+v", i, second[i].Cached, second[i].Rows, first[i].Rows)
				}
			}
			tt.change(t, repo, ov, c)
			before := c.Store.Stats()
			third := runBoth(t, repo, ov, c)
			after := c.Store.Stats()
			if hits, puts := int(after.Hits-before.Hits), int(after.Puts-before.Puts); hits != tt.hits || puts != tt.puts {
				t.Errorf("after the change: %d hits and %d entries stored, want %d and %d", hits, puts, tt.hits, tt.puts)
			}
			fresh := runBoth(t, repo, ov, nil)
			for i := range third {
				if !reflect.DeepEqual(third[i].Rows, fresh[i].Rows) || !reflect.DeepEqual(third[i].Substituted, fresh[i].Substituted) {
					t.Errorf("suite %s: with the cache %+v, without %+v", third[i].Suite.Rel, third[i].Rows, fresh[i].Rows)
				}
			}
		})
	}
}

// A policy whose result can depend on the clock is never stored.
func TestCacheSkipsVolatilePolicies(t *testing.T) {
	repo := t.TempDir()
	repotest.CopyTree(t, filepath.Join("testdata", "suite-ok"), filepath.Join(repo, "a"))
	policy, _ := os.ReadFile(filepath.Join("testdata", "suite-ok", "policy.yaml"))
	clock := strings.Replace(string(policy), "  rules:", "  # expires after time_now_utc()\n  rules:", 1)
	if clock == string(policy) {
		t.Fatal("the fixture changed: no rules: line to annotate")
	}
	ov := &Overlay{Entries: []Entry{{Object: Object{Kind: "ClusterPolicy", Name: "require-team"}, Doc: []byte(clock)}}}
	c := openTestCache(t)
	for range 2 {
		if res := runBoth(t, repo, ov, c); res[0].Cached || len(res[0].Rows) == 0 {
			t.Fatalf("cached %v, %d rows", res[0].Cached, len(res[0].Rows))
		}
	}
	if st := c.Store.Stats(); st.Puts != 0 || st.Hits != 0 {
		t.Errorf("a clock-dependent policy's suite was cached: %+v", st)
	}
}

// The parameter turns the cache off, allow-remote does too (a suite may
// then reach the network), and in-process runs without a folder keep none.
func TestOpenCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), cache.DirName)
	tests := []struct {
		name string
		s    settings.Settings
		on   bool
	}{
		{"on", settings.Settings{Cache: true, CacheDir: dir}, true},
		{"parameter cache=false", settings.Settings{Cache: false, CacheDir: dir}, false},
		{"allow-remote", settings.Settings{Cache: true, CacheDir: dir, AllowRemote: true}, false},
		{"no folder", settings.Settings{Cache: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(dir)
			c := openCache(&gate.Input{Settings: &tt.s})
			if (c != nil) != tt.on {
				t.Fatalf("cache %v, want on %v", c, tt.on)
			}
			if _, err := os.Stat(dir); (err == nil) != tt.on {
				t.Errorf("folder made: %v, want %v", err == nil, tt.on)
			}
		})
	}
	// Another user's, or a world-writable, folder could feed results
	// this process did not compute.
	os.MkdirAll(dir, 0o777)
	os.Chmod(dir, 0o777)
	var logged []string
	in := &gate.Input{Settings: &settings.Settings{Cache: true, CacheDir: dir}, Log: func(f string, a ...any) { logged = append(logged, f) }}
	if c := openCache(in); c != nil || len(logged) != 1 {
		t.Errorf("a world-writable folder was used (%v), or not said (%q)", c, logged)
	}
}

func openTestCache(t *testing.T) *Cache {
	t.Helper()
	st, err := cache.Open(filepath.Join(t.TempDir(), cache.DirName), cache.DefaultMaxBytes)
	if err != nil {
		t.Fatal(err)
	}
	return &Cache{Store: st, Salt: []byte(`["settings"]`)}
}

// runBoth discovers the suites of repo afresh (as a new generation does)
// and runs them.
func runBoth(t *testing.T, repo string, ov *Overlay, c *Cache) []*SuiteResult {
	t.Helper()
	root, err := repofs.Open(repo, repofs.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	suites, err := Discover(root, []string{"."}, "kyverno-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res := RunCached(suites, ov, c)
	for _, r := range res {
		if r.Err != nil || r.Skipped != "" {
			t.Fatalf("%s: err %v, skipped %q", r.Suite.Rel, r.Err, r.Skipped)
		}
	}
	return res
}

func edit(t *testing.T, file, old, new string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s has no %q", file, old)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}
