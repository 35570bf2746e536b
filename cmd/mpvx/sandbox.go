package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	pvxsandbox "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

func sandboxCommand() *cli.Command {
	return &cli.Command{
		Name:  "sandbox",
		Usage: "Serve faithful fakes of the Mirakl seller API and the Peoplevox integration service",
		Description: `Runs the sandboxes until interrupted. They share one world (physical stock per
SKU) and one clock. The control API of each is under /_sandbox/ on its address.

   mpvx sandbox --mirakl-addr 127.0.0.1:8081 --peoplevox-addr 127.0.0.1:8082
   mpvx sandbox --mirakl-addr 127.0.0.1:8081 --speed 60 --seed 7 --scenario flash.json

The Mirakl API key is "sandbox-key". Peoplevox: client id, username and
password "sandbox", endpoint /sandbox/resources/integrationservicev4.asmx.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "mirakl-addr", Usage: "address for the Mirakl sandbox (empty: not started)"},
			&cli.StringFlag{Name: "peoplevox-addr", Usage: "address for the Peoplevox sandbox (empty: not started)"},
			&cli.Float64Flag{Name: "speed", Value: 1, Usage: "sandbox seconds per real second"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed for generated orders and injected faults"},
			&cli.StringFlag{Name: "scenario", Usage: "a JSON scenario file for the Mirakl sandbox (offers, stock, generator, faults)"},
			&cli.StringFlag{Name: "mirakl-key", Value: "sandbox-key", Usage: "API key the Mirakl sandbox accepts"},
		},
		Action: func(c *cli.Context) error {
			if c.String("mirakl-addr") == "" && c.String("peoplevox-addr") == "" {
				return errors.New("nothing to serve: give --mirakl-addr HOST:PORT and/or --peoplevox-addr HOST:PORT")
			}
			clock := sandboxkit.NewClock(c.Float64("speed"))
			world := sandboxkit.NewWorld()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()

			cfg := sandbox.DefaultConfig()
			cfg.APIKey = c.String("mirakl-key")
			cfg.Clock, cfg.World, cfg.Seed = clock, world, c.Int64("seed")
			cfg.Faults = sandboxkit.NewFaults(c.Int64("seed"))
			m := sandbox.New(cfg)
			defer m.Close()
			if path := c.String("scenario"); path != "" {
				sc, err := sandbox.LoadScenario(path)
				if err != nil {
					return err
				}
				if err := m.Apply(sc); err != nil {
					return fmt.Errorf("scenario %s: %w", path, err)
				}
			}
			handlers, addrs := map[string]http.Handler{}, map[string]string{}
			if a := c.String("mirakl-addr"); a != "" {
				handlers["Mirakl"], addrs["Mirakl"] = m.Handler(), a
			}
			if a := c.String("peoplevox-addr"); a != "" {
				pcfg := pvxsandbox.DefaultConfig()
				pcfg.Clock, pcfg.World, pcfg.Seed = clock, world, c.Int64("seed")
				pcfg.Faults = sandboxkit.NewFaults(c.Int64("seed") + 1)
				p := pvxsandbox.New(pcfg)
				defer p.Close()
				handlers["Peoplevox"], addrs["Peoplevox"] = p.Handler(), a
			}
			return serve(ctx, handlers, addrs)
		},
	}
}

// serve runs one HTTP server per named handler until ctx ends.
func serve(ctx context.Context, handlers map[string]http.Handler, addrs map[string]string) error {
	errc := make(chan error, len(handlers))
	var servers []*http.Server
	for name, h := range handlers {
		ln, err := net.Listen("tcp", addrs[name])
		if err != nil {
			return fmt.Errorf("%s sandbox: cannot listen on %s: %w", name, addrs[name], err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		fmt.Fprintf(os.Stderr, "%s sandbox listening on http://%s (control API under /_sandbox/)\n", name, ln.Addr())
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutdown)
	}
	return nil
}
