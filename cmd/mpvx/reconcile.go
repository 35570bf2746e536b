package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mpvx/mpvx/plugins/mirakl"
	"github.com/mpvx/mpvx/plugins/peoplevox"
	"github.com/mpvx/mpvx/plugins/reconcile"
	"github.com/mpvx/mpvx/plugins/store"
)

func reconcileCommand() *cli.Command {
	return &cli.Command{
		Name:  "reconcile",
		Usage: "Compare Mirakl, Peoplevox and the ledger now, re-drive what slipped, and write a report",
		Description: `The reconcile pipeline's job, on demand. Reads the same environment as the
pipelines (MIRAKL_URL, MIRAKL_API_KEY, MIRAKL_SHOP_ID, PEOPLEVOX_URL,
PEOPLEVOX_CLIENT_ID, PEOPLEVOX_USERNAME, PEOPLEVOX_PASSWORD, MPVX_STORE_DSN;
MIRAKL_<OPERATION>_INTERVAL overrides a Mirakl call budget, e.g.
MIRAKL_OR11_INTERVAL=15m). Repairs are handed to the running flows as
exceptions marked for replay: order_import and dispatch must be running for
them to take effect.

   mpvx reconcile --since 48h --dry-run`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "since", Value: 48 * time.Hour, Usage: "orders updated in Mirakl since this long ago (Mirakl's clock)"},
			&cli.DurationFlag{Name: "grace", Value: envDuration("MPVX_RECONCILE_GRACE", 30*time.Minute), Usage: "how long (Mirakl time) a flow may take before a difference is a gap"},
			&cli.BoolFlag{Name: "dry-run", Usage: "report only, repair nothing"},
			&cli.StringFlag{Name: "report-dir", Value: envOr("MPVX_REPORT_DIR", reconcile.DefaultReportDir), Usage: "where the CSV and HTML reports go"},
			&cli.BoolFlag{Name: "no-stock", Usage: "skip the offer quantity comparison (OF52)"},
			&cli.BoolFlag{Name: "no-finance", Usage: "skip the settlement comparison (TL02)"},
			&cli.StringFlag{Name: "site", Value: os.Getenv("MPVX_SITE"), Usage: "Peoplevox site reference for availability"},
			&cli.BoolFlag{Name: "json", Usage: "print the whole report as JSON instead of the table"},
		},
		Action: runReconcile,
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

func runReconcile(c *cli.Context) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var missing []string
	for _, n := range []string{"MIRAKL_URL", "MIRAKL_API_KEY", "PEOPLEVOX_URL", "PEOPLEVOX_CLIENT_ID", "PEOPLEVOX_USERNAME", "PEOPLEVOX_PASSWORD"} {
		if os.Getenv(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("mpvx reconcile: set %s (the same environment the pipelines use, e.g. mpvx reconcile after `set -a; . client.env`)", strings.Join(missing, ", "))
	}
	shop := int64(0)
	if v := os.Getenv("MIRAKL_SHOP_ID"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("mpvx reconcile: MIRAKL_SHOP_ID=%q is not a number", v)
		}
		shop = n
	}
	// The running connector polls OR11 from its own budget: this process
	// shares Mirakl's limit with it, so a 429 is expected now and then and
	// waited out (Retry-After) rather than fatal.
	retry := mirakl.DefaultRetryPolicy()
	retry.MaxAttempts = 30
	mc, err := mirakl.New(mirakl.Options{BaseURL: os.Getenv("MIRAKL_URL"), APIKey: os.Getenv("MIRAKL_API_KEY"), ShopID: shop, Retry: &retry})
	if err != nil {
		return err
	}
	for _, op := range append(mirakl.Operations(), mirakl.OpTL02) {
		name := "MIRAKL_" + string(op) + "_INTERVAL"
		if v := os.Getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("mpvx reconcile: %s=%q is not a duration like 1m", name, v)
			}
			if err := mc.Governor().SetBudget(op, mirakl.Budget{Every: d, Burst: 1}); err != nil {
				return err
			}
		}
	}
	pc, err := peoplevox.New(peoplevox.Config{BaseURL: os.Getenv("PEOPLEVOX_URL"), ClientID: os.Getenv("PEOPLEVOX_CLIENT_ID"),
		Username: os.Getenv("PEOPLEVOX_USERNAME"), Password: peoplevox.Secret(os.Getenv("PEOPLEVOX_PASSWORD"))})
	if err != nil {
		return err
	}
	dsn := envOr("MPVX_STORE_DSN", store.DefaultDSN())
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("mpvx reconcile: opening the store %s: %w", dsn, err)
	}
	defer st.Close()

	out := c.App.Writer
	opts := reconcile.Options{Mirakl: mc, Peoplevox: pc, Store: st, Since: c.Duration("since"), Grace: c.Duration("grace"),
		DryRun: c.Bool("dry-run"), Stock: !c.Bool("no-stock"), Finance: !c.Bool("no-finance"), Site: c.String("site"),
		Logger: slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	r, err := reconcile.Execute(ctx, opts, c.String("report-dir"))
	if err != nil {
		return fmt.Errorf("mpvx reconcile: %w", err)
	}
	alert, _ := json.Marshal(r.Alert())
	slog.New(slog.NewJSONHandler(c.App.ErrWriter, nil)).Info("reconcile_summary", "alert", json.RawMessage(alert))
	if c.Bool("json") {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printReconcile(out, r)
	return nil
}

func printReconcile(w io.Writer, r *reconcile.Report) {
	mode := ""
	if r.DryRun {
		mode = " (dry run: nothing repaired)"
	}
	fmt.Fprintf(w, "Reconciliation%s: %d orders updated since %s (Mirakl time), %d offers, %d settlement lines\n\n",
		mode, r.Orders, r.From.Format(time.RFC3339), r.Offers, r.Settled)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GAP\tCOUNT")
	for _, kc := range r.Summary() {
		fmt.Fprintf(tw, "%s\t%d\n", kc.Kind, kc.Count)
	}
	fmt.Fprintf(tw, "total\t%d\n", r.Total())
	_ = tw.Flush()
	if len(r.Gaps) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tORDER/SKU\tACTION")
		for _, g := range r.Gaps {
			subject := g.OrderID
			if subject == "" {
				subject = g.SKU
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Kind, subject, g.Action)
		}
		_ = tw.Flush()
	}
	fmt.Fprintf(w, "\nReport: %s\n        %s\n", r.CSVPath, r.HTMLPath)
}
