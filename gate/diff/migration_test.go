package diff

import (
	"strings"
	"testing"
)

// migOld is a ClusterPolicy with two pattern rules; migCEL the same checks
// written as legacy validate.cel, the form a migration can be proven
// equivalent from (see compareContent).
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

const migCEL = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-labels
  annotations:
    pod-policies.kyverno.io/autogen-controllers: DaemonSet,Deployment,Job,StatefulSet,ReplicaSet,CronJob
spec:
  rules:
  - name: check-team
    match:
      any:
      - resources:
          kinds: [Pod]
          operations: [CREATE, UPDATE]
    exclude:
      any:
      - resources:
          namespaces: [kube-system]
    validate:
      failureAction: Enforce
      cel:
        expressions:
        - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
  - name: check-owner
    match:
      any:
      - resources:
          kinds: [Pod]
          operations: [CREATE, UPDATE]
    exclude:
      any:
      - resources:
          namespaces: [kube-system]
    validate:
      failureAction: Enforce
      cel:
        expressions:
        - expression: "has(object.metadata.labels) && 'owner' in object.metadata.labels"
`

// migVP is a ValidatingPolicy checking label keys with the given actions
// and annotations.
func migVP(name, keys, actions, annotations string) string {
	s := `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: ` + name + "\n"
	if annotations != "" {
		s += "  annotations:\n" + annotations
	}
	s += `spec:
  validationActions: ` + actions + `
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [pods]
  validations:
`
	for _, key := range strings.Split(keys, ",") {
		s += "  - expression: \"has(object.metadata.labels) &&\n      '" + key + "' in object.metadata.labels\"\n"
	}
	return s
}

// withExclusion puts the kube-system exclusion into vp as yaml under
// spec (the matchConstraints' namespaceSelector, or matchConditions).
func withNSSelector(vp string) string {
	return strings.Replace(vp, "  matchConstraints:\n", "  matchConstraints:\n    namespaceSelector:\n      matchExpressions:\n      - {key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system]}\n", 1)
}

func withCondition(vp, expr string) string {
	return strings.Replace(vp, "  validations:\n", "  matchConditions:\n  - name: exclusion\n    expression: \""+expr+"\"\n  validations:\n", 1)
}

// A ClusterPolicy replaced by policies of the new kinds is one migration
// change, not a removal, with a verdict per rule; it keeps the removal's
// fingerprint, so approvals made before stay valid.
func TestMigration(t *testing.T) {
	removal := Fingerprint("ClusterPolicy", "require-labels", "", "", "present", "absent")
	// Kyverno's autogen for ValidatingPolicies (v1.19) has no
	// ReplicationController, which a ClusterPolicy's autogen covers: a
	// faithful migration leaves them out of the old policy first.
	noRC := strings.Replace(migOld, "  name: require-labels\n", "  name: require-labels\n  annotations:\n    pod-policies.kyverno.io/autogen-controllers: DaemonSet,Deployment,Job,StatefulSet,ReplicaSet,CronJob\n", 1)
	both := "team,owner"
	faithful := withNSSelector(migVP("require-labels", both, "[Deny]", ""))
	team := "    kyverno-gate.io/replaces: ClusterPolicy/require-labels#check-team\n"
	owner := "    kyverno-gate.io/replaces: ClusterPolicy/require-labels#check-owner\n"
	for _, tt := range []struct {
		name, base, head string
		class            Class
		rules            map[string]Class // verdict per rule
		want             []string         // substrings of the message
	}{
		{"faithful: namespaceSelector", migCEL, faithful, Equivalent, map[string]Class{"check-team": Equivalent, "check-owner": Equivalent},
			[]string{"was migrated to ValidatingPolicy require-labels: equivalent", "rule check-team (Enforce → Deny) equivalent"}},
		{"faithful: matchConditions", migCEL, withCondition(migVP("require-labels", both, "[Deny]", ""), "!(object.metadata.namespace in ['kube-system'])"), Equivalent, nil, nil},
		{"faithful: request.namespace !=", migCEL, withCondition(migVP("require-labels", both, "[Deny]", ""), "request.namespace != 'kube-system'"), Equivalent, nil, nil},
		{"faithful: one policy per rule", migCEL, withNSSelector(migVP("require-team", "team", "[Deny]", team)) + "---\n" + withNSSelector(migVP("require-owner", "owner", "[Deny]", owner)), Equivalent,
			map[string]Class{"check-team": Equivalent, "check-owner": Equivalent}, []string{"ValidatingPolicy require-owner, ValidatingPolicy require-team: equivalent"}},
		{"Audit instead of Deny", migCEL, withNSSelector(migVP("require-labels", both, "[Audit]", "")), Weaker, map[string]Class{"check-team": Weaker},
			[]string{"Enforce → Audit (ValidatingPolicy require-labels): violations are no longer blocked"}},
		{"a dropped condition", migCEL, withNSSelector(migVP("require-labels", "team", "[Deny]", "")), Weaker, map[string]Class{"check-team": Equivalent, "check-owner": Weaker},
			[]string{"rule check-owner (Enforce → Deny) weaker (weaker: validations dropped: \"has(object.metadata.labels) && 'owner' in object.metadata.labels\")"}},
		{"an added condition", migCEL, withNSSelector(migVP("require-labels", both+",app", "[Deny]", "")), Stricter, map[string]Class{"check-team": Stricter}, []string{"validations added"}},
		{"without the pod controllers", migCEL, strings.Replace(faithful, "spec:\n", "spec:\n  autogen:\n    podControllers:\n      controllers: []\n", 1), Weaker, nil,
			[]string{"ValidatingPolicy require-labels no longer matches CronJob, DaemonSet, Deployment, Job, ReplicaSet, StatefulSet"}},
		{"without UPDATE", migCEL, strings.Replace(faithful, "[CREATE, UPDATE]", "[CREATE]", 1), Weaker, nil, []string{"no longer acts on UPDATE"}},
		{"exclusion dropped", migCEL, migVP("require-labels", both, "[Deny]", ""), Stricter, nil, []string{"exclusions narrowed (removed namespaces=[kube-system])"}},
		{"exclusion into a broader matchCondition", migCEL, withCondition(migVP("require-labels", both, "[Deny]", ""), "!object.metadata.namespace.startsWith('kube-')"), Weaker,
			map[string]Class{"check-team": Weaker}, []string{"exclusions widened"}},
		{"exclusion into a matchCondition that cannot be read", migCEL, withCondition(migVP("require-labels", both, "[Deny]", ""), "!(object.metadata.namespace in params.skip)"), Weaker, nil,
			[]string{"match narrowed (added conditions !(object.metadata.namespace in params.skip))"}},
		{"more namespaces excluded", migCEL, strings.Replace(faithful, "values: [kube-system]", "values: [kube-system, team-a]", 1), Weaker, nil, []string{"exclusions widened"}},
		{"failing open", migCEL, strings.Replace(faithful, "spec:\n", "spec:\n  failurePolicy: Ignore\n", 1), Weaker, nil,
			[]string{"failurePolicy Fail → Ignore (ValidatingPolicy require-labels)"}},
		{"patterns: not decided", noRC, migVP("require-labels", both, "[Deny]", ""), Unknown, map[string]Class{"check-team": Unknown},
			[]string{"rule check-team (Enforce → Deny) unknown (unknown: pattern not compared with the CEL validations of ValidatingPolicy require-labels)"}},
		{"patterns, ReplicationControllers lost", migOld, migVP("require-labels", both, "[Deny]", ""), Weaker, nil,
			[]string{"weaker: ValidatingPolicy require-labels no longer matches ReplicationController"}},
		{"split per rule, one rule left behind", migCEL, withNSSelector(migVP("require-team", "team", "[Deny]", team)), Weaker,
			map[string]Class{"check-team": Equivalent, "check-owner": Weaker}, []string{"rule check-owner weaker (weaker: no successor"}},
		{"annotation wins over the name", migCEL, withNSSelector(migVP("require-labels", both, "[Audit]", "")) + "---\n" +
			withNSSelector(migVP("require-all", both, "[Deny]", "    kyverno-gate.io/replaces: ClusterPolicy/require-labels\n")), Equivalent, nil,
			[]string{"was migrated to ValidatingPolicy require-all:"}},
		{"a resource kyverno-gate cannot name: not compared", migCEL, strings.Replace(faithful, "resources: [pods]", "resources: [pods, widgets]", 1), Unknown, nil,
			[]string{"kinds not compared (resource widgets)"}},
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
			if got == nil || got.Migration == nil {
				t.Fatalf("no migration of the ClusterPolicy: %v", got)
			}
			if got.Class != tt.class || got.Fingerprint != removal || got.Migration.Verdict != string(tt.class) {
				t.Errorf("class %s (verdict %s) fingerprint %s, want %s %s:\n%s", got.Class, got.Migration.Verdict, got.Fingerprint, tt.class, removal, got.Message)
			}
			for _, r := range got.Migration.Rules {
				if want, ok := tt.rules[r.Rule]; ok && r.Verdict != string(want) {
					t.Errorf("rule %s: %s %v, want %s", r.Rule, r.Verdict, r.Reasons, want)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(got.Message, w) {
					t.Errorf("message lacks %q:\n%s", w, got.Message)
				}
			}
		})
	}
}

// A removal nothing replaces stays a removal, and says how to pair it.
func TestUnpairedRemoval(t *testing.T) {
	for _, c := range Diff(loadSide(t, "base", migCEL), loadSide(t, "head", migVP("other", "team", "[Deny]", ""))) {
		if c.Policy != "require-labels" {
			continue
		}
		if c.Migration != nil || c.Class != Weaker {
			t.Errorf("%s: want a plain removal", show(c))
		}
		for _, w := range []string{"was removed, so none of its rules apply any more", "kyverno-gate.io/replaces: ClusterPolicy/require-labels"} {
			if !strings.Contains(c.Message, w) {
				t.Errorf("message lacks %q:\n%s", w, c.Message)
			}
		}
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

// The matchConditions read as exclusions, and the ones that are not.
func TestCELExclusion(t *testing.T) {
	for _, tt := range []struct{ expr, want string }{
		{"request.namespace != 'kube-system'", "{namespaces=[kube-system]}"},
		{"object.metadata.name != 'default-deny'", "{names=[default-deny]}"},
		{"!(request.namespace in ['a', 'b'])", "{namespaces=[a, b]}"},
		{"!object.metadata.namespace.startsWith('kube-')", "{namespaces=[kube-*]}"},
		{"!(request.namespace == 'a' || request.name.endsWith('-test'))", "{names=[*-test]} OR {namespaces=[a]}"},
		{"request.namespace != 'a' && request.namespace != 'b'", "{namespaces=[a]} OR {namespaces=[b]}"},
		{"request.namespace == 'a'", ""},
		{"!(request.namespace in params.skip)", ""},
		{"request.namespace != 'a*'", ""},
		{"object.spec.replicas > 1", ""},
		{"(((", ""},
	} {
		d, ok := celExclusion(tt.expr)
		got := ""
		if ok {
			got = d.String()
		}
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// A kyverno.io exception for the migrated policy, carried over as a
// policies.kyverno.io exception for its successor, is compared with it:
// the same namespace is no change, a wider one is weaker, dropping it is
// stricter.
func TestMigratedException(t *testing.T) {
	const legacyExc = `apiVersion: kyverno.io/v2
kind: PolicyException
metadata: {name: legacy-apps, namespace: kyverno}
spec:
  exceptions:
  - policyName: require-labels
    ruleNames: [check-team, check-owner]
  match:
    any:
    - resources:
        kinds: [Pod]
        namespaces: [legacy]
`
	celExc := func(expr string) string {
		return `apiVersion: policies.kyverno.io/v1
kind: PolicyException
metadata: {name: legacy-apps, namespace: kyverno}
spec:
  policyRefs:
  - {name: require-labels, kind: ValidatingPolicy}
  matchConditions:
  - name: legacy
    expression: "` + expr + `"
`
	}
	faithful := withNSSelector(migVP("require-labels", "team,owner", "[Deny]", ""))
	for _, tt := range []struct {
		name, head string
		want       Class // of the exception change; "" for none
	}{
		{"carried over", faithful + "---\n" + celExc("request.namespace == 'legacy'"), ""},
		{"carried over with in", faithful + "---\n" + celExc("object.metadata.namespace in ['legacy']"), ""},
		{"widened", faithful + "---\n" + celExc("request.namespace.startsWith('leg')"), Weaker},
		{"a condition that cannot be read", faithful + "---\n" + celExc("has(object.metadata.labels)"), Unknown},
		{"dropped", faithful, Stricter},
		{"the old exception left behind", faithful + "---\n" + legacyExc, Stricter},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got Class
			for _, c := range Diff(loadSide(t, "base", migCEL+"---\n"+legacyExc), loadSide(t, "head", tt.head)) {
				if strings.HasPrefix(c.Kind, "PolicyException") {
					if got != "" && got != c.Class {
						t.Logf("also %s", show(c))
					}
					got = worse(got, c.Class)
				}
				if c.Migration != nil && c.Class != Equivalent {
					t.Errorf("the migration itself: %s", show(c))
				}
			}
			if got == Equivalent {
				got = ""
			}
			if got != tt.want {
				t.Errorf("exception change %q, want %q", got, tt.want)
			}
		})
	}
}

// Whatever a matchCondition says, reading it as an exclusion or a
// selection does not panic.
func FuzzCELExclusion(f *testing.F) {
	for _, s := range []string{"request.namespace != 'a'", "!(request.name in ['a', 'b'])", "!(a || b)", "a && b && c", "!", "&&", "((((", "[1,2,3]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		if d, ok := celExclusion(expr); ok && len(d) == 0 {
			t.Errorf("%q: read as an exclusion of nothing", expr)
		}
		celSelection(expr)
	})
}
