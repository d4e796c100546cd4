package push_test

import (
	"flag"
	"os"
	"testing"
)

// TestMain lets more of this package's tests run at once than go test's default (GOMAXPROCS):
// they spend their time waiting for push delays to pass (1.5 s, then three more to see that
// nothing else comes), not computing — about 17 s of CPU in 100 s at two at a time on two
// cores. A -test.parallel given on the command line wins.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", "8")
	}
	os.Exit(m.Run())
}
