package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kyverno-gate/kyverno-gate/internal/suggest"
)

// usageError phrases urfave/cli's flag errors the way a person expects, with
// the nearest known flag ("did you mean --timeout?").
func usageError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	const undefined = "flag provided but not defined: "
	if i := strings.Index(msg, undefined); i >= 0 {
		name := strings.TrimLeft(msg[i+len(undefined):], "-")
		var names []string
		if c != nil && c.Command != nil {
			for _, f := range c.Command.Flags {
				names = append(names, f.Names()...)
			}
		}
		if c != nil && c.App != nil {
			for _, f := range c.App.Flags {
				names = append(names, f.Names()...)
			}
		}
		msg = fmt.Sprintf("unknown flag --%s", name)
		if s := nearest(name, names); s != "" {
			msg += fmt.Sprintf("; did you mean --%s?", s)
		}
	}
	return fmt.Errorf("%s", msg)
}

// unknownCommand is the app's action: a first argument that names no
// command is a mistake, not a help topic.
func unknownCommand(c *cli.Context) error {
	if c.NArg() == 0 {
		return cli.ShowAppHelp(c)
	}
	name := c.Args().First()
	var names []string
	for _, cmd := range c.App.Commands {
		names = append(names, cmd.Names()...)
	}
	msg := fmt.Sprintf("unknown command %q", name)
	if s := nearest(name, names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return fmt.Errorf("%s", msg)
}

func nearest(name string, candidates []string) string { return suggest.Nearest(name, candidates) }

// revision is the git commit, set by the build (-ldflags "-X
// main.revision=..."), for builds without Go's VCS stamp (-buildvcs=false).
var revision = "unknown"

// printVersion writes what the binary was built from: its version, the git
// revision, and the versions of Kyverno, kustomize and Go it links.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "kyverno-gate %s\n", version)
	info, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintf(w, "  go         %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return
	}
	rev, modified := revision, ""
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (with uncommitted changes)"
			}
		}
	}
	fmt.Fprintf(w, "  revision   %s%s\n", rev, modified)
	dep := func(path string) string {
		for _, d := range info.Deps {
			if d.Path == path {
				if d.Replace != nil {
					return d.Replace.Version
				}
				return d.Version
			}
		}
		return "not linked"
	}
	fmt.Fprintf(w, "  kyverno    %s\n", dep("github.com/kyverno/kyverno"))
	fmt.Fprintf(w, "  kustomize  api %s, kyaml %s\n", dep("sigs.k8s.io/kustomize/api"), dep("sigs.k8s.io/kustomize/kyaml"))
	fmt.Fprintf(w, "  go         %s %s/%s\n", info.GoVersion, runtime.GOOS, runtime.GOARCH)
}

func versionCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version and what the binary was built from (Kyverno, kustomize, Go, git revision)",
		Action: func(*cli.Context) error {
			printVersion(stdout)
			return nil
		},
	}
}
