package hub

import "testing"

// TestFrameCountsFitFrameTypes: every frame type has its counter.
func TestFrameCountsFitFrameTypes(t *testing.T) {
	if got, want := len(FrameCounts{}), len(FrameTypes); got != want {
		t.Fatalf("FrameCounts has %d counters for %d frame types", got, want)
	}
}
