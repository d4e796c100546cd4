package chat

import (
	"os"
	"strings"
	"testing"
	"unicode"
)

// TestFoldMigrationCoversFoldSearch: the search index holds folded copies of the messages, so
// migration 00014 folds anew every letter that FoldRune folds apart from lower case. A letter
// FoldRune folds that the migration leaves alone would be missed in the messages indexed before.
func TestFoldMigrationCoversFoldSearch(t *testing.T) {
	b, err := os.ReadFile("../store/migrations/00014_search_fold.sql")
	if err != nil {
		t.Fatal(err)
	}
	sql := string(b)
	n := 0
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if f := FoldRune(r); f != unicode.ToLower(r) {
			n++
			if !strings.Contains(sql, "'"+string(r)+"', '"+string(f)+"'") {
				t.Errorf("FoldRune(%U %c) = %U %c, which migration 00014 does not replace", r, r, f, f)
			}
		}
	}
	if n == 0 {
		t.Error("FoldRune folds nothing apart from lower case")
	}
	for _, c := range [][2]string{{"ΚΌΣΜΟΣ", "κόσμοσ"}, {"κόσμος", "κόσμοσ"}, {"ſ", "s"}, {"µ", "μ"}, {"ı", "ı"}, {"İ", "i"}, {"Straße", "straße"}} {
		if got := FoldSearch(c[0]); got != c[1] {
			t.Errorf("FoldSearch(%q) = %q, want %q", c[0], got, c[1])
		}
	}
}
