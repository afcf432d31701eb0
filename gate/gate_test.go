package gate

import (
	"context"
	"errors"
	"github.com/kyverno-gate/kyverno-gate/report"
	"strings"
	"testing"
	"time"
)

type fakeGate struct {
	name report.Gate
	fn   func() ([]report.Finding, error)
}

func (g fakeGate) Name() report.Gate { return g.name }
func (g fakeGate) Check(_ context.Context, _ *Input, out *report.Overlay) error {
	fs, err := g.fn()
	out.Add(fs...)
	return err
}

func TestRunOrdersFindingsAndRecoversPanics(t *testing.T) {
	gates := []Gate{
		fakeGate{"validate", func() ([]report.Finding, error) {
			return []report.Finding{{Gate: "validate", Severity: report.Warning, Message: "w"}, {Gate: "validate", Severity: report.Error, File: "b", Message: "e2"}}, nil
		}},
		fakeGate{"test", func() ([]report.Finding, error) {
			return []report.Finding{{Gate: "test", Severity: report.Error, File: "a", Message: "e1"}}, nil
		}},
	}
	rep, err := RunOne(context.Background(), &Input{}, gates...)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.Message)
	}
	// Errors first, then in gate order (validate before test), then by place.
	if strings.Join(got, ",") != "e2,e1,w" || !rep.Rejected() {
		t.Errorf("findings = %v", got)
	}

	_, err = RunOne(context.Background(), &Input{}, fakeGate{"boom", func() ([]report.Finding, error) { panic("nil map") }})
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Gate != "boom" {
		t.Errorf("err = %v, want a PanicError of gate boom", err)
	}
}

// expiring is a context whose deadline passes when expire is called: the
// test, not the scheduler, decides in which stage the budget runs out.
type expiring struct {
	context.Context
	done chan struct{}
}

func newExpiring() *expiring {
	return &expiring{Context: context.Background(), done: make(chan struct{})}
}

func (e *expiring) expire()               { close(e.done) }
func (e *expiring) Done() <-chan struct{} { return e.done }
func (e *expiring) Err() error {
	select {
	case <-e.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func TestWithinReportsTheStageThatTimedOut(t *testing.T) {
	ctx := newExpiring()
	stages := &Stages{}
	release := make(chan struct{})
	defer close(release)
	// fn cannot return before Within does, and the deadline passes only
	// once fn is in its stage: no race against a short budget.
	err := Within(ctx, 20*time.Millisecond, stages, func() error {
		stages.Set("rendering overlays/prod")
		ctx.expire()
		<-release
		return nil
	})
	var te *TimeoutError
	if !errors.As(err, &te) || te.Stage != "rendering overlays/prod" || te.Budget != 20*time.Millisecond {
		t.Fatalf("err = %v", err)
	}
}
