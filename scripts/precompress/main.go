// Command precompress writes brotli (.br) and gzip (.gz) copies of the compressible files below
// each directory it is given, for the web client and the API docs to embed and serve (see
// internal/precompress). It runs from `go generate`:
//
//	go generate ./internal/web ./internal/docsui
//
// -skip names files (relative to the directory) that get no copies, such as templates.
// -check writes nothing: it lists missing or stale copies and exits 1 if there are any.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/wschat/chat/internal/precompress"
)

func main() {
	skipList := flag.String("skip", "", "comma-separated files (relative to each directory) to leave alone")
	checkOnly := flag.Bool("check", false, "only check that the copies are there and up to date")
	flag.Parse()
	skip := map[string]bool{}
	for _, s := range strings.Split(*skipList, ",") {
		if s != "" {
			skip[s] = true
		}
	}
	stale := 0
	for _, dir := range flag.Args() {
		if *checkOnly {
			problems, err := precompress.Stale(os.DirFS(dir), func(name string) bool { return skip[name] })
			if err != nil {
				fmt.Fprintln(os.Stderr, "precompress:", err)
				os.Exit(1)
			}
			for _, p := range problems {
				fmt.Fprintf(os.Stderr, "precompress: %s/%s (run: go generate ./internal/web ./internal/docsui)\n", dir, p)
			}
			stale += len(problems)
			continue
		}
		changed, err := precompress.Write(dir, func(name string) bool { return skip[name] })
		for _, p := range changed {
			fmt.Println("precompress:", p)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "precompress:", err)
			os.Exit(1)
		}
	}
	if stale > 0 {
		os.Exit(1)
	}
}
