package repotest

import "testing"

func TestWriteEditCommit(t *testing.T) {
	r := New(t, map[string]string{"base/p.yaml": "a: 1\n"})
	first := r.Commit("one")
	r.Edit("base/p.yaml", "a: 1", "a: 2")
	second := r.Commit("two")
	if first == second || r.Read("base/p.yaml") != "a: 2\n" {
		t.Fatalf("commits %s %s, content %q", first, second, r.Read("base/p.yaml"))
	}
	c := Copy(t, r.Dir)
	if c.Read("base/p.yaml") != "a: 2\n" {
		t.Fatal("copy differs")
	}
	// The same content gives the same commits on every run.
	again := New(t, map[string]string{"base/p.yaml": "a: 1\n"})
	if h := again.Commit("one"); h != first {
		t.Errorf("commit %s, want %s", h, first)
	}
}
