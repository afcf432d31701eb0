// Command kyverno-gate renders a Kyverno policy overlay, vets it, and prints
// it for Argo CD only when every gate passes. This file is wiring: flags,
// logging and exit codes; the work happens in pipeline, render and gate.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/internal/cache"
	"github.com/kyverno-gate/kyverno-gate/internal/gctune"
	"github.com/kyverno-gate/kyverno-gate/internal/scratch"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/output"
	"github.com/kyverno-gate/kyverno-gate/pipeline"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

// cacheDir is where results (test suites' rows, validation verdicts) are
// kept across runs (parameter cache).
// main sets it; in-process tests through run() keep no cache unless they
// set it.
var cacheDir string

func main() {
	tuneGC()
	confine = func(c *cli.Context, s *settings.Settings) error { return confineProcess(c, s, os.Stderr) }
	// Temporary files of this run (and of git or helm, through TMPDIR) go
	// to one private folder, removed on every exit; a SIGKILLed run's
	// folder is removed by the next run.
	if _, err := scratch.Setup(); err != nil {
		fmt.Fprintf(os.Stderr, "kyverno-gate: could not make a private temporary folder in %s: %v\n", os.TempDir(), err)
		os.Exit(2)
	}
	// The result cache outlives runs: beside the scratch folders, not in one.
	cacheDir = filepath.Join(scratch.Base(), cache.DirName)
	code := run(os.Args, os.Stdout, os.Stderr, os.Environ())
	scratch.Cleanup()
	os.Exit(code)
}

// tuneGC trades memory for time: a run is short and allocates heavily
// (Kyverno's engine), and the default GC spends a third of the CPU on it.
// GOGC=400 collects rarely, under a limit of 300 MiB or, for large runs,
// twice the live heap and some slack, up to the memory ceiling less 256 MiB
// (internal/gctune: a fixed 300 MiB made the collector run continuously on
// a 3,500-policy repository). Turning the collector off
// entirely was slower for rendering (fresh pages from the OS cost more than
// reusing collected ones: 2.4 s vs 1.6 s on the bench overlay) and no
// faster for tests. GOGC or GOMEMLIMIT in the environment take precedence.
func tuneGC() { gctune.Start() }

// exitError carries an exit code through urfave/cli without printing.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func run(args []string, stdout, stderr io.Writer, environ []string) int {
	app := newApp(stdout, stderr, environ)
	if err := app.Run(normalizeArgs(args)); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		// Usage errors from urfave/cli.
		fmt.Fprintf(stderr, "kyverno-gate: %v\nRun 'kyverno-gate --help' for usage.\n", err)
		return 2
	}
	return 0
}

func newApp(stdout, stderr io.Writer, environ []string) *cli.App {
	cli.VersionPrinter = func(c *cli.Context) { printVersion(c.App.Writer) }
	return &cli.App{
		Name:    "kyverno-gate",
		Usage:   "render, vet and serve Kyverno policies for Argo CD",
		Version: version,
		Description: `kyverno-gate renders a policy repository overlay with kustomize, vets it, and prints
the manifests only when every gate passes. Argo CD runs it as a Config Management
Plugin (see plugin.yaml); CI and people run the same binary.

Exit codes, for every command: 0 vetted, 1 rejected by a gate, 2 could not evaluate.
Stdout carries manifests only on exit 0; messages and logs go to stderr.

Every flag can also come from Argo CD: an Application parameter (PARAM_<NAME>) or
an Application env entry (ARGOCD_ENV_<NAME>), with the precedence
flag > PARAM_* > ARGOCD_ENV_* > default.`,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {},
		OnUsageError:    usageError,
		Action:          unknownCommand,
		Commands: []*cli.Command{
			generateCommand(stdout, stderr, environ),
			checkCommand(stdout, stderr, environ),
			testCommand(stdout, stderr, environ),
			lockCommand(stderr, environ),
			exportCommand(stdout, stderr),
			driftCommand(stdout, stderr, environ),
			pluginConfigCommand(stdout),
			versionCommand(stdout),
		},
	}
}

func generateCommand(stdout, stderr io.Writer, environ []string) *cli.Command {
	return &cli.Command{
		Name:      "generate",
		Usage:     "render and vet DIR, print the vetted manifests (the Argo CD plugin command)",
		ArgsUsage: "[DIR]",
		Description: `Renders DIR (default: the working directory, as Argo CD runs it), runs every gate,
and prints the manifests as one YAML stream. On rejection or error nothing is
printed on stdout and the reason goes to stderr.

Examples:
   kyverno-gate generate overlays/production
   kyverno-gate generate overlays/production --baseline git:origin/main
   # exactly as Argo CD runs it:
   cd overlays/production && ARGOCD_APP_NAME=policies-production \
     ARGOCD_APP_SOURCE_PATH=overlays/production PARAM_TIMEOUT=30s kyverno-gate generate`,
		Flags:        paramFlags(),
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return fmt.Errorf("generate takes one DIR, got %d", c.NArg())
			}
			v, err := vet(c, c.Args().First(), environ, stderr)
			if err != nil {
				return err
			}
			defer v.logs.release()
			if v.out.Overlay.Count(report.Warning) > 0 {
				output.Compact(stderr, v.label, v.out.Overlay, v.settings.MaxProblems, "")
			}
			// Everything passed: write the whole stream at once.
			if _, err := stdout.Write(output.Manifests(v.out.Rendered.Resources)); err != nil {
				return exitError{2}
			}
			v.logger.Infof("%s vetted: %d resources", v.label, len(v.out.Rendered.Resources))
			return nil
		},
	}
}

// vetted is a run of the pipeline that passed every gate.
type vetted struct {
	out      *pipeline.Outcome
	settings *settings.Settings
	logger   *logrus.Logger
	label    string
	logs     *heldLog // release after the command's own last line
}

// heldLog keeps log lines until release writes them out.
type heldLog struct {
	bytes.Buffer
	out io.Writer
}

func (h *heldLog) release() {
	_, _ = h.out.Write(h.Bytes())
	h.Reset()
}

// vet resolves the settings, runs the pipeline on dir (a DIR argument of
// the command; "" is the working directory) and reports anything but a
// pass on stderr, returning the exit code as an exitError. Every command that renders and gates goes through it.
func vet(c *cli.Context, dir string, environ []string, stderr io.Writer, check ...func(*settings.Settings) error) (*vetted, error) {
	if dir == "" {
		dir = "."
	}
	s, err := resolve(c, environ)
	for _, f := range check {
		if err == nil {
			err = f(s)
		}
	}
	if err != nil {
		output.Failure(stderr, dir, err.Error())
		return nil, exitError{2}
	}
	// Progress lines wait until the verdict is out: Argo CD shows a failed
	// run's whole stderr after a long prefix, so the verdict comes first.
	held := &heldLog{out: stderr}
	logger := newLogger(held, s.LogLevel)
	label := describe(dir, s)
	if a := s.App; a.UnderArgoCD() {
		logger.Debugf("Argo CD app %s (project %s), revision %s, destination namespace %s, Kubernetes %s",
			a.Name, a.Project, a.Revision, a.Namespace, a.KubeVersion)
	}
	for _, p := range settings.Params {
		logger.Debugf("parameter %s from %s", p.Name, s.Origin[p.Name])
	}
	ctx, stop := signal.NotifyContext(limits, syscall.SIGTERM, os.Interrupt)
	defer stop()
	out, err := pipeline.Run(ctx, dir, s, logger.Infof)
	if err != nil {
		output.Failure(stderr, label, explain(err, logger))
		held.release()
		return nil, exitError{2}
	}
	if out.Overlay.Rejected() {
		detail := ""
		if c.Command.Name == "lock" {
			detail = "(lock not written)"
		}
		output.Compact(stderr, label, out.Overlay, s.MaxProblems, detail)
		held.release()
		return nil, exitError{1}
	}
	return &vetted{out: out, settings: s, logger: logger, label: label, logs: held}, nil
}

// usageError keeps help text off stdout, which carries only manifests.

// explain turns an evaluation error into the one line a person reads.
func explain(err error, logger *logrus.Logger) string {
	var (
		re *render.Error
		te *gate.TimeoutError
		pe *gate.PanicError
	)
	if msg := explainLimit(err); msg != "" {
		return msg
	}
	switch {
	case errors.As(err, &re):
		return re.Error()
	case errors.As(err, &te):
		return te.Error() + " (raise parameter timeout, keeping it below Argo CD's repo-server timeout, or make the repository smaller)"
	case errors.As(err, &pe):
		logger.Debugf("panic stack:\n%s", pe.Stack)
		return pe.Error() + " (please report it with the repository that triggers it)"
	}
	return err.Error()
}

// describe names the rendered path the way the reader knows it: Argo CD
// runs the command inside the app's path, so "." means the source path;
// the app and the commit it generates (ARGOCD_APP_REVISION, abbreviated)
// follow. The commit is the only place a refused revision is named: while
// generation fails, Argo CD's sync status keeps the branch name, so
// notifications tell one refusal from the next by this line
// (examples/policy-repo/argocd/notifications-cm.yaml, oncePer).
func describe(dir string, s *settings.Settings) string {
	if (dir == "." || dir == "") && s.App.UnderArgoCD() && s.App.SourcePath != "" {
		var about []string
		if s.App.Name != "" {
			about = append(about, "app "+s.App.Name)
		}
		if r := s.App.Revision; r != "" {
			if len(r) == 40 || len(r) == 64 { // a git object name
				r = r[:7]
			}
			about = append(about, "revision "+r)
		}
		if len(about) > 0 {
			return s.App.SourcePath + " (" + strings.Join(about, ", ") + ")"
		}
		return s.App.SourcePath
	}
	return dir
}

func resolve(c *cli.Context, environ []string) (*settings.Settings, error) {
	flags := map[string][]string{}
	for _, p := range settings.Params {
		if !c.IsSet(p.Name) {
			continue
		}
		switch p.Type {
		case settings.Array:
			flags[p.Name] = c.StringSlice(p.Name)
		case settings.Bool:
			flags[p.Name] = []string{strconv.FormatBool(c.Bool(p.Name))}
		default:
			flags[p.Name] = []string{c.String(p.Name)}
		}
	}
	s, err := settings.Resolve(flags, environ)
	if err == nil {
		s.CacheDir = cacheDir
	}
	if err == nil && confine != nil {
		err = confine(c, s) // before anything reads the repository
	}
	return s, err
}

// paramFlags makes one flag per parameter. Values are kept as strings and
// parsed by settings, so a flag and a PARAM_ variable are read alike.
func paramFlags() []cli.Flag {
	var flags []cli.Flag
	for _, p := range settings.Params {
		usage := p.Tooltip
		env := "PARAM_" + settings.Escape(p.Name)
		def := strings.Join(p.Default, ",")
		switch p.Type {
		case settings.Array:
			flags = append(flags, &cli.StringSliceFlag{Name: p.Name, Usage: usage + " (repeatable; " + env + "_<i>)",
				DefaultText: def})
		case settings.Bool:
			flags = append(flags, &cli.BoolFlag{Name: p.Name, Usage: usage + " (" + env + ")"})
		default:
			flags = append(flags, &cli.StringFlag{Name: p.Name, Usage: usage + " (" + env + ")", DefaultText: def})
		}
	}
	return flags
}

func newLogger(w io.Writer, level string) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(w)
	l.SetFormatter(plainFormatter{})
	if lv, err := logrus.ParseLevel(level); err == nil {
		l.SetLevel(lv)
	}
	// kustomize reports deprecations through the standard logger.
	log.SetFlags(0)
	log.SetOutput(l.WriterLevel(logrus.WarnLevel))
	// Kyverno logs through controller-runtime: only when debugging.
	if level == "debug" {
		kyverno.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(w, nil)))
	} else {
		kyverno.SetLogger(logr.Discard())
	}
	return l
}

// plainFormatter prints "kyverno-gate: level: message", readable in Argo CD's
// sidecar logs and at a terminal alike.
type plainFormatter struct{}

func (plainFormatter) Format(e *logrus.Entry) ([]byte, error) {
	return []byte("kyverno-gate: " + e.Level.String() + ": " + strings.TrimRight(e.Message, "\n") + "\n"), nil
}
