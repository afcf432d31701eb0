package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kyverno-gate/kyverno-gate/repoconfig"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// Check runs every dir through Run and gathers the finalized report, with
// the posture matrix of the overlays that rendered. An overlay that cannot
// be evaluated is an overlay with an error (explain phrases it); the
// others are still checked. log receives progress.
func Check(ctx context.Context, dirs []string, s *settings.Settings, tool report.Tool,
	log func(string, ...any), explain func(error) string) *report.Report {
	r := &report.Report{Tool: tool}
	var cols []report.Column
	configs := map[string]*repoconfig.Config{}
	for _, dir := range dirs {
		o := overlay(ctx, dir, s, log, explain, configs)
		if o.Posture != nil {
			col := *o.Posture
			col.Environment = o.Name()
			cols = append(cols, col)
		}
		r.Overlays = append(r.Overlays, *o)
	}
	if len(cols) > 0 {
		r.Posture = report.NewMatrix(cols...)
	}
	r.Finalize()
	return r
}

// overlay judges one dir, named as the repository configuration names it.
func overlay(ctx context.Context, dir string, s *settings.Settings, log func(string, ...any), explain func(error) string,
	configs map[string]*repoconfig.Config) *report.Overlay {
	o := &report.Overlay{Path: filepath.ToSlash(dir)}
	root, err := s.Root(dir)
	if err != nil {
		o.Error = explain(err)
		return o
	}
	if abs, err := filepath.Abs(dir); err == nil {
		if rel, err := filepath.Rel(root, abs); err == nil {
			o.Path = filepath.ToSlash(rel)
		}
	}
	cfg, ok := configs[root]
	if !ok {
		// An unreadable configuration fails the floor gate; here it only
		// leaves the environment unnamed.
		cfg, _ = repoconfig.Load(root)
		configs[root] = cfg
	}
	env := ""
	if e := cfg.EnvironmentFor(o.Path); e != nil {
		env = e.Name
	}
	out, err := Run(ctx, dir, s, log)
	if err != nil {
		o.Environment, o.Error = env, explain(err)
		return o
	}
	out.Overlay.Environment = env
	return out.Overlay
}

// DefaultOverlays are the paths check judges without arguments: every
// environment of the repository configuration, else every overlays/*
// folder of the repository root.
func DefaultOverlays(s *settings.Settings) ([]string, error) {
	root, err := s.Root(".")
	if err != nil {
		return nil, err
	}
	repo, err := repofs.Open(root, repofs.Limits{})
	if err != nil {
		return nil, err
	}
	cfg, err := repoconfig.LoadFrom(repo)
	if err != nil {
		return nil, err
	}
	var dirs []string
	if cfg != nil && len(cfg.Environments) > 0 {
		for _, e := range cfg.Environments {
			dirs = append(dirs, filepath.Join(root, filepath.FromSlash(e.Path)))
		}
		return dirs, nil
	}
	var names []string
	if repo.IsDir("overlays") {
		if names, err = repo.ReadDir("overlays"); err != nil {
			return nil, err
		}
	}
	for _, n := range names {
		if p := filepath.Join(root, "overlays", n); !strings.HasPrefix(n, ".") && repo.IsDir(p) {
			dirs = append(dirs, p)
		}
	}
	sort.Strings(dirs)
	if len(dirs) == 0 {
		return nil, fmt.Errorf("nothing to check: %s declares no environment and %s has no overlays/* folder (name the PATHs to check)",
			settings.ConfigFile, root)
	}
	return dirs, nil
}
