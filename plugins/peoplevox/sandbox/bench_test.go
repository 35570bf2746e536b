package sandbox

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// The benchmarks run the calls the connector makes against a sandbox the
// size of the full soak: 50,000 items and 100,000 sales orders, the last
// 1,000 allocated and waiting in the warehouse, the others despatched.
//
//	go test ./plugins/peoplevox/sandbox -run '^$' -bench . -benchtime 2s
const (
	benchItems  = 50_000
	benchOrders = 100_000
	benchOpen   = 1_000
)

var (
	benchOnce sync.Once
	benchSrv  *Server
)

// benchServer is shared by the benchmarks (building it takes seconds).
// Benchmarks that add orders add a few hundred at most, which does not
// change the sizes measured.
func benchServer(b *testing.B) *Server {
	b.Helper()
	benchOnce.Do(func() { benchSrv = buildBenchServer() })
	return benchSrv
}

func benchCode(i int) string { return fmt.Sprintf("JM-%06d", i+1) }

func benchNumber(i int) string { return fmt.Sprintf("SO-%07d", i+1) }

func buildBenchServer() *Server {
	cfg := DefaultConfig()
	cfg.Clock = sandboxkit.NewClock(1) // nothing is picked while the benchmarks run
	cfg.Jitter = 0
	s := New(cfg)
	seeds := make([]ItemSeed, benchItems)
	for i := range seeds {
		seeds[i] = ItemSeed{ItemCode: benchCode(i), Name: "Item " + strconv.Itoa(i+1), Barcode: fmt.Sprintf("5055%09d", i+1), OnHand: 200 + i%300}
	}
	s.SeedItems(seeds...)
	// Orders are built in place: through SaveData, 100,000 of them took
	// hours before the sandbox kept indexes.
	rng := rand.New(rand.NewSource(1))
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	for i := 0; i < benchOrders; i++ {
		num := benchNumber(i)
		open := i >= benchOrders-benchOpen
		s.orderSeq++
		o := &order{number: num, seq: s.orderSeq, status: StatusDespatched, created: now, modified: now,
			fields: map[string]string{"SalesOrderNumber": num, "Email": "buyer@example.com", "ChannelName": "Mirakl",
				"TotalSale": "12.34", "ShippingAddressCountry": "GB", "ServiceType": "Royal Mail Tracked 24"},
			headerWrites: 1, history: []StatusChange{{StatusNew, now}}}
		if open {
			o.status = StatusAllocated
		}
		for j := 0; j < 1+rng.Intn(3); j++ {
			qty := 1 + rng.Intn(2)
			l := &orderLine{line: strconv.Itoa(j + 1), itemCode: benchCode(rng.Intn(benchItems)), qty: qty, writes: 1,
				fields: map[string]string{"SalesOrderNumber": num, "QuantityOrdered": strconv.Itoa(qty), "Line": strconv.Itoa(j + 1), "SalePrice": "6.17"}}
			l.fields["ItemCode"] = l.itemCode
			if open {
				l.allocated = qty
			} else {
				l.despatched = qty
			}
			o.lines = append(o.lines, l)
		}
		s.orders[num] = o
		if !open {
			s.despatchSeq++
			s.packageSeq++
			d := &despatch{number: strconv.Itoa(s.despatchSeq), order: num, at: now}
			pk := &pkg{number: strconv.Itoa(s.packageSeq), carrier: carriers[0], serviceName: carriers[0].service, tracking: "RM" + strconv.Itoa(100000000+i) + "GB"}
			for _, l := range o.lines {
				pk.items = append(pk.items, PackageItem{ItemCode: l.itemCode, Line: l.line, Quantity: l.qty})
			}
			d.packages = append(d.packages, pk)
			s.despatches = append(s.despatches, d)
		}
	}
	s.rebuildIndexLocked()
	return s
}

// orClause is "Field.Equals("a") OR Field.Equals("b") ...", as InChunks builds it.
func orClause(field string, values []string) string {
	terms := make([]string, len(values))
	for i, v := range values {
		terms[i] = field + `.Equals("` + v + `")`
	}
	return strings.Join(terms, " OR ")
}

// hundred returns 100 values spread over n, shifted by round.
func hundred(n, round int, name func(int) string) []string {
	out := make([]string, 100)
	for i := range out {
		out[i] = name((round*7919 + i*(n/100)) % n)
	}
	return out
}

func mustOK(b *testing.B, r integrationResponse, want int) {
	b.Helper()
	if r.ResponseID != 0 || (want >= 0 && r.TotalCount != want) {
		b.Fatalf("ResponseId %d, TotalCount %d (want %d): %.200s", r.ResponseID, r.TotalCount, want, r.Detail)
	}
}

// BenchmarkGetDataItemTypes is the item check of order_accept / order_import:
// 100 item codes per call.
func BenchmarkGetDataItemTypes(b *testing.B) {
	s := benchServer(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := s.getData(getRequest{TemplateName: TemplateItemTypes, PageNo: 1, ItemsPerPage: 200,
			SearchClause: orClause("ItemCode", hundred(benchItems, i, benchCode))})
		mustOK(b, r, 100)
	}
}

// BenchmarkGetDataSalesOrders is the import's read-before-write: 100 Sales
// Order numbers, headers.
func BenchmarkGetDataSalesOrders(b *testing.B) {
	s := benchServer(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := s.getData(getRequest{TemplateName: TemplateSalesOrders, SearchClause: orClause("SalesOrderNumber", hundred(benchOrders, i, benchNumber))})
		mustOK(b, r, 100)
	}
}

// BenchmarkGetDataSalesOrderItems is the same read for the lines.
func BenchmarkGetDataSalesOrderItems(b *testing.B) {
	s := benchServer(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := s.getData(getRequest{TemplateName: TemplateSalesOrderItems, SearchClause: orClause("SalesOrderNumber", hundred(benchOrders, i, benchNumber))})
		mustOK(b, r, -1)
	}
}

// BenchmarkReportAvailability is the stock push's read of 100 items'
// Available (client.Availability with a site).
func BenchmarkReportAvailability(b *testing.B) {
	s := benchServer(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clause := "(" + orClause("[Item code]", hundred(benchItems, i, benchCode)) + `) AND [Site reference].Equals("PrimarySite")`
		r := s.getReportData(getReportRequest{TemplateName: ReportItemInventorySummary, SearchClause: clause, Columns: "[Item code],[Available]", ItemsPerPage: 500})
		mustOK(b, r, 100)
	}
}

// BenchmarkReportInventoryPage is one page of the full stock sync (1,000
// items ordered by item code); b.N pages cycle over the 50 pages.
func BenchmarkReportInventoryPage(b *testing.B) {
	s := benchServer(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := s.getReportData(getReportRequest{TemplateName: ReportItemInventorySummary, PageNo: 1 + i%(benchItems/1000), ItemsPerPage: 1000,
			SearchClause: `[Site reference].Equals("PrimarySite")`, Columns: "[Item code],[Available]", OrderBy: "[Item code] asc"})
		mustOK(b, r, benchItems)
	}
}

// BenchmarkReportDespatches is the dispatch flow's read of 100 Sales
// Orders' despatches.
func BenchmarkReportDespatches(b *testing.B) {
	s := benchServer(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := s.getReportData(getReportRequest{TemplateName: ReportDespatchSummary, ItemsPerPage: 1000,
			SearchClause: orClause("[Salesorder number]", hundred(benchOrders-benchOpen, i, benchNumber)),
			Columns:      "[Salesorder number],[Despatch number],[Package number],[Carrier],[Despatch date],[Tracking number],[Item code],[No of items],[Line]",
			OrderBy:      "[Despatch number] asc"})
		mustOK(b, r, -1)
	}
}

var benchSaved = 0

// BenchmarkSaveOrder is one order import: SaveData of the header, then of
// its two lines (allocation, availability check).
func BenchmarkSaveOrder(b *testing.B) {
	s := benchServer(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchSaved++
		num := fmt.Sprintf("BENCH-%07d", benchSaved)
		r := s.saveData(saveRequest{TemplateName: TemplateSalesOrders,
			CsvData: "SalesOrderNumber,Email,ServiceType,TotalSale\n" + num + ",buyer@example.com,Royal Mail Tracked 24,12.34\n"})
		mustOK(b, r, 1)
		a, c := benchCode(benchSaved*7%benchItems), benchCode(benchSaved*13%benchItems)
		r = s.saveData(saveRequest{TemplateName: TemplateSalesOrderItems,
			CsvData: "SalesOrderNumber,ItemCode,QuantityOrdered,Line\n" + num + "," + a + ",1,1\n" + num + "," + c + ",2,2\n"})
		mustOK(b, r, 2)
		if r.Detail != "" {
			b.Fatal(r.Detail)
		}
	}
}

// BenchmarkDespatchNow saves an order and despatches it at once (the
// warehouse's last stage: despatch, re-allocation, availability).
func BenchmarkDespatchNow(b *testing.B) {
	s := benchServer(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchSaved++
		num := fmt.Sprintf("BENCH-%07d", benchSaved)
		s.saveData(saveRequest{TemplateName: TemplateSalesOrders, CsvData: "SalesOrderNumber,Email\n" + num + ",buyer@example.com\n"})
		s.saveData(saveRequest{TemplateName: TemplateSalesOrderItems, CsvData: "SalesOrderNumber,ItemCode,QuantityOrdered,Line\n" + num + "," + benchCode(benchSaved*11%benchItems) + ",1,1\n"})
		if err := s.DespatchNow(num); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStockMove is the soak's stock mover: Available, then goods in or
// a web-shop sale.
func BenchmarkStockMove(b *testing.B) {
	s := benchServer(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		code := benchCode(i * 31 % benchItems)
		if s.Available(code) > 20 && i%2 == 1 {
			s.Consume(code, 1)
		} else {
			s.Receive(code, 1)
		}
	}
}
