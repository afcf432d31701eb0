//go:build live

package kubetest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The harness itself: the server comes up with Kyverno's CRDs, RBAC refuses
// a user without a grant, kubectl of the same version talks to it.
func TestLiveStart(t *testing.T) {
	begin := time.Now()
	c := Start(t, Options{KyvernoCRDs: true, Users: []User{{Name: "nobody"}}})
	t.Logf("ready with Kyverno's CRDs in %s; RSS %v", time.Since(begin).Round(100*time.Millisecond), c.RSS())
	cases := []struct {
		user string
		path string
		code int
	}{
		{"admin", "/apis/kyverno.io/v1/clusterpolicies", http.StatusOK},
		{"admin", "/apis/policies.kyverno.io/v1/validatingpolicies", http.StatusOK},
		{"admin", "/apis/kyverno.io/v2alpha1/globalcontextentries", http.StatusOK},
		{"nobody", "/apis/kyverno.io/v1/clusterpolicies", http.StatusForbidden},
	}
	for _, tc := range cases {
		_, code, err := c.Do(tc.user, http.MethodGet, tc.path, "", nil)
		if err != nil || code != tc.code {
			t.Errorf("%s GET %s: %d %v, want %d", tc.user, tc.path, code, err, tc.code)
		}
	}
	out, err := c.Kubectl("version", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "gitVersion: v1.36.3") {
		t.Errorf("kubectl version:\n%s", out)
	}
}
