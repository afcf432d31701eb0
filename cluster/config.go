package cluster

import (
	"context"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Config is Kyverno's own configuration that changes what it enforces.
type Config struct {
	// ConfigMap is Kyverno's ConfigMap (resourceFilters, webhooks,
	// excludeGroups, ...), normalised; nil when not found or not readable.
	ConfigMap map[string]any
	// Webhooks are the failure policies of the webhooks Kyverno registers
	// (label webhook.kyverno.io/managed-by=kyverno); nil when not readable.
	Webhooks []Webhook
}

// Webhook is one webhook of a Kyverno-managed webhook configuration.
type Webhook struct {
	Kind           string `json:"kind"`          // ValidatingWebhookConfiguration, MutatingWebhookConfiguration
	Configuration  string `json:"configuration"` // its name
	Name           string `json:"name"`
	FailurePolicy  string `json:"failurePolicy"`
	TimeoutSeconds int64  `json:"timeoutSeconds,omitempty"`
}

// readConfig reads Kyverno's configuration where readable; what could not
// be read is a note (it is recorded, not restored).
func (c *Client) readConfig(ctx context.Context, opts Options) (*Config, []string) {
	cfg := &Config{}
	var notes []string
	cmGVR := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	u, err := c.dyn.Resource(cmGVR).Namespace(opts.KyvernoNamespace).Get(ctx, opts.KyvernoConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		notes = append(notes, fmt.Sprintf("Kyverno's ConfigMap %s/%s not found: its resource filters are not recorded", opts.KyvernoNamespace, opts.KyvernoConfigMap))
	case err != nil:
		notes = append(notes, fmt.Sprintf("Kyverno's ConfigMap %s/%s not readable (%s): its resource filters are not recorded", opts.KyvernoNamespace, opts.KyvernoConfigMap, reason(err)))
	default:
		cfg.ConfigMap = Normalize(u.Object, nil)
	}
	var hooks []Webhook
	readable := true
	for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		res := map[string]string{"ValidatingWebhookConfiguration": "validatingwebhookconfigurations", "MutatingWebhookConfiguration": "mutatingwebhookconfigurations"}[kind]
		gvr := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: res}
		l, err := c.dyn.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: "webhook.kyverno.io/managed-by=kyverno"})
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s not readable (%s): the webhooks' failure policies are not recorded", res, reason(err)))
			readable = false
			continue
		}
		for _, it := range l.Items {
			list, _ := it.Object["webhooks"].([]any)
			for _, w := range list {
				m, _ := w.(map[string]any)
				h := Webhook{Kind: kind, Configuration: it.GetName()}
				h.Name, _ = m["name"].(string)
				h.FailurePolicy, _ = m["failurePolicy"].(string)
				h.TimeoutSeconds, _ = m["timeoutSeconds"].(int64)
				hooks = append(hooks, h)
			}
		}
	}
	if readable {
		sort.Slice(hooks, func(i, j int) bool {
			a, b := hooks[i], hooks[j]
			if a.Kind != b.Kind {
				return a.Kind < b.Kind
			}
			if a.Configuration != b.Configuration {
				return a.Configuration < b.Configuration
			}
			return a.Name < b.Name
		})
		if hooks == nil {
			hooks = []Webhook{}
		}
		cfg.Webhooks = hooks
	}
	return cfg, notes
}
