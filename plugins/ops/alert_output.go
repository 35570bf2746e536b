package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/smtp"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/mpvx/mpvx/plugins/store"
)

const (
	alFieldWebhook   = "webhook_url"
	alFieldSMTP      = "smtp"
	alFieldHost      = "host"
	alFieldPort      = "port"
	alFieldUser      = "username"
	alFieldPassword  = "password"
	alFieldFrom      = "from"
	alFieldTo        = "to"
	alFieldDashboard = "dashboard_url"
	alFieldRunbook   = "runbook_url"
	alFieldRenotify  = "renotify_interval"
	alFieldMinSev    = "min_severity"
	alFieldTimeout   = "timeout"
	alFieldStore     = "store"

	// AlertNamespace is the store KV namespace of alert de-duplication.
	AlertNamespace = "alerts"
)

// Severities, lowest first.
var severities = map[string]int{"info": 0, "warning": 1, "critical": 2}

// Alert is what mpvx_alert reads: one JSON object per message, made by the
// ops and sla_watch pipelines' mappings.
type Alert struct {
	Kind     string `json:"kind"`     // exception, sla_accept_deadline, ..., daily_digest
	Severity string `json:"severity"` // info, warning, critical
	Key      string `json:"key"`      // de-duplication key
	Title    string `json:"title"`
	Text     string `json:"text"`
	OrderID  string `json:"order_id,omitempty"`
	SKU      string `json:"sku,omitempty"`
	Team     string `json:"team,omitempty"`
	Runbook  string `json:"runbook,omitempty"` // runbook anchor, e.g. unknown_sku
	Link     string `json:"link,omitempty"`    // dashboard path, e.g. /orders?q=1001-A
}

func alertOutputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Utility").
		Summary("Sends operator alerts to a Slack- or Teams-compatible webhook and/or by email, once per key per re-notify interval.").
		Description(`
Each message is an alert object: `+"`kind`"+`, `+"`severity`"+` (info, warning, critical), `+"`key`"+`, `+"`title`"+`,
`+"`text`"+`, `+"`order_id`"+`, `+"`sku`"+`, `+"`team`"+` (the owner), `+"`runbook`"+` (the runbook anchor, e.g.
`+"`unknown_sku`"+`) and `+"`link`"+` (a dashboard path). The text sent says what happened, which order or SKU,
who owns it, and links to the dashboard and the runbook entry.

The webhook receives `+"`{\"text\": ...}`"+`, which Slack incoming webhooks and Teams (incoming webhook or
workflow) both accept. Email goes through SMTP (STARTTLS when the server offers it).

An alert whose key was notified less than `+"`renotify_interval`"+` ago is dropped (the state is in the
store, so a restart does not repeat alerts). A failed send leaves the message unacknowledged, so it
is retried. With neither a webhook nor SMTP configured, alerts are only logged.`).
		Fields(
			service.NewStringField(alFieldWebhook).Default("").Secret().
				Description("Slack or Teams incoming webhook URL; empty: no webhook."),
			service.NewObjectField(alFieldSMTP,
				service.NewStringField(alFieldHost).Default("").Description("SMTP server; empty: no email."),
				service.NewIntField(alFieldPort).Default(587),
				service.NewStringField(alFieldUser).Default(""),
				service.NewStringField(alFieldPassword).Default("").Secret(),
				service.NewStringField(alFieldFrom).Default("mpvx@localhost"),
				service.NewStringListField(alFieldTo).Default([]string{}),
			).Description("Email delivery.").Advanced(),
			service.NewStringField(alFieldDashboard).Default("").
				Description("Public URL of the dashboard, prefixed to each alert's link."),
			service.NewStringField(alFieldRunbook).Default("docs/runbook.md").
				Description("URL of the runbook; alerts link to `<runbook_url>#<anchor>`."),
			service.NewDurationField(alFieldRenotify).Default("4h").
				Description("An alert with the same key is not sent again before this long."),
			service.NewStringEnumField(alFieldMinSev, "info", "warning", "critical").Default("info").
				Description("Alerts below this severity are dropped."),
			service.NewDurationField(alFieldTimeout).Default("10s"),
			service.NewStringField(alFieldStore).Default("").
				Description("The store DSN (default `$MPVX_STORE_DSN`, else `./data/mpvx.db`)."),
		)
}

func init() {
	service.MustRegisterOutput("mpvx_alert", alertOutputSpec(), func(conf *service.ParsedConfig, mgr *service.Resources) (service.Output, int, error) {
		o, err := newAlertOutput(conf, mgr)
		return o, 1, err
	})
}

type alertOutput struct {
	webhook                   string
	smtpHost, smtpUser, smtpP string
	smtpPort                  int
	from                      string
	to                        []string
	dashboard, runbook        string
	renotify, timeout         time.Duration
	minSev                    int
	dsn                       string
	st                        *store.Store
	client                    *http.Client
	log                       *service.Logger
	sent, suppressed          *service.MetricCounter
	// sendMail is net/smtp.SendMail (replaced in tests).
	sendMail func(addr string, a smtp.Auth, from string, to []string, msg []byte) error
}

func newAlertOutput(conf *service.ParsedConfig, mgr *service.Resources) (*alertOutput, error) {
	o := &alertOutput{log: mgr.Logger(), sendMail: smtp.SendMail,
		sent:       mgr.Metrics().NewCounter("mpvx_alerts_sent", "kind", "severity"),
		suppressed: mgr.Metrics().NewCounter("mpvx_alerts_suppressed", "kind")}
	var err error
	for name, dst := range map[string]*string{alFieldWebhook: &o.webhook, alFieldDashboard: &o.dashboard, alFieldRunbook: &o.runbook, alFieldStore: &o.dsn} {
		if *dst, err = conf.FieldString(name); err != nil {
			return nil, err
		}
	}
	sm := conf.Namespace(alFieldSMTP)
	for name, dst := range map[string]*string{alFieldHost: &o.smtpHost, alFieldUser: &o.smtpUser, alFieldPassword: &o.smtpP, alFieldFrom: &o.from} {
		if *dst, err = sm.FieldString(name); err != nil {
			return nil, err
		}
	}
	if o.smtpPort, err = sm.FieldInt(alFieldPort); err != nil {
		return nil, err
	}
	if o.to, err = sm.FieldStringList(alFieldTo); err != nil {
		return nil, err
	}
	if o.smtpHost != "" && len(o.to) == 0 {
		return nil, errors.New("mpvx_alert: smtp.host is set but smtp.to lists no recipient: add the team addresses")
	}
	if o.renotify, err = conf.FieldDuration(alFieldRenotify); err != nil {
		return nil, err
	}
	if o.timeout, err = conf.FieldDuration(alFieldTimeout); err != nil {
		return nil, err
	}
	minSev, err := conf.FieldString(alFieldMinSev)
	if err != nil {
		return nil, err
	}
	o.minSev = severities[minSev]
	if o.dsn == "" {
		o.dsn = store.DefaultDSN()
	}
	o.dashboard = strings.TrimRight(o.dashboard, "/")
	o.client = &http.Client{Timeout: o.timeout}
	return o, nil
}

func (o *alertOutput) Connect(ctx context.Context) error {
	if o.st != nil {
		return nil
	}
	st, err := store.Shared(ctx, o.dsn)
	if err != nil {
		return err
	}
	o.st = st
	return nil
}

// RenderAlert is the text of an alert: what happened, the order or SKU, the
// owner, and links to the dashboard and the runbook.
func RenderAlert(a Alert, dashboardURL, runbookURL string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s", strings.ToUpper(orStr(a.Severity, "warning")), orStr(a.Title, a.Kind))
	if a.Text != "" {
		b.WriteString("\n" + a.Text)
	}
	var facts []string
	if a.OrderID != "" {
		facts = append(facts, "Order "+a.OrderID)
	}
	if a.SKU != "" {
		facts = append(facts, "SKU "+a.SKU)
	}
	if a.Team != "" {
		facts = append(facts, "Owner: "+a.Team+" team")
	}
	if len(facts) > 0 {
		b.WriteString("\n" + strings.Join(facts, " · "))
	}
	if dashboardURL != "" {
		link := a.Link
		if link == "" {
			link = "/"
		}
		b.WriteString("\nDashboard: " + strings.TrimRight(dashboardURL, "/") + link)
	}
	if a.Runbook != "" && runbookURL != "" {
		b.WriteString("\nRunbook: " + runbookURL + "#" + a.Runbook)
	}
	return b.String()
}

func orStr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (o *alertOutput) Write(ctx context.Context, msg *service.Message) error {
	if o.st == nil {
		return service.ErrNotConnected
	}
	raw, err := msg.AsBytes()
	if err != nil {
		return err
	}
	var a Alert
	if err := json.Unmarshal(raw, &a); err != nil {
		o.log.Errorf("mpvx_alert: dropping a message that is not an alert object (%v): fix the mapping before mpvx_alert: %.200s", err, raw)
		return nil
	}
	if _, ok := severities[a.Severity]; !ok {
		a.Severity = "warning"
	}
	if severities[a.Severity] < o.minSev {
		return nil
	}
	if a.Key == "" {
		a.Key = strings.Join([]string{a.Kind, a.OrderID, a.SKU, a.Title}, ":")
	}
	if _, err := o.st.KVGet(ctx, AlertNamespace, a.Key); err == nil {
		o.suppressed.Incr(1, a.Kind)
		o.log.With("alert_key", a.Key).Debugf("Alert %s already sent less than %s ago; not repeating it", a.Key, o.renotify)
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	text := RenderAlert(a, o.dashboard, o.runbook)
	if o.webhook == "" && o.smtpHost == "" {
		o.log.With("alert_key", a.Key, "severity", a.Severity, "order_id", a.OrderID, "team", a.Team).Infof("Alert (no webhook or SMTP configured): %s", text)
	}
	if o.webhook != "" {
		if err := o.postWebhook(ctx, text); err != nil {
			return err
		}
	}
	if o.smtpHost != "" {
		if err := o.email(a, text); err != nil {
			return err
		}
	}
	o.sent.Incr(1, a.Kind, a.Severity)
	sentAt := []byte(time.Now().UTC().Format(time.RFC3339))
	if err := o.st.KVSet(context.WithoutCancel(ctx), AlertNamespace, a.Key, sentAt, o.renotify); err != nil {
		o.log.Warnf("Alert %s sent but not recorded (%v): it may be sent again", a.Key, err)
	}
	return nil
}

func (o *alertOutput) postWebhook(ctx context.Context, text string) error {
	body, _ := json.Marshal(map[string]string{"text": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.webhook, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("mpvx_alert: the webhook URL is not valid: %w: check MPVX_ALERT_WEBHOOK_URL", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := o.client.Do(req)
	if err != nil {
		return fmt.Errorf("mpvx_alert: posting to the webhook failed (%w); the alert will be retried", redactURLErr(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("mpvx_alert: the webhook answered %s: %.200s; the alert will be retried (check the webhook URL is still valid)", resp.Status, snippet)
	}
	return nil
}

// redactURLErr keeps the webhook URL (a secret) out of error messages.
func redactURLErr(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

func headerSafe(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func (o *alertOutput) email(a Alert, text string) error {
	subject := headerSafe(fmt.Sprintf("[mpvx] [%s] %s", strings.ToUpper(a.Severity), orStr(a.Title, a.Kind)))
	var msg bytes.Buffer
	fmt.Fprintf(&msg, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		headerSafe(o.from), headerSafe(strings.Join(o.to, ", ")), subject, time.Now().UTC().Format(time.RFC1123Z))
	msg.WriteString(strings.ReplaceAll(text, "\n", "\r\n"))
	msg.WriteString("\r\n")
	var auth smtp.Auth
	if o.smtpUser != "" {
		auth = smtp.PlainAuth("", o.smtpUser, o.smtpP, o.smtpHost)
	}
	if err := o.sendMail(fmt.Sprintf("%s:%d", o.smtpHost, o.smtpPort), auth, o.from, o.to, msg.Bytes()); err != nil {
		return fmt.Errorf("mpvx_alert: sending the email through %s:%d failed: %w; the alert will be retried", o.smtpHost, o.smtpPort, err)
	}
	return nil
}

func (o *alertOutput) Close(ctx context.Context) error {
	if o.st == nil {
		return nil
	}
	err := o.st.Close()
	o.st = nil
	return err
}
