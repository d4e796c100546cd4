package main

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/wschat/chat/internal/bench"
)

// TestAppendResults: -append keeps what the file holds, puts the new points after it, replaces
// a point run again, keeps the file's machine, and refuses another server's file.
func TestAppendResults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anchor-chat.json")
	names := func(rs []*bench.Result) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name+"/"+r.Scenario)
		}
		return out
	}
	first := map[string]string{"label": "chat", "time": "first"}
	rs, m, err := appendResults(path, []*bench.Result{{Name: "fanout-200-503", Scenario: "1"}}, first)
	if err != nil || m["time"] != "first" || !slices.Equal(names(rs), []string{"fanout-200-503/1"}) {
		t.Fatalf("no file yet: %v %v %v", names(rs), m, err)
	}
	if err := writeJSON(path, rs, m); err != nil {
		t.Fatal(err)
	}
	later := map[string]string{"label": "chat", "time": "later"}
	rs, m, err = appendResults(path, []*bench.Result{{Name: "onechat-500", Scenario: "2"}, {Name: "fanout-200-503", Scenario: "2"}}, later)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"onechat-500/2", "fanout-200-503/2"}; !slices.Equal(names(rs), want) {
		t.Errorf("appended: %v, want %v", names(rs), want)
	}
	if m["time"] != "first" {
		t.Errorf("machine %v: want the file's", m)
	}
	if err := writeJSON(path, []*bench.Result{{Name: "fanout-1000-40", Scenario: "1"}}, first); err != nil {
		t.Fatal(err)
	}
	rs, _, err = appendResults(path, []*bench.Result{{Name: "onechat-500", Scenario: "2"}}, later)
	if want := []string{"fanout-1000-40/1", "onechat-500/2"}; err != nil || !slices.Equal(names(rs), want) {
		t.Errorf("appended: %v (%v), want %v", names(rs), err, want)
	}
	if _, _, err := appendResults(path, nil, map[string]string{"label": "centrifugo"}); err == nil {
		t.Error("a centrifugo run appended to the chat's file")
	}
}
