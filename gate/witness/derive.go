package witness

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Candidates derived from the repository's own: every Pod is also tried
// in the template of each pod controller, since a rule written for Pods
// applies to them through Kyverno's autogen, and a migration or an autogen
// change that loses a controller admits exactly such a resource. They are
// tried after every resource the repository declares, so a declared
// witness always wins.

// controllers are the pod controllers Kyverno's autogen knows, with where
// each keeps its pod template.
var controllers = []struct {
	apiVersion, kind string
	template         []string // path to the template
}{
	{"apps/v1", "DaemonSet", []string{"spec", "template"}},
	{"apps/v1", "Deployment", []string{"spec", "template"}},
	{"apps/v1", "ReplicaSet", []string{"spec", "template"}},
	{"apps/v1", "StatefulSet", []string{"spec", "template"}},
	{"batch/v1", "Job", []string{"spec", "template"}},
	{"batch/v1", "CronJob", []string{"spec", "jobTemplate", "spec", "template"}},
	{"v1", "ReplicationController", []string{"spec", "template"}},
}

// derive returns c's derived candidates: a Pod's controllers, none for
// anything else.
func derive(c *candidate) []*candidate {
	pod := c.obj
	if pod.GetKind() != "Pod" || pod.GetAPIVersion() != "v1" {
		return nil
	}
	spec, ok := pod.Object["spec"].(map[string]any)
	if !ok {
		return nil
	}
	var out []*candidate
	for _, ctl := range controllers {
		tmplMeta := map[string]any{}
		if l := pod.GetLabels(); len(l) > 0 {
			tmplMeta["labels"] = toAny(l)
		}
		if a := pod.GetAnnotations(); len(a) > 0 {
			tmplMeta["annotations"] = toAny(a)
		}
		obj := map[string]any{
			"apiVersion": ctl.apiVersion,
			"kind":       ctl.kind,
			"metadata":   map[string]any{"name": pod.GetName()},
		}
		if ns := pod.GetNamespace(); ns != "" {
			obj["metadata"].(map[string]any)["namespace"] = ns
		}
		if l := pod.GetLabels(); len(l) > 0 {
			obj["metadata"].(map[string]any)["labels"] = toAny(l)
		}
		u := &unstructured.Unstructured{Object: obj}
		tmpl := map[string]any{"metadata": tmplMeta, "spec": runtime.DeepCopyJSON(spec)}
		if err := unstructured.SetNestedField(u.Object, tmpl, ctl.template...); err != nil {
			continue
		}
		specPath := ctl.template[:len(ctl.template)-1]
		switch ctl.kind {
		case "CronJob":
			_ = unstructured.SetNestedField(u.Object, "0 0 * * *", "spec", "schedule")
		case "ReplicationController":
			if l := pod.GetLabels(); len(l) > 0 {
				_ = unstructured.SetNestedField(u.Object, toAny(l), append(append([]string{}, specPath...), "selector")...)
			}
		case "Job":
		default:
			sel := map[string]any{"matchLabels": toAny(pod.GetLabels())}
			_ = unstructured.SetNestedField(u.Object, sel, append(append([]string{}, specPath...), "selector")...)
		}
		out = append(out, &candidate{file: c.file, obj: u, env: c.env, policies: c.policies, sample: c.sample, from: c, pattern: c.pattern})
	}
	return out
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
