package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/mpvx/mpvx/internal/harness"
	msandbox "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	psandbox "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
)

// BenchmarkDespatchToShipment measures the customer's "where is my order"
// window: from the moment Peoplevox despatches a package to the moment the
// shipment with its tracking exists in Mirakl, per package, in real time.
// The real binary runs order_accept, order_import and dispatch against both
// sandboxes (clock ×60, 300 orders of up to 3 lines, up to 3 packages per
// despatch, 30% partial despatches). Run it once:
//
//	go test ./tests/ -run '^$' -bench DespatchToShipment -benchtime 1x
func BenchmarkDespatchToShipment(b *testing.B) {
	const n = 300
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cat := harness.DefaultCatalogue(30, 11)
		weights := map[string]float64{}
		for i := range cat {
			cat[i].Physical += 400
			weights[cat[i].SKU] = 1
		}
		sb, err := harness.Start(harness.Options{Speed: 60, Seed: 11, Catalogue: cat,
			Mirakl: func(c *msandbox.Config) { c.MultiShipment = true },
			Peoplevox: func(c *psandbox.Config) {
				c.PickDelay, c.DespatchDelay, c.PartialDespatchRate, c.MaxPackages = 2*time.Minute, 4*time.Minute, 0.3, 3
			}})
		if err != nil {
			b.Fatal(err)
		}
		sb.Mirakl.StartGenerator(msandbox.Generator{OrdersPerMinute: 120, MaxLines: 3, MaxQuantity: 3, Limit: n, Weights: weights})
		addr, _ := harness.FreeAddr()
		cmd := exec.Command(mpvxBin, "streams", "--no-api", "-o", "config/observability.yaml", "-r", "config/sandbox/resources.yaml",
			"pipelines/order_accept.yaml", "pipelines/order_import.yaml", "pipelines/dispatch.yaml")
		cmd.Dir = ".."
		cmd.Env = os.Environ()
		for k, v := range sb.ConnectorEnv(filepath.Join(b.TempDir(), "mpvx.db"), addr) {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Env = append(cmd.Env, "MPVX_LOG_LEVEL=warn")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		deadline := time.Now().Add(6 * time.Minute)
		for {
			missing, violations := shipmentState(sb, n)
			if len(violations) > 0 {
				b.Fatalf("shipments do not match the despatches: %s", short(violations))
			}
			if len(missing) == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("not every package shipped within 6 minutes: %d left: %s", len(missing), short(missing))
			}
			time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
		}
		b.StopTimer()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()

		despatched := map[string]time.Time{}
		for _, d := range sb.Peoplevox.Despatches() {
			for _, p := range d.Packages {
				despatched[p.TrackingNumber] = d.DespatchDate
			}
		}
		speed := sb.Clock.Speed()
		var lat []time.Duration
		for _, sh := range sb.Mirakl.Truth().Shipments {
			if at, ok := despatched[sh.TrackingNumber]; ok {
				lat = append(lat, time.Duration(float64(sh.Created.Sub(at))/speed))
			}
		}
		sb.Close()
		if len(lat) == 0 {
			b.Fatal("no Mirakl shipment matched a Peoplevox package")
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		b.ReportMetric(float64(q(0.50).Milliseconds()), "p50_ms")
		b.ReportMetric(float64(q(0.99).Milliseconds()), "p99_ms")
		b.ReportMetric(float64(len(lat)), "packages")
		fmt.Fprintf(os.Stderr, "%d packages: despatch → Mirakl shipment p50 %s, p99 %s, max %s (real time)\n", len(lat),
			q(0.5).Round(time.Millisecond), q(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	}
}
