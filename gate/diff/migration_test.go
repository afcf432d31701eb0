package diff

import (
	"strings"
	"testing"
)

const migOld = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-labels
spec:
  rules:
  - name: check-team
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      failureAction: Enforce
      message: team label required
      pattern:
        metadata:
          labels:
            team: "?*"
  - name: check-owner
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      failureAction: Enforce
      message: owner label required
      pattern:
        metadata:
          labels:
            owner: "?*"
`

// migVP is a ValidatingPolicy checking label key with the given actions and
// annotations.
func migVP(name, key, actions, annotations string) string {
	s := `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: ` + name + "\n"
	if annotations != "" {
		s += "  annotations:\n" + annotations
	}
	return s + `spec:
  validationActions: ` + actions + `
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [pods]
  validations:
  - expression: "has(object.metadata.labels) && '` + key + `' in object.metadata.labels"
`
}

// A ClusterPolicy replaced by policies of the new kinds is one migration
// change, not a removal: its class and message say how each rule's
// enforcement fared. It always blocks (never equivalent in this step) and
// keeps the removal's fingerprint, so approvals made before stay valid.
func TestMigration(t *testing.T) {
	removal := Fingerprint("ClusterPolicy", "require-labels", "", "", "present", "absent")
	// Kyverno's autogen for ValidatingPolicies (v1.19) has no
	// ReplicationController, which a ClusterPolicy's autogen covers: a
	// faithful migration leaves them out of the old policy first.
	noRC := strings.Replace(migOld, "  name: require-labels\n", "  name: require-labels\n  annotations:\n    pod-policies.kyverno.io/autogen-controllers: DaemonSet,Deployment,Job,StatefulSet,ReplicaSet,CronJob\n", 1)
	for _, tt := range []struct {
		name, base, head string
		class            Class
		want             []string // substrings of the message
	}{
		{"same name, Deny: ReplicationControllers lost", migOld, migVP("require-labels", "team", "[Deny]", ""), Weaker,
			[]string{"was migrated to ValidatingPolicy require-labels", "rule check-team: Enforce → Deny", "rule check-owner: Enforce → Deny",
				"rule check-team: ValidatingPolicy require-labels no longer matches ReplicationController", "does not yet compare"}},
		{"same name, Deny, same controllers", noRC, migVP("require-labels", "team", "[Deny]", ""), Unknown,
			[]string{"rule check-team: Enforce → Deny (ValidatingPolicy require-labels); rule check-owner"}},
		{"same name, Audit", noRC, migVP("require-labels", "team", "[Audit]", ""), Weaker,
			[]string{"rule check-team: Enforce → Audit (ValidatingPolicy require-labels): violations are no longer blocked"}},
		{"split per rule, one rule left behind", noRC, migVP("require-team", "team", "[Deny]", "    kyverno-gate.io/replaces: ClusterPolicy/require-labels#check-team\n"), Weaker,
			[]string{"was migrated to ValidatingPolicy require-team", "rule check-team: Enforce → Deny", "rule check-owner has no successor"}},
		{"split per rule, both rules", noRC, migVP("require-team", "team", "[Deny]", "    kyverno-gate.io/replaces: ClusterPolicy/require-labels#check-team\n") + "---\n" +
			migVP("require-owner", "owner", "[Deny]", "    kyverno-gate.io/replaces: ClusterPolicy/require-labels#check-owner\n"), Unknown,
			[]string{"ValidatingPolicy require-owner, ValidatingPolicy require-team", "rule check-owner: Enforce → Deny (ValidatingPolicy require-owner)"}},
		{"annotation wins over the name", noRC, migVP("require-labels", "team", "[Audit]", "") + "---\n" +
			migVP("require-all", "team", "[Deny]", "    kyverno-gate.io/replaces: ClusterPolicy/require-labels\n"), Unknown,
			[]string{"was migrated to ValidatingPolicy require-all:"}},
		{"without the pod controllers", noRC, strings.Replace(migVP("require-labels", "team", "[Deny]", ""), "spec:\n", "spec:\n  autogen:\n    podControllers:\n      controllers: []\n", 1), Weaker,
			[]string{"rule check-team: ValidatingPolicy require-labels no longer matches CronJob, DaemonSet, Deployment, Job, ReplicaSet, StatefulSet"}},
		{"failing open", noRC, strings.Replace(migVP("require-labels", "team", "[Deny]", ""), "spec:\n", "spec:\n  failurePolicy: Ignore\n", 1), Weaker,
			[]string{"failurePolicy Fail → Ignore (ValidatingPolicy require-labels)"}},
		{"without UPDATE", noRC, strings.Replace(migVP("require-labels", "team", "[Deny]", ""), "[CREATE, UPDATE]", "[CREATE]", 1), Weaker,
			[]string{"rule check-team: ValidatingPolicy require-labels no longer acts on UPDATE"}},
		{"a resource kyverno-gate cannot name: not compared", noRC, strings.Replace(migVP("require-labels", "team", "[Deny]", ""), "resources: [pods]", "resources: [pods, widgets]", 1), Unknown,
			[]string{"rule check-team: scope not compared (resource widgets)"}},
		{"unrelated policy: a removal that says how to pair", noRC, migVP("other", "team", "[Deny]", ""), Weaker,
			[]string{"was removed, so none of its rules apply any more", "kyverno-gate.io/replaces: ClusterPolicy/require-labels"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got *Change
			for _, c := range Diff(loadSide(t, "base", tt.base), loadSide(t, "head", tt.head)) {
				if c.Kind == "ClusterPolicy" && c.Policy == "require-labels" {
					c := c
					if got != nil {
						t.Fatalf("two changes: %s and %s", show(*got), show(c))
					}
					got = &c
				}
			}
			if got == nil {
				t.Fatal("no change of the ClusterPolicy")
			}
			if got.Class != tt.class || got.Fingerprint != removal || !got.Class.Blocks() {
				t.Errorf("class %s fingerprint %s, want %s %s", got.Class, got.Fingerprint, tt.class, removal)
			}
			for _, w := range tt.want {
				if !strings.Contains(got.Message, w) {
					t.Errorf("message lacks %q:\n%s", w, got.Message)
				}
			}
		})
	}
}

// Without any policy of the new kinds in the head, a removal does not talk
// about migrations.
func TestRemovalWithoutNewKinds(t *testing.T) {
	for _, c := range Diff(loadSide(t, "base", migOld), nil) {
		if c.Policy == "require-labels" && strings.Contains(c.Message, "replaces") {
			t.Errorf("message mentions the annotation: %s", c.Message)
		}
	}
}
