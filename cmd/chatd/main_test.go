package main

import (
	"flag"
	"os"
	"testing"
)

// TestMain lets more of this package's tests run at once than go test's default (GOMAXPROCS):
// they start whole chatd instances and mostly wait on them (push delays, reconnects, shutdowns)
// — about 30 s of CPU in 105 s at two at a time on two cores. A -test.parallel given on the
// command line wins.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", "4")
	}
	os.Exit(m.Run())
}
