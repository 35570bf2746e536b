// Package bench runs named scenarios against both sandboxes (one world, one
// fast clock), each scenario once per strategy with the same seed, and prints
// one table of what happened (also written as JSON and Markdown).
//
// Strategies:
//
//   - mpvx: the real binary and pipelines as shipped (order_accept,
//     order_import, stock_sync, stock_full_sync, dispatch), started exactly as
//     the end-to-end tests start it;
//   - scheduled: what peers do (Scheduled): every 15 sandbox minutes, accept
//     waiting orders, import SHIPPING orders and push Peoplevox Available for
//     every SKU; no open-demand math;
//   - naive-events: push Peoplevox Available on every availability event, one
//     STO01 call per event, no coalescing, no open-demand math (NaiveEvents);
//     orders accepted and imported once per OR11 window.
//
// The baselines are small, honest implementations on our own Mirakl and
// Peoplevox clients, in this package. They do not ship (no dispatch flow), so
// despatch → shipped latency is only measured for mpvx.
//
// Reduced form (CI, every scenario × strategy with tiny sizes):
//
//	go test ./tests/bench -run TestBenchReduced -v
//
// Full size (about 16 minutes on 2 cores):
//
//	MPVX_BENCH_FULL=1 go test ./tests/bench -run TestBenchFull -v -timeout 60m
//
// MPVX_BENCH_OUT sets the output directory (default tests/out/bench, ignored
// by git); MPVX_BENCH_SCENARIOS and MPVX_BENCH_STRATEGIES (comma-separated
// names) restrict the run.
package bench
