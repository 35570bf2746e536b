// Package soak pushes many orders and a large catalogue through the real
// mpvx binary (order_accept, order_import, stock_sync, stock_full_sync,
// dispatch) against both sandboxes on a fast clock, and reports throughput
// and the connector's memory per quarter of the run, so that "flat memory"
// (no growth between the second and the last quarter) can be judged.
//
// Orders are placed on Mirakl as buyers would, at most MPVX_SOAK_WINDOW of
// them waiting for their import at any time, so the connector always has
// work and never an unbounded backlog; Peoplevox stock also moves
// (goods-in, web shop) and its warehouse picks and despatches what is
// imported, so the stock and dispatch flows work too. A quarter ends when
// 25, 50, 75 and 100% of the orders were imported.
//
// Memory is read from /proc (VmRSS, VmHWM) and from the connector's own
// /debug/pprof/heap?gc=1&debug=1 (the soak runs it with the repository's
// config/observability.yaml, http.debug_endpoints turned on): the handler
// forces a GC, then prints runtime.MemStats, whose HeapAlloc is the heap
// after GC. Counters come from /metrics.
//
// Reduced form (part of go test, well under a minute; asserts only that the
// run completes, every order is imported exactly once and the report has
// its quarters):
//
//	go test ./tests/soak -run TestSoak -v
//
// Full size (100,000 orders, 50,000 SKUs):
//
//	MPVX_SOAK=1 go test ./tests/soak -run TestSoak -v -timeout 150m
//
// Settings (env): MPVX_SOAK_ORDERS, MPVX_SOAK_SKUS, MPVX_SOAK_SPEED (clock,
// default 600), MPVX_SOAK_WINDOW (orders waiting for import, default 1000),
// MPVX_SOAK_MOVES (stock moves per real second, default 20),
// MPVX_SOAK_PIPELINES (comma-separated), MPVX_SOAK_SAMPLE (memory sampling
// period, default 5s), MPVX_SOAK_STALL (give up after no import for this
// long, default 3m), MPVX_SOAK_FULL_SYNC (real interval of stock_full_sync
// instead of 15 sandbox minutes), MPVX_SOAK_OUT (default tests/out/soak; the
// reduced form writes under reduced/), MPVX_SOAK_PPROF (an address: pprof of
// this process, which runs both sandboxes). The table goes to stdout and
// soak.md, every sample to soak.json, the connector's log to mpvx.log (and
// its store to mpvx.db when orders went missing). ^C ends a run early and
// still writes what was measured; MPVX_SOAK_RENDER=path/to/soak.json writes
// soak.md again from the samples.
package soak
