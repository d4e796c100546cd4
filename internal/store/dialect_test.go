package store

import "testing"

func TestDialectBlocks(t *testing.T) {
	const src = "A;\n-- +postgres begin\nPG1;\nPG2;\n-- +postgres end\nB;\n-- +sqlite begin\nSQ;\n-- +sqlite end\n--pg C;\n"
	for _, tc := range []struct{ dialect, want string }{
		{"postgres", "A;\nPG1;\nPG2;\nB;\n--pg C;\n"},
		{"sqlite", "A;\nB;\nSQ;\n--pg C;\n"},
	} {
		got, err := dialectBlocks(src, tc.dialect)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.dialect, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"-- +postgres begin\nX;\n", // never ended
		"-- +postgres end\n",       // never begun
		"-- +postgres begin\n-- +sqlite begin\n-- +sqlite end\n-- +postgres end\n", // nested
	} {
		if got, err := dialectBlocks(bad, "sqlite"); err == nil {
			t.Errorf("%q: got %q, want an error", bad, got)
		}
	}
}
