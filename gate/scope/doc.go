// Package scope is the set logic of the weakening diff, without Kyverno:
// Kyverno's wildcards decided exactly (glob.go), scopes of requests as
// disjunctions of conjunctions of atoms and their comparison (dnf.go), and
// a rule's failure action as a function of the namespace (action.go).
//
// It only answers set questions (does one scope select all another does, in
// which namespace do two actions differ); whether an answer weakens
// enforcement is the diff engine's call (package diff, classify). Kept apart
// so that its tests and fuzz targets build and run in seconds: they do not
// link Kyverno (the tests use Kyverno's small ext/wildcard module as the
// reference matcher).
package scope
