-- +goose Up
-- Search folds letters as Unicode case folding does (chat.FoldSearch): besides lower case, the
-- lowercase letters whose folding is another letter: a Greek final sigma (ς) is σ, so that
-- "ΚΟΣΜΟΣ" and "κόσμος" find each other; the micro sign is μ, the long s is s, the Greek
-- symbol forms (ϐ ϑ ϕ ϖ ϰ ϱ ϵ) their letters, the old Cyrillic forms (U+1C80-1C88) theirs.
-- The index holds folded copies of the messages (searchindex.go): fold those that hold one of
-- these letters again, as FoldSearch now does (TestFoldMigrationCoversFoldSearch checks that
-- this statement replaces every letter FoldSearch folds apart from lower case).
UPDATE message_search SET body = replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(body, 'µ', 'μ'), 'ſ', 's'), 'ͅ', 'ι'), 'ς', 'σ'), 'ϐ', 'β'), 'ϑ', 'θ'), 'ϕ', 'φ'), 'ϖ', 'π'), 'ϰ', 'κ'), 'ϱ', 'ρ'), 'ϵ', 'ε'), 'ᲀ', 'в'), 'ᲁ', 'д'), 'ᲂ', 'о'), 'ᲃ', 'с'), 'ᲄ', 'т'), 'ᲅ', 'т'), 'ᲆ', 'ъ'), 'ᲇ', 'ѣ'), 'ᲈ', 'ꙋ'), 'ẛ', 'ṡ'), 'ι', 'ι')
WHERE body <> replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(body, 'µ', 'μ'), 'ſ', 's'), 'ͅ', 'ι'), 'ς', 'σ'), 'ϐ', 'β'), 'ϑ', 'θ'), 'ϕ', 'φ'), 'ϖ', 'π'), 'ϰ', 'κ'), 'ϱ', 'ρ'), 'ϵ', 'ε'), 'ᲀ', 'в'), 'ᲁ', 'д'), 'ᲂ', 'о'), 'ᲃ', 'с'), 'ᲄ', 'т'), 'ᲅ', 'т'), 'ᲆ', 'ъ'), 'ᲇ', 'ѣ'), 'ᲈ', 'ꙋ'), 'ẛ', 'ṡ'), 'ι', 'ι');

-- +goose Down
-- Nothing to undo: the old folding finds what it found before wherever a copy holds none of
-- these letters, and the searches check every hit against the message's body.
