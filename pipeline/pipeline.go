// Package pipeline is the one path every subcommand takes through a policy
// repository: render a directory, run the gates over the result, and hand
// back what the output formats need. It holds no policy logic of its own.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/kyverno-gate/kyverno-gate/attribute"
	"github.com/kyverno-gate/kyverno-gate/baseline"
	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/floor"
	"github.com/kyverno-gate/kyverno-gate/gate/kyvernotest"
	"github.com/kyverno-gate/kyverno-gate/gate/validate"
	"github.com/kyverno-gate/kyverno-gate/gate/weaken"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// Outcome is a finished run over one directory.
type Outcome struct {
	Dir      string // as given by the user, for messages
	Root     string // the repository root
	Rendered *render.Result
	// Overlay is the result: every gate's findings, attributed to the file
	// and line that introduced them, the tests and the posture column.
	Overlay *report.Overlay
}

// gates are the gates, in order, that vet a rendering: those that read the
// baseline, then those that do not. The baseline is let go between the two
// (Run): at 3,500 policies it is ~80 MB that the collector would otherwise
// scan again and again through the test gate, the longest.
func gates() (withBaseline, after []gate.Gate) {
	return []gate.Gate{gate.APIVersions{}, validate.Gate{}, weaken.Gate{}, floor.Gate{}}, []gate.Gate{kyvernotest.Gate{}}
}

// EmptyError is a rendering with nothing in it: fatal because Argo CD would
// prune every object of the Application.
type EmptyError struct{ Dir string }

func (e *EmptyError) Error() string {
	return "rendered no resources; Argo CD would prune every policy of this app (set parameter allow-empty=true if that is intended)"
}

// Run renders dir and runs the gates over it, all within s.Timeout. An error
// means the run could not be evaluated (exit 2); rejections are findings.
func Run(ctx context.Context, dir string, s *settings.Settings, log func(string, ...any)) (*Outcome, error) {
	root, err := s.Root(dir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	stages := &gate.Stages{}
	out := &Outcome{Dir: dir, Root: root, Overlay: &report.Overlay{Path: filepath.ToSlash(dir)}}
	err = gate.Within(ctx, s.Timeout, stages, func() error {
		stages.Set("rendering " + dir)
		start := time.Now()
		repo, err := repofs.Open(root, repofs.Limits{})
		if err != nil {
			return &render.Error{Msg: fmt.Sprintf("repository root %s: %v", root, err)}
		}
		opts := render.Options{Repo: repo, Root: root, AllowRemote: s.AllowRemote, EnableHelm: s.EnableHelm}
		res, err := render.Render(dir, opts)
		if err != nil {
			var re *render.Error
			if abs, _ := filepath.Abs(dir); errors.As(err, &re) && re.Outside && abs == root && !s.App.UnderArgoCD() {
				// No .git or .kyverno-gate.yaml above dir: the root fell
				// back to dir itself, and ../../base is "outside".
				re.Hint += "; the repository root was taken to be " + dir + " itself, since no .git or " + settings.ConfigFile +
					" is above it: set --repo-root to the repository's top folder"
			}
			return err
		}
		log("rendered %s: %d resources in %s", res.Dir, len(res.Resources), time.Since(start).Round(time.Millisecond))
		for _, n := range res.Notes {
			log("%s", n)
		}
		if len(res.Resources) == 0 && !s.AllowEmpty {
			return &EmptyError{Dir: dir}
		}
		out.Rendered = res
		stages.Set("resolving baseline " + s.Baseline)
		base, baseName, err := baseline.Resolve(s.Baseline, root, res.Dir, opts)
		if err != nil {
			return err
		}
		out.Overlay.Path = filepath.ToSlash(res.Dir)
		if base != nil {
			out.Overlay.Baseline = baseName
		}
		log("baseline: %s", baseName)
		if base != nil {
			head := map[string]bool{}
			for _, n := range res.Notes {
				head[n] = true
			}
			for _, n := range base.Notes {
				if !head[n] { // said once already, for the head
					log("baseline: %s", n)
				}
			}
		}
		in := &gate.Input{Root: root, Repo: repo, Dir: res.Dir, Rendered: res, Baseline: base, BaselineName: baseName,
			Settings: s, Stage: stages.Set, Log: log}
		withBaseline, after := gates()
		if err := gate.Run(ctx, in, out.Overlay, withBaseline...); err != nil {
			return err
		}
		in.Baseline, base = nil, nil
		if err := gate.Run(ctx, in, out.Overlay, after...); err != nil {
			return err
		}
		if c := in.Cache(); c != nil {
			c.Trim() // once per run, within its bound
		}
		stages.Set("attributing the findings")
		attribute.Overlay(out.Overlay, res, repo)
		out.Overlay.Finalize()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
