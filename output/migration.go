package output

import (
	"fmt"
	"strings"

	"github.com/kyverno-gate/kyverno-gate/report"
)

// migrationTo names a migration's successors.
func migrationTo(m *report.Migration) string {
	var to []string
	for _, s := range m.To {
		to = append(to, s.String())
	}
	return strings.Join(to, ", ")
}

// migrationRules is one clause per rule: "check-team (Enforce → Deny)
// equivalent", with what differs for the others.
func migrationRules(m *report.Migration) string {
	var parts []string
	for _, r := range m.Rules {
		p := r.Rule
		if r.Action != "" {
			p += " (" + r.Action + ")"
		}
		p += " " + r.Verdict
		if len(r.Reasons) > 0 {
			p += ": " + strings.Join(r.Reasons, ", ")
		}
		parts = append(parts, p)
	}
	parts = append(parts, m.Reasons...)
	return strings.Join(parts, "; ")
}

// MigrationLine is one migration on one line, for the text report.
func MigrationLine(m *report.Migration) string {
	return fmt.Sprintf("%s → %s: %s (%s)", m.From, migrationTo(m), m.Verdict, migrationRules(m))
}

// unlisted are o's migrations that no finding carries (those that need no
// approval): a finding already shows its migration in its message.
func unlisted(o *report.Overlay) []*report.Migration {
	var out []*report.Migration
	for i := range o.Migrations {
		if o.Migrations[i].Fingerprint == "" {
			out = append(out, &o.Migrations[i])
		}
	}
	return out
}

// mdMigrations is the markdown table of every overlay's migrations, ""
// when there are none.
func mdMigrations(r *report.Report) string {
	var b strings.Builder
	for i := range r.Overlays {
		o := &r.Overlays[i]
		for j := range o.Migrations {
			m := &o.Migrations[j]
			if b.Len() == 0 {
				b.WriteString("\n### Migrations\n\nPolicies moved to the policies.kyverno.io kinds, compared rule by rule with the baseline (docs/migrations.md).\n\n")
				b.WriteString("| Overlay | From | To | Verdict | Rules |\n| --- | --- | --- | --- | --- |\n")
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", mdCell(mdCode(o.Name())), mdCell(mdCode(m.From.String())),
				mdCell(mdCode(migrationTo(m))), mdCell(mdText(m.Verdict)), mdCell(mdText(migrationRules(m))))
		}
	}
	return b.String()
}
