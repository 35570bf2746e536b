package tests

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mpvx/mpvx/internal/harness"
	msandbox "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	psandbox "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/store"
)

// chromiumPath is the Debian chromium package's binary (installed by .ci/run).
const chromiumPath = "/usr/bin/chromium"

// cdp is a minimal Chrome DevTools Protocol client for one page.
type cdp struct {
	t    *testing.T
	conn *websocket.Conn
	mu   sync.Mutex
	id   int
}

// startChromium launches headless Chromium with remote debugging and
// attaches to its first page.
func startChromium(t *testing.T) *cdp {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := fmt.Sprintf("the dashboard browser test needs Chromium at %s: apt-get update && apt-get install -y chromium (.ci/run does it)", chromiumPath)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// Not t.TempDir: Chromium's helper processes may still write to the
	// profile for a moment after it is killed, and a failed removal would
	// fail the test. It is removed after the whole process group is gone.
	profile, err := os.MkdirTemp("", "mpvx-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(chromiumPath, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--window-size=1280,900", "about:blank")
	logPath := filepath.Join(profile, "chromium.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // Chromium and its helpers
		<-done
		_ = os.RemoveAll(profile)
	})
	// Chromium writes the port it chose to DevToolsActivePort.
	var port string
	eventually(t, 30*time.Second, nil, func() string {
		b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		if err != nil || !strings.Contains(string(b), "\n") {
			log, _ := os.ReadFile(logPath)
			return "Chromium has not opened its debugging port yet; its log: " + string(log)
		}
		port = strings.SplitN(string(b), "\n", 2)[0]
		return ""
	})
	var wsURL string
	eventually(t, 30*time.Second, nil, func() string {
		resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var targets []struct{ Type, WebSocketDebuggerURL string }
		if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
			return err.Error()
		}
		for _, tg := range targets {
			if tg.Type == "page" && tg.WebSocketDebuggerURL != "" {
				wsURL = tg.WebSocketDebuggerURL
				return ""
			}
		}
		return "no page target yet"
	})
	conn, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatalf("connecting to Chromium's DevTools at %s: %v", wsURL, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &cdp{t: t, conn: conn}
}

// call sends one command and waits for its answer (events are skipped).
func (c *cdp) call(method string, params any) json.RawMessage {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.id++
	id := c.id
	if err := c.conn.WriteJSON(map[string]any{"id": id, "method": method, "params": params}); err != nil {
		c.t.Fatalf("CDP %s: %v", method, err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := c.conn.ReadJSON(&msg); err != nil {
			c.t.Fatalf("CDP %s: reading the answer: %v", method, err)
		}
		if msg.ID != id {
			continue
		}
		if msg.Error != nil {
			c.t.Fatalf("CDP %s: %s", method, msg.Error.Message)
		}
		return msg.Result
	}
}

// eval runs JavaScript in the page (DevTools evaluation is not subject to
// the page's CSP) and returns its value as a string.
func (c *cdp) eval(js string) string {
	c.t.Helper()
	res := c.call("Runtime.evaluate", map[string]any{"expression": js, "returnByValue": true})
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		c.t.Fatal(err)
	}
	if r.ExceptionDetails != nil {
		c.t.Fatalf("JavaScript %q failed: %s", js, r.ExceptionDetails.Text)
	}
	if s, ok := r.Result.Value.(string); ok {
		return s
	}
	b, _ := json.Marshal(r.Result.Value)
	return string(b)
}

// waitLoaded waits until the page at a URL containing urlPart has loaded.
func (c *cdp) waitLoaded(urlPart string) {
	c.t.Helper()
	eventually(c.t, 30*time.Second, nil, func() string {
		href := c.eval("location.href")
		if !strings.Contains(href, urlPart) || c.eval("document.readyState") != "complete" {
			return "page " + href + " not loaded (want " + urlPart + ")"
		}
		return ""
	})
}

func (c *cdp) navigate(url string) {
	c.t.Helper()
	c.call("Page.navigate", map[string]any{"url": url})
	c.waitLoaded(url)
}

// click clicks the element selected and waits for the page that follows.
func (c *cdp) click(selector, nextURLPart string) {
	c.t.Helper()
	before := c.eval("String(performance.timeOrigin)")
	c.eval(fmt.Sprintf("document.querySelector(%s).click(), 'ok'", strconv.Quote(selector)))
	eventually(c.t, 30*time.Second, nil, func() string {
		if c.eval("String(performance.timeOrigin)") == before {
			return "still on the page before the click on " + selector
		}
		return ""
	})
	c.waitLoaded(nextURLPart)
}

func (c *cdp) text() string { return c.eval("document.body.innerText") }

func (c *cdp) screenshot(name string) string {
	c.t.Helper()
	res := c.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true})
	var r struct{ Data string }
	if err := json.Unmarshal(res, &r); err != nil {
		c.t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		c.t.Fatal(err)
	}
	dir, _ := filepath.Abs(filepath.Join("out"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("screenshot %s (%d bytes)", path, len(png))
	return path
}

// The operator's path through the dashboard in a real browser: log in, see
// the unknown_sku exception of an order whose SKU Peoplevox lacks, open the
// order's timeline, replay it once the SKU exists in Peoplevox, and see it
// resolved and the order imported.
func TestDashboardInBrowser(t *testing.T) {
	browser := startChromium(t)
	ghost := ghostProduct
	ghost.SKU = "JM-GHOST-7"
	cat := append(harness.DefaultCatalogue(5, 5), ghost)
	sb, err := harness.Start(harness.Options{Speed: 60, Seed: 5, Catalogue: cat,
		Peoplevox: func(c *psandbox.Config) { c.PickDelay = 72 * time.Hour }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	dashAddr, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	dash := "http://" + dashAddr
	dsn := filepath.Join(t.TempDir(), "mpvx.db")
	c := startConnector(t, sb, dsn, map[string]string{"MPVX_DASHBOARD_ADDR": dashAddr, "MPVX_DASHBOARD_PUBLIC_URL": dash},
		"order_accept", "order_import", "ops")
	st := openStore(t, dsn)
	ctx := context.Background()

	orderID, err := sb.Mirakl.CreateOrder(msandbox.OrderSpec{Lines: []msandbox.LineSpec{{SKU: cat[0].SKU, Quantity: 1}, {SKU: ghost.SKU, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, c, func() string {
		resp, err := http.Get(dash + "/healthz")
		if err != nil {
			return "dashboard not up: " + err.Error()
		}
		resp.Body.Close()
		return ""
	})

	// Log in as an operator.
	browser.navigate(dash + "/")
	browser.waitLoaded("/login")
	browser.eval(fmt.Sprintf(`document.querySelector('input[name=name]').value = 'Ann';
		document.querySelector('input[name=token]').value = %s; 'ok'`, strconv.Quote(harness.SandboxOperatorToken)))
	browser.click("#login", dash+"/")
	if txt := browser.text(); !strings.Contains(txt, "Ann · operator") {
		t.Fatalf("after login the page does not show the operator:\n%s", txt)
	}

	// The exception appears, grouped under unknown_sku / ecommerce.
	eventually(t, 2*time.Minute, c, func() string {
		browser.navigate(dash + "/?type=unknown_sku")
		if !strings.Contains(browser.text(), orderID) {
			exs, _ := st.Exceptions(ctx, store.ExceptionFilter{})
			return fmt.Sprintf("order %s not on the dashboard yet (exceptions in the store: %+v)", orderID, exs)
		}
		return ""
	})
	txt := browser.text()
	for _, want := range []string{"unknown_sku · owner ecommerce", ghost.SKU, orderID} {
		if !strings.Contains(txt, want) {
			t.Errorf("the exceptions page lacks %q:\n%s", want, txt)
		}
	}
	browser.screenshot("dashboard.png")

	// Its order's timeline across both systems.
	browser.click(fmt.Sprintf(`a[href="/orders?q=%s"]`, orderID), "/orders?q="+orderID)
	txt = browser.text()
	for _, want := range []string{"Order " + orderID, "seen", "accepted", "exception", "not imported"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the order page lacks %q:\n%s", want, txt)
		}
	}

	// The SKU is created in Peoplevox; the operator replays the exception.
	sb.Peoplevox.SeedItems(psandbox.ItemSeed{ItemCode: ghost.SKU, Name: ghost.Title, Barcode: "5055999999999", OnHand: 5})
	browser.click("tr.exception button.replay", "/orders?q="+orderID)
	if txt := browser.text(); !strings.Contains(txt, "Replay of exception") {
		t.Fatalf("no confirmation after Replay:\n%s", txt)
	}
	eventually(t, time.Minute, c, func() string {
		browser.navigate(dash + "/orders?q=" + orderID)
		status := browser.eval(`(document.querySelector('tr.exception') || {dataset: {}}).dataset.status || ''`)
		if status != "resolved" || !strings.Contains(browser.text(), "imported as Sales Order") {
			return "exception status " + status + " on the order page; waiting for the replay to import the order"
		}
		return ""
	})
	txt = browser.text()
	for _, want := range []string{"replay_requested", "Ann (operator)", "succeeded", "Sales Order " + orderID} {
		if !strings.Contains(txt, want) {
			t.Errorf("the order timeline after the replay lacks %q:\n%s", want, txt)
		}
	}
	browser.screenshot("order-timeline.png")
	if _, ok := sb.Peoplevox.SalesOrder(orderID); !ok {
		t.Fatalf("order %s is not in Peoplevox after the replay", orderID)
	}

	// The other pages render, and the dashboard fits a phone.
	for _, p := range []string{"/sla", "/stock", "/flows"} {
		browser.navigate(dash + p)
		if txt := browser.text(); strings.Contains(txt, "failed") || !strings.Contains(txt, "Ann · operator") {
			t.Errorf("page %s:\n%s", p, txt)
		}
	}
	browser.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true})
	browser.navigate(dash + "/?status=all")
	if w := browser.eval("String(document.documentElement.scrollWidth <= window.innerWidth + 1)"); w != "true" {
		t.Errorf("the exceptions page scrolls sideways on a phone (scrollWidth %s, width %s)", browser.eval("String(document.documentElement.scrollWidth)"), browser.eval("String(window.innerWidth)"))
	}
	browser.screenshot("dashboard-phone.png")
}
