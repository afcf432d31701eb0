package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerInstructions parses a Dockerfile into instructions (continuation
// lines joined, comments dropped): the keyword upper-cased and the rest.
func dockerInstructions(t *testing.T, data string) [][2]string {
	t.Helper()
	var out [][2]string
	var cur strings.Builder
	for _, line := range strings.Split(data, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasPrefix(trimmed, "#") { // a comment inside a continued instruction
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		kw, rest, _ := strings.Cut(cur.String(), " ")
		out = append(out, [2]string{strings.ToUpper(kw), strings.TrimSpace(rest)})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile ends inside a continued line")
	}
	return out
}

// No container builder runs on this project's machines (docs/release.md
// says why), so the Dockerfile's promises are checked here, as a linter
// would: pinned bases, cache mounts, cross-compilation, labels, non-root,
// the CLI as entrypoint, and a build context without bin/ or .git.
func TestDockerfileRules(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	ins := dockerInstructions(t, string(data))
	args := map[string]string{} // ARG defaults before the first FROM
	var froms, runs, labels []string
	var user, entrypoint string
	env := map[string]string{}
	sawFrom := false
	for _, in := range ins {
		switch in[0] {
		case "ARG":
			if !sawFrom {
				k, v, _ := strings.Cut(in[1], "=")
				args[k] = v
			}
		case "FROM":
			sawFrom = true
			froms = append(froms, in[1])
		case "RUN":
			runs = append(runs, in[1])
		case "LABEL":
			labels = append(labels, in[1])
		case "USER":
			user = in[1]
		case "ENTRYPOINT":
			entrypoint = in[1]
		case "ENV":
			for _, kv := range strings.Fields(in[1]) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		case "ADD":
			t.Errorf("ADD %s: use COPY (ADD fetches URLs and unpacks archives)", in[1])
		case "CMD", "COPY", "WORKDIR":
		default:
			t.Errorf("unexpected instruction %s", in[0])
		}
	}
	// Every base image is pinned by digest, with its tag for the reader.
	pinned := regexp.MustCompile(`^[a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$`)
	if len(froms) != 2 {
		t.Fatalf("want a build stage and a final stage, got FROM %v", froms)
	}
	for _, f := range froms {
		image := regexp.MustCompile(`\$\{?(\w+)\}?`).ReplaceAllStringFunc(strings.Fields(strings.TrimPrefix(f, "--platform=$BUILDPLATFORM "))[0], func(v string) string {
			return args[strings.Trim(v, "${}")]
		})
		if !pinned.MatchString(image) {
			t.Errorf("FROM %s is %q: pin it as name:tag@sha256:<digest>", f, image)
		}
		if strings.Contains(image, ":latest") {
			t.Errorf("FROM %s: no latest tag", f)
		}
	}
	// The build cross-compiles on the builder's platform.
	if !strings.HasPrefix(froms[0], "--platform=$BUILDPLATFORM ") || !strings.HasSuffix(froms[0], " AS build") {
		t.Errorf("the build stage must be FROM --platform=$BUILDPLATFORM ... AS build, got %s", froms[0])
	}
	build := ""
	for _, r := range runs {
		if strings.Contains(r, "go build") {
			build = r
		}
	}
	for _, want := range []string{
		"--mount=type=cache,target=/go/pkg/mod", "--mount=type=cache,target=/root/.cache/go-build",
		"CGO_ENABLED=0", "GOOS=${TARGETOS}", "GOARCH=${TARGETARCH}", "-trimpath",
		"-X main.version=${VERSION}", "-X main.revision=${REVISION}", "./cmd/kyverno-gate",
		`test -n "${VERSION}"`,
	} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build RUN lacks %q:\n%s", want, build)
		}
	}
	for _, r := range runs {
		if !strings.Contains(r, "--mount=type=cache,target=/go/pkg/mod") {
			t.Errorf("RUN without the module cache mount: %s", r)
		}
	}
	// OCI labels with the version stamped.
	all := strings.Join(labels, " ")
	for _, l := range []string{"title", "description", "source", "version=\"${VERSION}\"", "revision=\"${REVISION}\"", "created=\"${CREATED}\""} {
		if !strings.Contains(all, "org.opencontainers.image."+l) {
			t.Errorf("no LABEL org.opencontainers.image.%s", l)
		}
	}
	// Non-root, read-only-root friendly, the CLI as entrypoint (the
	// install manifests choose cmp-server with command:).
	if user != "999:999" {
		t.Errorf("USER %q, want 999:999 (Argo CD runs plugin sidecars as uid 999)", user)
	}
	if env["HOME"] != "/tmp" || env["TMPDIR"] != "/tmp" {
		t.Errorf("HOME and TMPDIR must be /tmp (the only writable mount with a read-only root), got %v", env)
	}
	if entrypoint != `["/usr/local/bin/kyverno-gate"]` {
		t.Errorf("ENTRYPOINT %s, want the CLI in exec form", entrypoint)
	}

	ignore, err := os.ReadFile(filepath.Join("..", "..", ".dockerignore"))
	if err != nil {
		t.Fatalf("no .dockerignore: %v", err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(ignore), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{".git", "bin", "dist", "kyverno-gate"} {
		if !lines[want] {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}
