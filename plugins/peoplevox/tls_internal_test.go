package peoplevox

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/peoplevox/sandbox"
	"github.com/mpvx/mpvx/plugins/sandboxkit"
)

// TLS for outbound calls is verified by default; tls_skip_verify is the
// explicit opt-out.
func TestTLSVerifiedByDefaultWithExplicitOptOut(t *testing.T) {
	sb := sandbox.New(sandbox.Config{Clock: sandboxkit.NewClock(1)})
	srv := httptest.NewTLSServer(sb.Handler())
	t.Cleanup(func() { srv.Close(); sb.Close() })
	spec := service.NewConfigSpec().Fields(connectionFields()...)
	build := func(user, extra string) *Client {
		t.Helper()
		// the username differs per case: components of one tenant share a client
		conf, err := spec.ParseYAML("base_url: "+srv.URL+"\nclient_id: sandbox\nusername: "+user+"\npassword: sandbox\n"+extra, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := clientFromParsed(conf, service.MockResources())
		if err != nil {
			t.Fatal(err)
		}
		c.retry = NoRetry
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := build("tls-default", "").Authenticate(ctx)
	if err == nil {
		t.Fatal("a self-signed certificate was accepted without tls_skip_verify")
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("the refusal should name the certificate problem, got %v", err)
	}
	if err := build("sandbox", "tls_skip_verify: true\n").Authenticate(ctx); err != nil {
		t.Fatalf("tls_skip_verify: true must accept the self-signed certificate, got %v", err)
	}
}
