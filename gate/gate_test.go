package gate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

type fakeGate struct {
	name string
	fn   func() ([]Finding, error)
}

func (g fakeGate) Name() string                                     { return g.name }
func (g fakeGate) Check(context.Context, *Input) ([]Finding, error) { return g.fn() }

func TestRunOrdersFindingsAndRecoversPanics(t *testing.T) {
	gates := []Gate{
		fakeGate{"validate", func() ([]Finding, error) {
			return []Finding{{Gate: "validate", Severity: Warning, Message: "w"}, {Gate: "validate", Severity: Error, File: "b", Message: "e2"}}, nil
		}},
		fakeGate{"test", func() ([]Finding, error) {
			return []Finding{{Gate: "test", Severity: Error, File: "a", Message: "e1"}}, nil
		}},
	}
	rep, err := Run(context.Background(), &Input{}, gates...)
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

	_, err = Run(context.Background(), &Input{}, fakeGate{"boom", func() ([]Finding, error) { panic("nil map") }})
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
