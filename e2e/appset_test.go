package e2e

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/applicationset/controllers/template"
	"github.com/argoproj/argo-cd/v3/applicationset/generators"
	"github.com/argoproj/argo-cd/v3/applicationset/utils"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	log "github.com/sirupsen/logrus"
	"sigs.k8s.io/yaml"
)

// The ApplicationSet the example ships, rendered by Argo CD's own
// ApplicationSet code (list generator, Go templates, templatePatch), makes
// one Application per environment, and the plugin vets each of them.
func TestApplicationSetMakesOneVettedAppPerEnvironment(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(), "examples", "policy-repo", "argocd", "applicationset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var appset v1alpha1.ApplicationSet
	if err := yaml.UnmarshalStrict(data, &appset); err != nil {
		t.Fatal(err)
	}
	apps, _, err := template.GenerateApplications(log.NewEntry(log.StandardLogger()), appset,
		map[string]generators.Generator{"List": generators.NewListGenerator()}, &utils.Render{}, nil)
	if err != nil {
		t.Fatalf("Argo CD cannot render the ApplicationSet: %v", err)
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
	}
	sort.Strings(names)
	if want := []string{"policies-development", "policies-production", "policies-staging"}; len(names) != 3 || names[0] != want[0] || names[1] != want[1] || names[2] != want[2] {
		t.Fatalf("the ApplicationSet makes %v, want %v", names, want)
	}

	r := newPolicyRepo(t)
	for i := range apps {
		app := &apps[i]
		t.Run(app.Name, func(t *testing.T) {
			if app.Spec.Source == nil || app.Spec.Source.Plugin == nil || app.Spec.Source.Plugin.Name != "kyverno-gate-v1" {
				t.Fatalf("not a kyverno-gate Application: %+v", app.Spec.Source)
			}
			// The same notification subscriptions as the Application file of
			// that environment (production: every trigger, out-of-sync included).
			if got, want := subscriptions(app), subscriptions(application(t, strings.TrimPrefix(app.Name, "policies-"))); !reflect.DeepEqual(got, want) {
				t.Errorf("notification subscriptions %v, want those of the Application file: %v", got, want)
			}
			automated := app.Spec.SyncPolicy != nil && app.Spec.SyncPolicy.Automated != nil
			if production := app.Name == "policies-production"; automated == production {
				t.Errorf("automated sync = %v; want it everywhere but production", automated)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if g := generateApp(ctx, t, r, app); g.err != nil {
				t.Fatalf("generation failed: %v", g.err)
			} else if len(g.manifests) < 10 {
				t.Errorf("only %d manifests", len(g.manifests))
			}
		})
	}
}

// subscriptions returns an Application's notification subscriptions,
// annotation to channel.
func subscriptions(app *v1alpha1.Application) map[string]string {
	out := map[string]string{}
	for k, v := range app.Annotations {
		if strings.HasPrefix(k, "notifications.argoproj.io/subscribe.") {
			out[k] = v
		}
	}
	return out
}
