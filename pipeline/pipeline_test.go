package pipeline

import "testing"

// The gates Run uses record details for reports but are Gates(): same
// gates, same order, same names (findings are sorted by them).
func TestRecordingGatesAreGates(t *testing.T) {
	want, got := Gates(), recordingGates(&Outcome{})
	if len(got) != len(want) {
		t.Fatalf("%d recording gates, %d gates", len(got), len(want))
	}
	for i := range want {
		if got[i].Name() != want[i].Name() {
			t.Errorf("gate %d: %s, want %s", i, got[i].Name(), want[i].Name())
		}
	}
}
