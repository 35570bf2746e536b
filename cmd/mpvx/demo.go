package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mpvx/mpvx"
	"github.com/mpvx/mpvx/internal/harness"
	msandbox "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	"github.com/mpvx/mpvx/plugins/store"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "Run every flow against the built-in sandboxes and watch orders go through",
		Description: `Starts the Mirakl and Peoplevox sandboxes in this process (one world, a clock
running --speed times faster than real time), a steady stream of customer
orders, and every pipeline in streams mode on a fresh embedded SQLite store.
Prints progress every few seconds and, with --for, a summary at the end; the
exit code is 1 if any order was oversold or auto-refused or any exception is
left open.

   mpvx demo --for 60s`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "for", Usage: "run this long then print a summary (0: until interrupted)"},
			&cli.Float64Flag{Name: "speed", Value: 60, Usage: "sandbox seconds per real second"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the catalogue and the customers"},
			&cli.Float64Flag{Name: "orders-per-minute", Value: 4, Usage: "customer orders per sandbox minute"},
			&cli.StringFlag{Name: "store", Value: "./data/demo.db", Usage: "SQLite file of the demo (recreated at start)"},
			&cli.StringFlag{Name: "pipelines", Value: "./pipelines", Usage: "pipelines to run (the built-in copy when the folder does not exist)"},
			&cli.StringFlag{Name: "http", Value: "127.0.0.1:4195", Usage: "address of mpvx's HTTP server (/ready, /metrics)"},
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "pipeline log level"},
		},
		Action: runDemo,
	}
}

func runDemo(c *cli.Context) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	dsn := c.String("store")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(dsn + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cannot reset the demo store %s: %w", dsn, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dsn), 0o755); err != nil {
		return err
	}

	sb, err := harness.Start(harness.Options{Speed: c.Float64("speed"), Seed: c.Int64("seed")})
	if err != nil {
		return err
	}
	defer sb.Close()

	files, cleanup, err := pipelineFiles(c.String("pipelines"))
	if err != nil {
		return err
	}
	defer cleanup()

	httpAddr := c.String("http")
	if free, err := harness.FreeAddr(); err == nil && !addrFree(httpAddr) {
		httpAddr = free
	}
	env := sb.ConnectorEnv(dsn, httpAddr)
	for k, v := range env {
		_ = os.Setenv(k, v)
	}
	_ = os.Setenv("MPVX_LOG_LEVEL", c.String("log-level"))

	fmt.Printf("mpvx demo: Mirakl sandbox %s, Peoplevox sandbox %s, clock ×%g\n", sb.MiraklURL, sb.PeoplevoxURL, c.Float64("speed"))
	fmt.Printf("           store %s, mpvx HTTP http://%s (/ready, /metrics)\n", dsn, httpAddr)
	fmt.Printf("           dashboard %s (operator token %s, viewer token %s)\n",
		env["MPVX_DASHBOARD_PUBLIC_URL"], env["MPVX_DASHBOARD_OPERATOR_TOKEN"], env["MPVX_DASHBOARD_VIEWER_TOKEN"])
	fmt.Printf("           pipelines: %s\n\n", strings.Join(baseNames(files.pipelines), ", "))

	sb.Mirakl.StartGenerator(msandbox.Generator{OrdersPerMinute: c.Float64("orders-per-minute"), MaxLines: 3, MaxQuantity: 2})

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	args := append([]string{"mpvx", "streams", "--no-api", "-o", files.observability, "-r", files.resources}, files.pipelines...)
	done := make(chan int, 1)
	go func() { done <- run(runCtx, args) }()

	start := time.Now()
	var deadline <-chan time.Time
	if d := c.Duration("for"); d > 0 {
		deadline = time.After(d)
	}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			fmt.Println(progressLine(ctx, sb, dsn, time.Since(start)))
			continue
		case code := <-done:
			return fmt.Errorf("the pipelines stopped on their own (exit %d); see the log above", code)
		case <-deadline:
		case <-ctx.Done():
		}
		break
	}
	sb.Mirakl.StopGenerator()
	cancelRun()
	<-done
	return summary(sb, dsn, time.Since(start))
}

// demoFiles are the paths streams mode needs.
type demoFiles struct {
	observability, resources string
	pipelines                []string
}

// pipelineFiles uses the pipelines on disk when the folder exists (so a
// consultant's edits show), else writes the binary's built-in copy to a
// temporary folder.
func pipelineFiles(dir string) (demoFiles, func(), error) {
	noop := func() {}
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		root := filepath.Dir(filepath.Clean(dir))
		f := demoFiles{observability: filepath.Join(root, "config", "observability.yaml"), resources: filepath.Join(root, "config", "sandbox", "resources.yaml")}
		matches, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, m := range matches {
			if !strings.HasSuffix(m, "_benthos_test.yaml") {
				f.pipelines = append(f.pipelines, m)
			}
		}
		if _, err := os.Stat(f.resources); err == nil && len(f.pipelines) > 0 {
			return f, noop, nil
		}
	}
	tmp, err := os.MkdirTemp("", "mpvx-demo-")
	if err != nil {
		return demoFiles{}, noop, err
	}
	cleanup := func() { _ = os.RemoveAll(tmp) }
	err = fs.WalkDir(mpvx.Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := mpvx.Files.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(tmp, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		cleanup()
		return demoFiles{}, noop, err
	}
	f, _, err := pipelineFiles(filepath.Join(tmp, "pipelines"))
	return f, cleanup, err
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = strings.TrimSuffix(filepath.Base(p), ".yaml")
	}
	return out
}

func addrFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// counts is what the demo reports.
type counts struct {
	orders, waiting, accepted, refused, autoRefused, oversold int
	shipping, imported, despatched, cancelled, shipped        int
	exceptions                                                map[string]int
}

func measure(ctx context.Context, sb *harness.Sandboxes, dsn string) counts {
	mt := sb.Mirakl.Truth()
	pt := sb.Peoplevox.Truth()
	c := counts{orders: len(mt.Orders), autoRefused: mt.AutoRefused, oversold: mt.OversoldUnits, exceptions: map[string]int{}}
	for state, n := range mt.OrdersByState {
		switch state {
		case "WAITING_ACCEPTANCE", "STAGING":
			c.waiting += n
		case "REFUSED":
			c.refused += n
		default:
			c.accepted += n
		}
		if state == "SHIPPING" {
			c.shipping += n
		}
		if state == "CANCELED" {
			c.cancelled += n
		}
		if state == "SHIPPED" {
			c.shipped += n
		}
	}
	c.refused -= mt.AutoRefused
	c.imported = len(pt.SalesOrders)
	for _, so := range pt.SalesOrders {
		if so.Status == "Despatched" {
			c.despatched++
		}
	}
	if st, err := store.Shared(ctx, dsn); err == nil {
		if open, err := st.CountOpenExceptions(ctx); err == nil {
			c.exceptions = open
		}
		_ = st.Close()
	}
	return c
}

func (c counts) exceptionText() string {
	if len(c.exceptions) == 0 {
		return "0"
	}
	var parts []string
	for t, n := range c.exceptions {
		parts = append(parts, fmt.Sprintf("%s=%d", t, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func progressLine(ctx context.Context, sb *harness.Sandboxes, dsn string, elapsed time.Duration) string {
	c := measure(ctx, sb, dsn)
	return fmt.Sprintf("[%5s] orders %d · awaiting acceptance %d · accepted %d · imported into Peoplevox %d · despatched %d · shipped in Mirakl %d · exceptions %s · oversold %d · auto-refused %d",
		elapsed.Round(time.Second), c.orders, c.waiting, c.accepted, c.imported, c.despatched, c.shipped, c.exceptionText(), c.oversold, c.autoRefused)
}

func summary(sb *harness.Sandboxes, dsn string, elapsed time.Duration) error {
	c := measure(context.Background(), sb, dsn)
	fmt.Printf("\nmpvx demo summary after %s (%s of sandbox time)\n", elapsed.Round(time.Second), sb.Clock.Sandbox(elapsed).Round(time.Minute))
	rows := [][2]string{
		{"customer orders placed on Mirakl", fmt.Sprint(c.orders)},
		{"accepted by mpvx", fmt.Sprint(c.accepted)},
		{"refused by mpvx (policy)", fmt.Sprint(c.refused)},
		{"still awaiting acceptance", fmt.Sprint(c.waiting)},
		{"imported as Peoplevox Sales Orders", fmt.Sprint(c.imported)},
		{"despatched by the warehouse", fmt.Sprint(c.despatched)},
		{"shipped in Mirakl with tracking", fmt.Sprint(c.shipped)},
		{"open exceptions", c.exceptionText()},
		{"oversold units", fmt.Sprint(c.oversold)},
		{"orders auto-refused by Mirakl", fmt.Sprint(c.autoRefused)},
	}
	for _, r := range rows {
		fmt.Printf("  %-38s %s\n", r[0], r[1])
	}
	var problems []string
	if c.oversold > 0 {
		problems = append(problems, fmt.Sprintf("%d oversold units", c.oversold))
	}
	if c.autoRefused > 0 {
		problems = append(problems, fmt.Sprintf("%d orders auto-refused", c.autoRefused))
	}
	if len(c.exceptions) > 0 {
		problems = append(problems, "open exceptions: "+c.exceptionText())
	}
	if len(problems) > 0 {
		return cli.Exit("demo finished with problems: "+strings.Join(problems, "; "), 1)
	}
	fmt.Println("  all good: no oversold units, no auto-refusals, no open exceptions")
	return nil
}
