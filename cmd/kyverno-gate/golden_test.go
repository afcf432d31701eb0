package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const example = "../../examples/policy-repo"

// Every example overlay is vetted and prints exactly its golden stream.
func TestExampleOverlaysGolden(t *testing.T) {
	for _, env := range []string{"development", "staging", "production"} {
		t.Run(env, func(t *testing.T) {
			code, stdout, stderr := runGate(t, nil, "generate", filepath.Join(example, "overlays", env))
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, stderr)
			}
			golden := filepath.Join("testdata", "golden", env+".yaml")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				os.WriteFile(golden, []byte(stdout), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if stdout != string(want) {
				t.Errorf("output differs from %s (go test ./cmd/kyverno-gate -update to accept)", golden)
			}
			checkExampleSemantics(t, env, stdout)
		})
	}
}

// checkExampleSemantics asserts what the example promises: production
// enforces labels and limits, development audits everything, and no
// ClusterPolicy carries a namespace.
func checkExampleSemantics(t *testing.T, env, stream string) {
	t.Helper()
	for _, doc := range strings.Split(stream, "\n---\n") {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Spec struct {
				Rules []struct {
					Name     string `json:"name"`
					Validate *struct {
						FailureAction string `json:"failureAction"`
					} `json:"validate"`
				} `json:"rules"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(strings.TrimPrefix(doc, "---\n")), &obj); err != nil {
			t.Fatal(err)
		}
		if obj.Kind != "ClusterPolicy" {
			continue
		}
		if obj.Metadata.Namespace != "" {
			t.Errorf("%s: ClusterPolicy %s has metadata.namespace %q", env, obj.Metadata.Name, obj.Metadata.Namespace)
		}
		for _, r := range obj.Spec.Rules {
			if r.Validate == nil {
				continue
			}
			enforced := obj.Metadata.Name == "require-labels" || obj.Metadata.Name == "require-resource-limits"
			switch {
			case env == "production" && enforced && r.Validate.FailureAction != "Enforce":
				t.Errorf("production: %s rule %s is %s, want Enforce", obj.Metadata.Name, r.Name, r.Validate.FailureAction)
			case env == "development" && r.Validate.FailureAction != "Audit":
				t.Errorf("development: %s rule %s is %s, want Audit", obj.Metadata.Name, r.Name, r.Validate.FailureAction)
			}
		}
	}
}
