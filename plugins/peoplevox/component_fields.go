package peoplevox

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Fields every Peoplevox component shares.
const (
	pvFieldBaseURL       = "base_url"
	pvFieldClientID      = "client_id"
	pvFieldUsername      = "username"
	pvFieldPassword      = "password"
	pvFieldMaxInFlight   = "max_concurrent_calls"
	pvFieldTimeout       = "timeout"
	pvFieldTLSSkipVerify = "tls_skip_verify"
	pvFieldStore         = "store"
)

func connectionFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewURLField(pvFieldBaseURL).
			Description("The Peoplevox region host; the service is `{base_url}/{client_id}/resources/integrationservicev4.asmx`.").
			Example("https://wms.peoplevox.net").Example("${PEOPLEVOX_URL}"),
		service.NewStringField(pvFieldClientID).Description("The tenant's client id.").Example("${PEOPLEVOX_CLIENT_ID}"),
		service.NewStringField(pvFieldUsername).Description("A Peoplevox user allowed to use the integration service (write access for SaveData).").
			Example("${PEOPLEVOX_USERNAME}"),
		service.NewStringField(pvFieldPassword).Secret().Description("That user's password; always from the environment.").
			Example("${PEOPLEVOX_PASSWORD}"),
		service.NewIntField(pvFieldMaxInFlight).Default(DefaultMaxInFlight).Advanced().
			Description("Most SOAP calls in flight at once for this tenant and user, across every component sharing the session (an Authenticate that renews the session for them comes on top)."),
		service.NewDurationField(pvFieldTimeout).Default(DefaultRequestTimeout.String()).Advanced().
			Description("Timeout of one SOAP call (reports can be slow)."),
		service.NewBoolField(pvFieldTLSSkipVerify).Default(false).Advanced().
			Description("Do not verify Peoplevox's TLS certificate. Never in production."),
	}
}

func storeField() *service.ConfigField {
	return service.NewStringField(pvFieldStore).Default("").
		Description("Where the connector's state lives: a SQLite file path (default `$MPVX_STORE_DSN`, else `./data/mpvx.db`).")
}

var (
	sharedMu      sync.Mutex
	sharedClients = map[string]*Client{}
)

// clientFromParsed returns the process-wide client of the configured
// tenant and user: every component shares one session and one bound on
// concurrent calls, as Peoplevox expects.
func clientFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*Client, error) {
	get := func(name string) (string, error) { return conf.FieldString(name) }
	base, err := get(pvFieldBaseURL)
	if err != nil {
		return nil, err
	}
	clientID, err := get(pvFieldClientID)
	if err != nil {
		return nil, err
	}
	user, err := get(pvFieldUsername)
	if err != nil {
		return nil, err
	}
	password, err := get(pvFieldPassword)
	if err != nil {
		return nil, err
	}
	inFlight, err := conf.FieldInt(pvFieldMaxInFlight)
	if err != nil {
		return nil, err
	}
	timeout, err := conf.FieldDuration(pvFieldTimeout)
	if err != nil {
		return nil, err
	}
	skip, err := conf.FieldBool(pvFieldTLSSkipVerify)
	if err != nil {
		return nil, err
	}
	key := strings.Join([]string{strings.TrimRight(base, "/"), clientID, user}, "\x00")
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if c := sharedClients[key]; c != nil {
		return c, nil
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if skip {
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // explicit, documented opt-out
		mgr.Logger().Warn("Peoplevox TLS certificate verification is OFF (tls_skip_verify: true); never use this in production")
	}
	reauth := mgr.Metrics().NewCounter("peoplevox_authentications", "reason")
	c, err := New(Config{
		BaseURL: base, ClientID: clientID, Username: user, Password: Secret(password),
		HTTPClient: &http.Client{Transport: transport},
		// SaveData is never re-sent blindly: after an unknown outcome the
		// components read Peoplevox back and write only what is missing.
		SaveRetry:      &NoRetry,
		MaxInFlight:    inFlight,
		RequestTimeout: timeout,
		Logger:         slog.New(benthosLogHandler{l: mgr.Logger()}),
		OnAuthenticate: func(r AuthReason) { reauth.Incr(1, authReasonName(r)) },
	})
	if err != nil {
		return nil, fmt.Errorf("peoplevox: %w", err)
	}
	sharedClients[key] = c
	return c, nil
}

func authReasonName(r AuthReason) string {
	switch r {
	case AuthInitial:
		return "initial"
	case AuthExpired:
		return "expired"
	case AuthRefresh:
		return "refresh"
	}
	return "other"
}
