// Package repoconfig reads the repository configuration file,
// .kyverno-gate.yaml at the repository root. Its presence marks the root
// (see settings.Root); its content declares the environments of the
// repository and, per environment, floors: properties every rendering of
// that environment must have whatever the baseline, such as "every validate
// rule resolves to Enforce" in production.
//
//	apiVersion: kyverno-gate.io/v1alpha1
//	kind: Config
//	environments:            # ordered weakest → strictest
//	  - name: development
//	    path: overlays/development
//	  - name: staging
//	    path: overlays/staging
//	  - name: production
//	    path: overlays/production
//	    floors:
//	      validateAction: Enforce  # every validate/verifyImages rule resolves to Enforce,
//	                               # every ValidatingPolicy/ImageValidatingPolicy has Deny,
//	                               # and admission processing is on
//	      failurePolicy: Fail      # every policy's effective failurePolicy is Fail
//	      exceptions: approved     # every PolicyException (any group and version) needs an approval
//	      notWeakerThan: staging   # no policy present in both is weaker here than in staging
//	missingBaseline: error     # under Argo CD, an environment without a baseline (no lock
//	                           # file, or baseline none) is rejected; default warning
//
// Parsing is strict: an unknown field, a misspelt floor value or a
// notWeakerThan naming an unknown or later environment is an error naming
// the file, because a typo must not silently switch a floor off.
package repoconfig

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/settings"
)

// The file's type.
const (
	APIVersion = "kyverno-gate.io/v1alpha1"
	Kind       = "Config"
)

// Allowed floor values.
const (
	ValidateActionEnforce = "Enforce"
	FailurePolicyFail     = "Fail"
	ExceptionsApproved    = "approved"
)

// What a rendering of a declared environment under Argo CD gets when it has
// no baseline to compare with (missingBaseline).
const (
	MissingBaselineWarning = "warning"
	MissingBaselineError   = "error"
)

// maxBytes bounds the file: it is a few lines in any real repository.
const maxBytes = 1 << 20

// Config is the repository configuration.
type Config struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Environments, ordered weakest to strictest.
	Environments []Environment `json:"environments,omitempty"`
	// MissingBaseline is what a rendering of a declared environment under
	// Argo CD gets when the weakening gate has no baseline (no lock file
	// with baseline auto, or baseline none): a finding of severity
	// "warning" (the default) or "error". An environment may override it.
	MissingBaseline string `json:"missingBaseline,omitempty"`

	// File is the configuration file relative to the root ("" when the
	// repository has none).
	File string `json:"-"`
}

// Environment is one deployment environment: a rendered path and its floors.
type Environment struct {
	Name string `json:"name"`
	// Path is the rendered directory, relative to the repository root,
	// with forward slashes.
	Path   string  `json:"path"`
	Floors *Floors `json:"floors,omitempty"`
	// MissingBaseline overrides the configuration's MissingBaseline for
	// this environment.
	MissingBaseline string `json:"missingBaseline,omitempty"`
}

// MissingBaselineFor returns the severity of a missing baseline for env:
// its own setting, else the configuration's, else "warning".
func (c *Config) MissingBaselineFor(env *Environment) string {
	if env != nil && env.MissingBaseline != "" {
		return env.MissingBaseline
	}
	if c != nil && c.MissingBaseline != "" {
		return c.MissingBaseline
	}
	return MissingBaselineWarning
}

// Floors are properties every rendering of an environment must have. An
// empty field is no floor.
type Floors struct {
	// ValidateAction "Enforce": every validate and verifyImages rule of a
	// ClusterPolicy/Policy resolves to Enforce (with Kyverno's precedence,
	// in every namespace), every ValidatingPolicy and ImageValidatingPolicy
	// has Deny among its effective validationActions, and admission
	// processing is on for all of them.
	ValidateAction string `json:"validateAction,omitempty"`
	// FailurePolicy "Fail": every policy's effective failurePolicy is Fail.
	FailurePolicy string `json:"failurePolicy,omitempty"`
	// Exceptions "approved": every PolicyException, in any group and
	// version, needs an approval bound to what it exempts.
	Exceptions string `json:"exceptions,omitempty"`
	// NotWeakerThan names an earlier environment: for every policy present
	// in both renderings, this environment must not be weaker.
	NotWeakerThan string `json:"notWeakerThan,omitempty"`
}

// Empty reports whether no floor is set.
func (f *Floors) Empty() bool {
	return f == nil || *f == Floors{}
}

// Load reads <root>/.kyverno-gate.yaml (see LoadFrom).
func Load(root string) (*Config, error) {
	repo, err := repofs.Open(root, repofs.Limits{MaxFileBytes: maxBytes})
	if err != nil {
		return nil, err
	}
	return LoadFrom(repo)
}

// LoadFrom reads .kyverno-gate.yaml at the root of repo, through its
// confined view. A missing file is an empty configuration, not an error.
func LoadFrom(repo *repofs.Root) (*Config, error) {
	info, err := repo.Stat(settings.ConfigFile)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", settings.ConfigFile, err)
	}
	if info.Size() > maxBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", settings.ConfigFile, maxBytes)
	}
	data, err := repo.ReadFile(settings.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", settings.ConfigFile, err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", settings.ConfigFile, err)
	}
	c.File = settings.ConfigFile
	return c, nil
}

// Parse parses and checks the content of a configuration file.
func Parse(data []byte) (*Config, error) {
	c := &Config{}
	if isBlank(data) {
		return c, nil
	}
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return nil, cleanYAMLError(err)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// isBlank reports whether data holds nothing but comments and blank lines.
func isBlank(data []byte) bool {
	for _, line := range bytes.Split(data, []byte("\n")) {
		l := bytes.TrimSpace(line)
		if len(l) > 0 && l[0] != '#' && !bytes.Equal(l, []byte("---")) {
			return false
		}
	}
	return true
}

func cleanYAMLError(err error) error {
	msg := repofs.Redact(err.Error())
	for _, p := range []string{"error unmarshaling JSON: while decoding JSON: ", "error converting YAML to JSON: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	msg = strings.Replace(msg, "json: unknown field", "unknown field", 1)
	return errors.New(msg)
}

func (c *Config) check() error {
	if c.APIVersion != APIVersion {
		return fmt.Errorf("apiVersion is %q, want %s", c.APIVersion, APIVersion)
	}
	if c.Kind != Kind {
		return fmt.Errorf("kind is %q, want %s", c.Kind, Kind)
	}
	if err := oneOf(c.MissingBaseline, MissingBaselineWarning, MissingBaselineError); err != nil {
		return fmt.Errorf("missingBaseline %v", err)
	}
	names, paths := map[string]int{}, map[string]string{}
	for i := range c.Environments {
		e := &c.Environments[i]
		where := fmt.Sprintf("environments[%d]", i)
		if e.Name != "" {
			where = fmt.Sprintf("environment %s", e.Name)
		}
		if e.Name == "" {
			return fmt.Errorf("%s: name is required", where)
		}
		if _, dup := names[e.Name]; dup {
			return fmt.Errorf("%s: declared twice", where)
		}
		names[e.Name] = i
		p, err := cleanPath(e.Path)
		if err != nil {
			return fmt.Errorf("%s: path %v", where, err)
		}
		if other, dup := paths[p]; dup {
			return fmt.Errorf("%s: path %s is also the path of environment %s", where, p, other)
		}
		paths[p] = e.Name
		e.Path = p
		if err := oneOf(e.MissingBaseline, MissingBaselineWarning, MissingBaselineError); err != nil {
			return fmt.Errorf("%s: missingBaseline %v", where, err)
		}
		if e.Floors == nil {
			continue
		}
		f := e.Floors
		if err := oneOf(f.ValidateAction, ValidateActionEnforce); err != nil {
			return fmt.Errorf("%s: floors.validateAction %v", where, err)
		}
		if err := oneOf(f.FailurePolicy, FailurePolicyFail); err != nil {
			return fmt.Errorf("%s: floors.failurePolicy %v", where, err)
		}
		if err := oneOf(f.Exceptions, ExceptionsApproved); err != nil {
			return fmt.Errorf("%s: floors.exceptions %v", where, err)
		}
		if n := f.NotWeakerThan; n != "" {
			_, ok := names[n] // only environments declared before this one
			switch {
			case n == e.Name:
				return fmt.Errorf("%s: floors.notWeakerThan names the environment itself", where)
			case !ok && c.index(n) >= 0:
				return fmt.Errorf("%s: floors.notWeakerThan %s names a later environment; environments are ordered weakest to strictest", where, n)
			case !ok:
				return fmt.Errorf("%s: floors.notWeakerThan %s is not a declared environment", where, n)
			}
		}
	}
	return nil
}

func (c *Config) index(name string) int {
	for i := range c.Environments {
		if c.Environments[i].Name == name {
			return i
		}
	}
	return -1
}

func oneOf(v string, allowed ...string) error {
	if v == "" {
		return nil
	}
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	if len(allowed) == 1 {
		return fmt.Errorf("is %q; the only value is %s (or leave it out)", v, allowed[0])
	}
	return fmt.Errorf("is %q; the values are %s (or leave it out)", v, strings.Join(allowed, ", "))
}

// cleanPath normalises an environment path: relative to the root, forward
// slashes, no "..".
func cleanPath(p string) (string, error) {
	if strings.TrimSpace(p) == "" {
		return "", errors.New("is required")
	}
	p = filepath.ToSlash(p)
	if path.IsAbs(p) || filepath.IsAbs(p) {
		return "", fmt.Errorf("%q must be relative to the repository root", p)
	}
	p = path.Clean(p)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("%q is outside the repository root", p)
	}
	return p, nil
}

// Environment returns the environment called name, or nil.
func (c *Config) Environment(name string) *Environment {
	if c == nil {
		return nil
	}
	if i := c.index(name); i >= 0 {
		return &c.Environments[i]
	}
	return nil
}

// EnvironmentFor returns the environment whose path is dir (relative to the
// root; cleaned before comparing), or nil.
func (c *Config) EnvironmentFor(dir string) *Environment {
	if c == nil {
		return nil
	}
	d := path.Clean(filepath.ToSlash(dir))
	for i := range c.Environments {
		if c.Environments[i].Path == d {
			return &c.Environments[i]
		}
	}
	return nil
}
