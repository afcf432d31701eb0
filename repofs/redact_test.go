package repofs

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"received error yaml: unmarshal errors:\n  line 7: mapping key \"password\" already defined at line 6 for the following resource:\napiVersion: v1\nkind: Secret\ndata:\n  password: c2VjcmV0\n",
			`received error yaml: unmarshal errors: line 7: mapping key "password" already defined at line 6`},
		{"accumulating resources from 's.yaml': invalid document separator: --- topsecret line': must build at directory",
			"accumulating resources from 's.yaml': invalid document separator': must build at directory"},
		{"yaml: unmarshal errors:\n  line 2: cannot unmarshal !!str `hunter2` into []string", "yaml: unmarshal errors: line 2: cannot unmarshal !!str a value into []string"},
		{"MalformedYAMLError: yaml: line 3: mapping values are not allowed in this context in File: x\napiVersion: v1\ndata:\n  k: hunter2",
			"MalformedYAMLError: yaml: line 3: mapping values are not allowed in this context in File: x"},
		{strings.Repeat("a", 500), strings.Repeat("a", 400) + "..."},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
