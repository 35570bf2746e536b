// Command mpvx is the Mirakl ⇄ Peoplevox connector: the Benthos engine with
// the Mirakl and Peoplevox plugins compiled in, plus the sandboxes and the
// demo as extra subcommands.
//
//	mpvx streams -o config/observability.yaml pipelines/*.yaml   run the flows
//	mpvx test ./pipelines/...                                      config tests
//	mpvx sandbox --mirakl-addr 127.0.0.1:8081                       the fakes
//	mpvx list                                                       components
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/redpanda-data/benthos/v4/public/service"

	// Benthos core components: no external I/O (pure) and stdlib I/O (io).
	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	// mpvx plugins.
	_ "github.com/mpvx/mpvx/plugins/mirakl"
	_ "github.com/mpvx/mpvx/plugins/money"
	_ "github.com/mpvx/mpvx/plugins/ops"
	_ "github.com/mpvx/mpvx/plugins/peoplevox"
	_ "github.com/mpvx/mpvx/plugins/store"
)

// Version and DateBuilt are set at build time with
// -ldflags "-X main.Version=v1.2.3 -X main.DateBuilt=2026-11-26".
var (
	Version   = "dev"
	DateBuilt = "unknown"
)

func main() {
	os.Exit(run(context.Background(), os.Args))
}

// run is the whole CLI with explicit arguments, so tests drive the real
// binary's commands (`mpvx test`, `mpvx list`) in-process.
func run(ctx context.Context, args []string) int {
	code, err := service.RunCLIToCode(ctx,
		service.CLIOptSetArgs(args...),
		service.CLIOptSetBinaryName("mpvx"),
		service.CLIOptSetProductName("mpvx, the Mirakl ⇄ Peoplevox connector"),
		service.CLIOptSetVersion(Version, DateBuilt),
		service.CLIOptSetDocumentationURL("https://github.com/mpvx/mpvx/tree/main/docs"),
		service.CLIOptAddCommand(sandboxCommand()),
		service.CLIOptAddCommand(demoCommand()),
		service.CLIOptAddCommand(reconcileCommand()),
		service.CLIOptAddCommand(docsCommand()),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return code
}
