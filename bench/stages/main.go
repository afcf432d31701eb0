// Command stages runs one stage of kyverno-gate's pipeline in-process and
// prints how long each step took, for bench/run.sh (which measures the
// process's peak memory around it) and for profiling:
//
//	stages [-root DIR] [-cpuprofile F] [-memprofile F] [-blockprofile F] [-cache DIR] render DIR
//	stages ... load DIR                  render, then kyverno.Load
//	stages ... diff DIR BASELINE.yaml    render both, load both, diff.Diff
//	stages ... test DIR                  pipeline.Test of DIR (as `kyverno-gate test DIR`)
//	stages ... generate DIR [NAME=VALUE...]
//	                                     the whole pipeline (as `generate`), with
//	                                     parameters as flags would give them
//
// Each step prints "step<TAB>seconds" on stdout. The GC is tuned as
// kyverno-gate's main does (internal/gctune: GOGC=400 under a limit that
// follows the live heap, unless GOGC or GOMEMLIMIT is set), so that figures
// match the CLI's.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/kyverno-gate/kyverno-gate/baseline"
	"github.com/kyverno-gate/kyverno-gate/gate/diff"
	"github.com/kyverno-gate/kyverno-gate/internal/cache"
	"github.com/kyverno-gate/kyverno-gate/internal/gctune"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/pipeline"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

func main() {
	gctune.Start() // as kyverno-gate's main
	root := flag.String("root", "", "repository root (default: DIR's root as kyverno-gate finds it)")
	cpu := flag.String("cpuprofile", "", "write a CPU profile of the stage to this file")
	mem := flag.String("memprofile", "", "write an allocation profile of the stage to this file")
	block := flag.String("blockprofile", "", "write a profile of where goroutines waited (locks, channels) to this file")
	cacheDir := flag.String("cache", "", "keep test results in this folder across runs, as kyverno-gate does in $TMPDIR/"+cache.DirName+" (default: none, a cold run)")
	flag.Parse()
	if flag.NArg() < 2 {
		flag.Usage()
		os.Exit(2)
	}
	kyverno.SetLogger(logr.Discard())
	if *cpu != "" {
		f, err := os.Create(*cpu)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	if *mem != "" {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			f, err := os.Create(*mem)
			check(err)
			check(pprof.Lookup("allocs").WriteTo(f, 0))
			f.Close()
		}()
	}
	if *block != "" {
		runtime.SetBlockProfileRate(int(time.Millisecond)) // waits of 1 ms and more
		defer func() {
			f, err := os.Create(*block)
			check(err)
			check(pprof.Lookup("block").WriteTo(f, 0))
			f.Close()
		}()
	}
	stage, dir := flag.Arg(0), flag.Arg(1)
	if *root == "" {
		s, err := settings.Resolve(nil, nil)
		check(err)
		r, err := s.Root(dir)
		check(err)
		*root = r
	}
	opts := render.Options{Root: *root}
	switch stage {
	case "render":
		timed("render", func() { _, err := render.Render(dir, opts); check(err) })
	case "load":
		res := renderOnce(dir, opts)
		timed("load", func() { _, err := kyverno.Load(res.Resources); check(err) })
	case "diff":
		if flag.NArg() != 3 {
			fatal("diff takes DIR and BASELINE")
		}
		res := renderOnce(dir, opts)
		var base *render.Result
		timed("baseline", func() {
			b, err := filepath.Abs(flag.Arg(2))
			check(err)
			base, _, err = baseline.Resolve("file:"+b, *root, dir, opts)
			check(err)
		})
		var head, old []*kyverno.Object
		timed("load", func() {
			var err error
			head, err = kyverno.Load(res.Resources)
			check(err)
			old, err = kyverno.Load(base.Resources)
			check(err)
		})
		var changes []diff.Change
		timed("diff", func() { changes = diff.Diff(old, head) })
		fmt.Fprintf(os.Stderr, "stages: %d changes between %d and %d objects\n", len(changes), len(old), len(head))
	case "test":
		s, err := settings.Resolve(nil, nil)
		check(err)
		s.RepoRoot = *root
		var run *pipeline.TestRun
		timed("test", func() {
			run, err = pipeline.Test(context.Background(), []string{dir}, s, pipeline.TestOptions{})
			check(err)
		})
		fmt.Fprintf(os.Stderr, "stages: %d suites, %d results, %d findings\n",
			run.Overlay.Tests.Suites, run.Overlay.Tests.Results, len(run.Overlay.Findings))
	case "generate":
		flags := map[string][]string{}
		for _, a := range flag.Args()[2:] {
			name, value, ok := strings.Cut(a, "=")
			if !ok {
				fatal("parameters are NAME=VALUE, got " + a)
			}
			flags[name] = append(flags[name], value)
		}
		s, err := settings.Resolve(flags, nil)
		check(err)
		if s.RepoRoot == "" {
			s.RepoRoot = *root
		}
		s.CacheDir = *cacheDir
		var out *pipeline.Outcome
		timed("pipeline", func() {
			out, err = pipeline.Run(context.Background(), dir, s, func(string, ...any) {})
			check(err)
		})
		names := make([]string, 0, len(out.Overlay.Timings))
		for n := range out.Overlay.Timings {
			names = append(names, string(n))
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Printf("gate %s\t%.3f\n", n, out.Overlay.Timings[report.Gate(n)].Seconds())
		}
		fmt.Fprintf(os.Stderr, "stages: %d resources, %d findings, rejected %v\n",
			len(out.Rendered.Resources), len(out.Overlay.Findings), out.Overlay.Rejected())
	default:
		fatal("unknown stage " + stage)
	}
}

func renderOnce(dir string, opts render.Options) *render.Result {
	var res *render.Result
	timed("render", func() {
		var err error
		res, err = render.Render(dir, opts)
		check(err)
	})
	return res
}

func timed(name string, f func()) {
	start := time.Now()
	f()
	fmt.Printf("%s\t%.3f\n", name, time.Since(start).Seconds())
}

func check(err error) {
	if err != nil {
		fatal(err.Error())
	}
}

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "stages:", msg)
	os.Exit(2)
}
