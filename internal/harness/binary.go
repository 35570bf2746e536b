package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// RunWithBinary builds the real mpvx binary from the module at root (the
// repository's root, relative to the test's folder), sets *bin to its path,
// runs the tests and removes it: the TestMain of packages whose tests run
// the binary as a separate process. Under `go test -race` the binary is
// built with -race as well.
func RunWithBinary(run func() int, root string, bin *string) int {
	dir, err := os.MkdirTemp("", "mpvx-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*bin = filepath.Join(dir, "mpvx")
	args := []string{"build", "-o", *bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/mpvx")...)
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building mpvx for the tests:", err)
		return 1
	}
	return run()
}
