package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mpvx/mpvx/internal/harness"
)

// Config is one bench run.
type Config struct {
	Bin        string // mpvx binary
	Root       string // repository root
	Scratch    string // temporary directory for stores and logs
	Scenarios  []Scenario
	Strategies []Strategy
	Logf       func(format string, args ...any)
	// LogDir, when set, receives the connector log of each mpvx run.
	LogDir string
}

// Run runs every scenario once per strategy, in that order, with the same
// seed, on fresh sandboxes each time.
func Run(ctx context.Context, c Config) []Result {
	var out []Result
	for _, sc := range c.Scenarios {
		for _, st := range c.Strategies {
			dir := filepath.Join(c.Scratch, sc.Name+"-"+st.Name())
			_ = os.MkdirAll(dir, 0o755)
			c.Logf("%s × %s: %s", sc.Name, st.Name(), sc.Sizes)
			r := runOne(ctx, c, sc, st, dir)
			if r.Err != "" {
				c.Logf("%s × %s: %s", sc.Name, st.Name(), r.Err)
			}
			out = append(out, r)
		}
	}
	return out
}

func runOne(ctx context.Context, c Config, sc Scenario, st Strategy, dir string) (res Result) {
	res = Result{Scenario: sc.Name, Sizes: sc.Sizes, Strategy: st.Name()}
	wall := time.Now()
	defer func() { res.WallSeconds = time.Since(wall).Seconds() }()
	sb, err := harness.Start(harness.Options{Speed: sc.Speed, Seed: sc.Seed, Catalogue: sc.Catalogue, Peoplevox: sc.Peoplevox})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer sb.Close()
	if sc.Setup != nil {
		if err := sc.Setup(sb); err != nil {
			res.Err = err.Error()
			return res
		}
	}
	run, err := st.Start(ctx, &Env{Sandboxes: sb, Bin: c.Bin, Root: c.Root, Dir: dir, Logf: c.Logf})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			run.Stop()
		}
	}
	defer stop()

	rec := &Recorder{}
	start := sb.Clock.Now()
	loadCtx, cancelLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); sc.Load(loadCtx, sb, rec) }()
	end := sb.Clock.Until(start.Add(sc.Horizon))
	poll := time.NewTicker(200 * time.Millisecond)
wait:
	for {
		select {
		case <-end:
			break wait
		case <-ctx.Done():
			res.Err = ctx.Err().Error()
			break wait
		case <-poll.C:
			if sc.Done != nil && sc.Done(sb) {
				break wait
			}
		}
	}
	poll.Stop()
	cancelLoad()
	<-loadDone
	sb.Mirakl.StopGenerator()
	if rss, cpu, ok := run.Resources(); ok {
		res.PeakRSSMB, res.CPUSeconds = float64(rss)/(1<<20), cpu.Seconds()
	} else {
		res.InProcess = true
	}
	measure(&res, sc, sb, start, rec)
	res.StrategyErrors = run.Errors()
	stop()
	if c.LogDir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, "mpvx.log")); err == nil {
			_ = os.MkdirAll(c.LogDir, 0o755)
			_ = os.WriteFile(filepath.Join(c.LogDir, sc.Name+"-"+st.Name()+".log"), b, 0o644)
		}
	}
	c.Logf("%s × %s: %d orders, oversold %d, %d × 429 %v, %s", sc.Name, st.Name(), res.Orders, res.OversoldUnits, res.RateLimited, res.RateLimitedByOp,
		fmt.Sprintf("%.0f s wall", time.Since(wall).Seconds()))
	return res
}
