package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpvx/mpvx/internal/harness"
	msandbox "github.com/mpvx/mpvx/plugins/mirakl/sandbox"
	psandbox "github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
)

// Distinctive secrets: if any of them (or its URL-encoded form) shows up in
// `mpvx echo` output or in the connector's debug logs, it leaked.
var leakSecrets = map[string]string{
	"MIRAKL_API_KEY":                "mk-LEAKCHECK-7f3a9c21",
	"PEOPLEVOX_PASSWORD":            "pvx-LEAKCHECK-91b2e4",
	"MPVX_CALLBACK_TOKEN":           "cb-LEAKCHECK-0123456789abcdef",
	"MPVX_DASHBOARD_VIEWER_TOKEN":   "dv-LEAKCHECK-0123456789abcdef",
	"MPVX_DASHBOARD_OPERATOR_TOKEN": "do-LEAKCHECK-0123456789abcdef",
	"MPVX_SMTP_PASSWORD":            "smtp-LEAKCHECK-5521",
}

func assertNoSecrets(t *testing.T, where, out string) {
	t.Helper()
	for name, v := range leakSecrets {
		for _, form := range []string{v, url.QueryEscape(v), v[len(v)-10:]} {
			if strings.Contains(out, form) {
				i := strings.Index(out, form)
				t.Errorf("%s leaks %s (%q) near: …%s…", where, name, form, out[max(0, i-120):min(len(out), i+40)])
				break
			}
		}
	}
}

// `mpvx echo` of every pipeline, with the secrets in the env file, shows
// them scrubbed, never their values.
func TestSecretsNeverInEcho(t *testing.T) {
	var env strings.Builder
	base, err := os.ReadFile("../config/sandbox/sandbox.env")
	if err != nil {
		t.Fatal(err)
	}
	env.Write(base)
	for k, v := range leakSecrets {
		fmt.Fprintf(&env, "\n%s=%s", k, v)
	}
	envFile := filepath.Join(t.TempDir(), "secrets.env")
	if err := os.WriteFile(envFile, []byte(env.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../pipelines/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	scrubbed := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_benthos_test.yaml") {
			continue
		}
		cmd := exec.Command(mpvxBin, "echo", "-e", envFile, "-r", "config/sandbox/resources.yaml", strings.TrimPrefix(f, "../"))
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mpvx echo %s: %v\n%s", f, err, out)
		}
		assertNoSecrets(t, "mpvx echo "+filepath.Base(f), string(out))
		scrubbed += strings.Count(string(out), "!!!SECRET_SCRUBBED!!!")
	}
	if scrubbed == 0 {
		t.Fatal("no field was shown as !!!SECRET_SCRUBBED!!!: are the secret fields still marked .Secret()?")
	}
}

// A short `mpvx streams` run with debug logs, every secret in use (Mirakl
// calls, Peoplevox logins, callback subscriptions carrying the token, a
// callback delivered, a dashboard login), never logs one.
func TestSecretsNeverInDebugLogs(t *testing.T) {
	sb, err := harness.Start(harness.Options{Speed: 60, Seed: 21, Catalogue: harness.DefaultCatalogue(5, 21),
		Mirakl:    func(c *msandbox.Config) { c.APIKey = leakSecrets["MIRAKL_API_KEY"] },
		Peoplevox: func(c *psandbox.Config) { c.Password = leakSecrets["PEOPLEVOX_PASSWORD"] }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	sb.Mirakl.StartGenerator(msandbox.Generator{OrdersPerMinute: 120, MaxLines: 2, MaxQuantity: 1, Limit: 3})
	env := map[string]string{"MPVX_LOG_LEVEL": "debug"}
	for k, v := range leakSecrets {
		env[k] = v
	}
	dash, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	stockAddr, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	env["MPVX_DASHBOARD_ADDR"], env["MPVX_DASHBOARD_PUBLIC_URL"] = dash, "http://"+dash
	env["MPVX_STOCK_CALLBACK_ADDR"], env["MPVX_STOCK_CALLBACK_PUBLIC_URL"] = stockAddr, "http://"+stockAddr
	dsn := filepath.Join(t.TempDir(), "sec.db")
	c := startConnector(t, sb, dsn, env, "order_accept", "order_import", "stock_sync", "ops")

	eventually(t, 25*time.Second, c, func() string {
		if n := len(sb.Peoplevox.SalesOrders()); n == 0 {
			return "no order imported into Peoplevox yet"
		}
		if len(sb.Peoplevox.Subscriptions()) == 0 {
			return "no Peoplevox subscription yet"
		}
		return ""
	})
	// One callback with the token, one with a wrong one.
	tok := url.QueryEscape(leakSecrets["MPVX_CALLBACK_TOKEN"])
	for _, q := range []string{"t=" + tok, "t=wrong-" + tok} {
		resp, err := http.Get("http://" + stockAddr + "/peoplevox/stock/AvailabilityChanges?ItemCode=NOPE&Available=1&" + q)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	// A dashboard login with the operator token.
	form := url.Values{"token": {leakSecrets["MPVX_DASHBOARD_OPERATOR_TOKEN"]}, "name": {"sec-test"}}
	req, _ := http.NewRequest(http.MethodPost, "http://"+dash+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://"+dash)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("dashboard login: %d", resp.StatusCode)
	}
	c.stop()
	log, err := os.ReadFile(c.log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "level=debug") && !strings.Contains(string(log), `"level":"debug"`) {
		t.Fatalf("the run did not log at debug level; the check proves nothing:\n%s", c.logTail())
	}
	assertNoSecrets(t, "mpvx streams debug log", string(log))
}
