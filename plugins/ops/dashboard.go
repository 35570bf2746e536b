package ops

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/mpvx/mpvx/plugins/mirakl"
	"github.com/mpvx/mpvx/plugins/store"
)

// The operations dashboard: a small server-rendered web application (Go
// html/template, one CSS file, no JavaScript, no external assets) that mpvx
// serves on its own listener (plugins cannot add routes to the Benthos HTTP
// server). It is started by the mpvx_dashboard input (see
// dashboard_input.go) in the ops pipeline.
//
// Access: two tokens from the environment. The viewer token gives a
// read-only session; the operator token also allows replaying and resolving
// exceptions and adding notes. A login form exchanges a token (compared in
// constant time) and a name (for the audit log) for a session cookie
// (HttpOnly, SameSite=Strict). Every form that changes something carries the
// session's CSRF token and is also refused when the Origin (or, without it,
// the Referer) is not the dashboard itself. Every action carries a one-time
// action id, so a double submit (back button, impatient click) acts once.

//go:embed templates/*.html static/*
var dashFiles embed.FS

// Roles.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
)

const (
	dashCookie      = "mpvx_session"
	dashSessionTTL  = 12 * time.Hour
	dashMaxSessions = 1000
	dashActionNS    = "dashboard_actions"
	dashActionTTL   = 7 * 24 * time.Hour
	dashMinToken    = 16
)

// DashboardConfig configures a Dashboard.
type DashboardConfig struct {
	Store         *store.Store
	ViewerToken   string // read-only role; may be empty (then only operators log in)
	OperatorToken string
	// Secure marks the cookie Secure (the dashboard is behind HTTPS).
	Secure bool
	// RunbookURL is where the runbook lives; exception types link to
	// RunbookURL#<type>.
	RunbookURL string
	// Mirakl instances whose call budgets the flow panel shows.
	MiraklURL    string
	MiraklShopID int64
	Clock        MarketplaceClock
	Logf         func(format string, args ...any)
}

// Dashboard serves the operations dashboard.
type Dashboard struct {
	cfg      DashboardConfig
	viewer   [32]byte
	operator [32]byte
	tmpl     map[string]*template.Template
	failures *rate.Limiter

	mu       sync.Mutex
	sessions map[string]*dashSession
}

type dashSession struct {
	role, who, csrf string
	expires         time.Time
}

// NewDashboard checks the configuration and parses the templates.
func NewDashboard(cfg DashboardConfig) (*Dashboard, error) {
	if cfg.Store == nil {
		return nil, errors.New("dashboard: no store: give the store the flows write to")
	}
	if len(cfg.OperatorToken) < dashMinToken {
		return nil, fmt.Errorf("dashboard: the operator token is missing or shorter than %d characters: set MPVX_DASHBOARD_OPERATOR_TOKEN to a long random value (e.g. openssl rand -hex 24)", dashMinToken)
	}
	if cfg.ViewerToken != "" && len(cfg.ViewerToken) < dashMinToken {
		return nil, fmt.Errorf("dashboard: the viewer token is shorter than %d characters: set MPVX_DASHBOARD_VIEWER_TOKEN to a long random value, or leave it empty to allow operators only", dashMinToken)
	}
	if cfg.ViewerToken != "" && cfg.ViewerToken == cfg.OperatorToken {
		return nil, errors.New("dashboard: the viewer and operator tokens are the same, so every viewer could act: give them different values")
	}
	if cfg.RunbookURL == "" {
		cfg.RunbookURL = "docs/runbook.md"
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	d := &Dashboard{cfg: cfg, sessions: map[string]*dashSession{}, tmpl: map[string]*template.Template{},
		failures: rate.NewLimiter(rate.Every(time.Second), 10)}
	d.operator = sha256.Sum256([]byte(cfg.OperatorToken))
	if cfg.ViewerToken != "" {
		d.viewer = sha256.Sum256([]byte(cfg.ViewerToken))
	}
	funcs := template.FuncMap{
		"age":      dashAge,
		"when":     dashWhen,
		"left":     dashLeft,
		"runbook":  func(anchor string) string { return cfg.RunbookURL + "#" + anchor },
		"meaning":  func(t string) string { return Lookup(t).Meaning },
		"canRetry": func(t string) bool { return Lookup(t).Replayable },
		"unresolved": func(s store.ExceptionStatus) bool {
			return s != store.StatusResolved
		},
		"isOpen": func(s store.ExceptionStatus) bool { return s == store.StatusOpen },
	}
	for _, page := range []string{"login", "exceptions", "order", "sla", "stock", "flows"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(dashFiles, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: template %s: %w", page, err)
		}
		d.tmpl[page] = t
	}
	return d, nil
}

// checkToken returns the role a token grants, "" when none. Both tokens are
// always compared, on SHA-256 digests (equal length), in constant time, so
// the time taken says nothing about the tokens.
func (d *Dashboard) checkToken(token string) string {
	if token == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(token))
	op := subtle.ConstantTimeCompare(sum[:], d.operator[:])
	vw := subtle.ConstantTimeCompare(sum[:], d.viewer[:])
	if d.cfg.ViewerToken == "" {
		vw = 0
	}
	switch {
	case op == 1:
		return RoleOperator
	case vw == 1:
		return RoleViewer
	}
	return ""
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

func (d *Dashboard) newSession(role, who string) (string, *dashSession) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if len(d.sessions) >= dashMaxSessions {
		for id, s := range d.sessions {
			if now.After(s.expires) {
				delete(d.sessions, id)
			}
		}
		for id := range d.sessions { // still full: drop an arbitrary one
			if len(d.sessions) < dashMaxSessions {
				break
			}
			delete(d.sessions, id)
		}
	}
	id := randomToken()
	s := &dashSession{role: role, who: who, csrf: randomToken(), expires: now.Add(dashSessionTTL)}
	d.sessions[id] = s
	return id, s
}

func (d *Dashboard) session(r *http.Request) *dashSession {
	c, err := r.Cookie(dashCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.sessions[c.Value]
	if s == nil {
		return nil
	}
	if time.Now().After(s.expires) {
		delete(d.sessions, c.Value)
		return nil
	}
	return s
}

// Handler is the dashboard's HTTP handler.
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /static/app.css", d.css)
	mux.HandleFunc("GET /login", d.loginPage)
	mux.HandleFunc("POST /login", d.sameOrigin(d.login))
	mux.HandleFunc("POST /logout", d.sameOrigin(d.authed(RoleViewer, d.logout)))
	mux.HandleFunc("GET /{$}", d.authed(RoleViewer, d.exceptionsPage))
	mux.HandleFunc("GET /exceptions.csv", d.authed(RoleViewer, d.exceptionsCSV))
	mux.HandleFunc("GET /orders", d.authed(RoleViewer, d.orderPage))
	mux.HandleFunc("GET /sla", d.authed(RoleViewer, d.slaPage))
	mux.HandleFunc("GET /stock", d.authed(RoleViewer, d.stockPage))
	mux.HandleFunc("GET /flows", d.authed(RoleViewer, d.flowsPage))
	mux.HandleFunc("POST /exceptions/{id}/replay", d.sameOrigin(d.authed(RoleOperator, d.action(d.replay))))
	mux.HandleFunc("POST /exceptions/{id}/resolve", d.sameOrigin(d.authed(RoleOperator, d.action(d.resolve))))
	mux.HandleFunc("POST /orders/{id}/note", d.sameOrigin(d.authed(RoleOperator, d.action(d.note))))
	return dashHeaders(mux)
}

// dashMaxBody bounds a request body (a form post) to the dashboard.
const dashMaxBody = 64 << 10

// dashHeaders sets the security headers of every answer and bounds request
// bodies.
func dashHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.Body != nil {
			// the dashboard's forms are a few hundred bytes
			r.Body = http.MaxBytesReader(w, r.Body, dashMaxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin refuses a state-changing request that does not come from a
// page of the dashboard itself: the Origin header (or the Referer when a
// client sends no Origin) must name this host, and Sec-Fetch-Site, when
// sent, must not say cross-site.
func (d *Dashboard) sameOrigin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := checkSameOrigin(r); err != nil {
			d.cfg.Logf("dashboard: refused %s %s from %s: %v", r.Method, r.URL.Path, r.RemoteAddr, err)
			http.Error(w, "Forbidden: "+err.Error(), http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

func checkSameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("cross-site request (Sec-Fetch-Site %s): use the dashboard's own forms", site)
	}
	src := r.Header.Get("Origin")
	what := "Origin"
	if src == "" || src == "null" {
		src, what = r.Header.Get("Referer"), "Referer"
	}
	if src == "" {
		return errors.New("the request has neither Origin nor Referer: submit the form from the dashboard")
	}
	u, err := url.Parse(src)
	if err != nil || u.Host == "" {
		return fmt.Errorf("the %s %q is not a URL", what, src)
	}
	if !strings.EqualFold(u.Host, r.Host) {
		return fmt.Errorf("the %s %s is not this dashboard (%s): cross-site form posts are refused", what, u.Host, r.Host)
	}
	return nil
}

type ctxKey struct{}

func sessionOf(r *http.Request) *dashSession {
	s, _ := r.Context().Value(ctxKey{}).(*dashSession)
	return s
}

// authed requires a session with at least role; a POST also requires the
// session's CSRF token.
func (d *Dashboard) authed(role string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := d.session(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "Unauthorized: your session has expired: log in again", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				http.Error(w, "Bad request: "+err.Error(), http.StatusBadRequest)
				return
			}
			got := r.PostForm.Get("csrf")
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
				http.Error(w, "Forbidden: the form's security token is missing or stale: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		if role == RoleOperator && s.role != RoleOperator {
			http.Error(w, "Forbidden: viewers can look but not act: log in with the operator token to replay, resolve or add notes", http.StatusForbidden)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	}
}

func (d *Dashboard) css(w http.ResponseWriter, r *http.Request) {
	b, _ := dashFiles.ReadFile("static/app.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	_, _ = w.Write(b)
}

// page is what every template gets.
type page struct {
	Title, Nav string
	Role, Who  string
	CSRF       string
	Msg        string
	Now        time.Time
	MarketNow  time.Time
	Data       any
	Operator   bool
	ActionID   func() string
}

func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, name, title string, data any) {
	p := page{Title: title, Nav: name, Data: data, Now: d.cfg.Store.Now(), MarketNow: d.cfg.Clock.Now(), Msg: r.URL.Query().Get("msg"),
		ActionID: randomToken}
	if s := sessionOf(r); s != nil {
		p.Role, p.Who, p.CSRF, p.Operator = s.role, s.who, s.csrf, s.role == RoleOperator
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := d.tmpl[name].Execute(w, p); err != nil {
		d.cfg.Logf("dashboard: rendering %s: %v", name, err)
	}
}

func (d *Dashboard) fail(w http.ResponseWriter, what string, err error) {
	d.cfg.Logf("dashboard: %s: %v", what, err)
	http.Error(w, fmt.Sprintf("%s failed: %v", what, err), http.StatusInternalServerError)
}

// --- login ------------------------------------------------------------------

func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	d.render(w, r, "login", "Log in", map[string]string{"Next": safeNext(r.URL.Query().Get("next")), "Error": ""})
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "Bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	who := strings.TrimSpace(r.PostForm.Get("name"))
	if len(who) > 60 {
		who = who[:60]
	}
	if d.failures.Tokens() < 1 {
		http.Error(w, "Too many failed logins: wait a minute", http.StatusTooManyRequests)
		return
	}
	role := d.checkToken(r.PostForm.Get("token"))
	if role == "" || who == "" {
		if role == "" {
			d.failures.Allow()
		}
		msg := "That token is not valid."
		if role != "" {
			msg = "Give your name: it is written in the audit log with what you do."
		}
		w.WriteHeader(http.StatusUnauthorized)
		d.render(w, r, "login", "Log in", map[string]string{"Next": next, "Error": msg})
		return
	}
	id, _ := d.newSession(role, who)
	http.SetCookie(w, &http.Cookie{Name: dashCookie, Value: id, Path: "/", HttpOnly: true, Secure: d.cfg.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(dashSessionTTL.Seconds())})
	d.cfg.Logf("dashboard: %s logged in as %s from %s", who, role, r.RemoteAddr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(dashCookie); err == nil {
		d.mu.Lock()
		delete(d.sessions, c.Value)
		d.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: dashCookie, Value: "", Path: "/", HttpOnly: true, Secure: d.cfg.Secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// --- exceptions ---------------------------------------------------------------

type exFilter struct {
	Type, Team, Status, Q string
}

func filterFrom(q url.Values) exFilter {
	f := exFilter{Type: q.Get("type"), Team: q.Get("team"), Status: q.Get("status"), Q: strings.TrimSpace(q.Get("q"))}
	if f.Status == "" {
		f.Status = "unresolved"
	}
	return f
}

func (f exFilter) query() string {
	v := url.Values{}
	for k, s := range map[string]string{"type": f.Type, "team": f.Team, "status": f.Status, "q": f.Q} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v.Encode()
}

func (d *Dashboard) listExceptions(ctx context.Context, f exFilter) ([]store.Exception, error) {
	sf := store.ExceptionFilter{Limit: 2000}
	if f.Type != "" {
		sf.Types = []string{f.Type}
	}
	if f.Team != "" {
		sf.Teams = []string{f.Team}
	}
	switch f.Status {
	case "unresolved":
		sf.Statuses = []store.ExceptionStatus{store.StatusOpen, store.StatusReplay, store.StatusReplaying}
	case "all":
	default:
		sf.Statuses = []store.ExceptionStatus{store.ExceptionStatus(f.Status)}
	}
	all, err := d.cfg.Store.Exceptions(ctx, sf)
	if err != nil || f.Q == "" {
		return all, err
	}
	q := strings.ToLower(f.Q)
	var out []store.Exception
	for _, e := range all {
		if strings.Contains(strings.ToLower(e.OrderID), q) || strings.Contains(strings.ToLower(e.SKU), q) || strings.Contains(strings.ToLower(e.Key), q) {
			out = append(out, e)
		}
	}
	return out, nil
}

// exGroup is the exceptions of one type and owner team.
type exGroup struct {
	Type, Team, Meaning string
	Replayable          bool
	Items               []store.Exception
}

func groupExceptions(list []store.Exception) []exGroup {
	idx := map[[2]string]int{}
	var out []exGroup
	for _, e := range list {
		k := [2]string{e.Type, e.Team}
		i, ok := idx[k]
		if !ok {
			t := Lookup(e.Type)
			i = len(out)
			idx[k] = i
			out = append(out, exGroup{Type: e.Type, Team: e.Team, Meaning: t.Meaning, Replayable: t.Replayable})
		}
		out[i].Items = append(out[i].Items, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if len(out[i].Items) != len(out[j].Items) {
			return len(out[i].Items) > len(out[j].Items)
		}
		return out[i].Type+out[i].Team < out[j].Type+out[j].Team
	})
	return out
}

func teams() []string {
	return []string{string(TeamEcommerce), string(TeamWarehouse), string(TeamFinance), string(TeamIntegration)}
}

func (d *Dashboard) exceptionsPage(w http.ResponseWriter, r *http.Request) {
	f := filterFrom(r.URL.Query())
	list, err := d.listExceptions(r.Context(), f)
	if err != nil {
		d.fail(w, "listing exceptions", err)
		return
	}
	counts, err := d.cfg.Store.CountOpenExceptions(r.Context())
	if err != nil {
		d.fail(w, "counting exceptions", err)
		return
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	d.render(w, r, "exceptions", "Exceptions", map[string]any{
		"Filter": f, "Query": f.query(), "Groups": groupExceptions(list), "Count": len(list), "Open": total,
		"Types": TypeNames(), "Teams": teams(), "Statuses": []string{"unresolved", "open", "replay", "replaying", "resolved", "all"},
		"Back": r.URL.RequestURI(),
	})
}

// csvCell neutralises spreadsheet formulas: a cell starting with = + - @
// (or a tab or carriage return, which some spreadsheets skip) is prefixed
// with a quote so it is shown as text, never evaluated.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteExceptionsCSV writes exceptions as CSV (RFC 4180 quoting, formula
// cells neutralised).
func WriteExceptionsCSV(w io.Writer, list []store.Exception) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "type", "team", "status", "order_id", "sku", "error", "attempts", "first_seen", "last_seen", "flow", "resolved_by", "note"})
	for _, e := range list {
		row := []string{strconv.FormatInt(e.ID, 10), e.Type, e.Team, string(e.Status), e.OrderID, e.SKU, e.Error, strconv.Itoa(e.Attempts),
			e.FirstSeen.UTC().Format(time.RFC3339), e.LastSeen.UTC().Format(time.RFC3339), e.Flow, e.ResolvedBy, e.Note}
		for i := range row {
			row[i] = csvCell(row[i])
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func (d *Dashboard) exceptionsCSV(w http.ResponseWriter, r *http.Request) {
	list, err := d.listExceptions(r.Context(), filterFrom(r.URL.Query()))
	if err != nil {
		d.fail(w, "exporting exceptions", err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="mpvx-exceptions-%s.csv"`, time.Now().UTC().Format("20060102-150405")))
	_ = WriteExceptionsCSV(w, list)
}

// --- actions ------------------------------------------------------------------

// action wraps an operator action: it runs once per action id (a hidden
// field of each form), then redirects back with a message.
func (d *Dashboard) action(do func(ctx context.Context, r *http.Request, who string) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := sessionOf(r)
		back := safeNext(r.PostForm.Get("back"))
		aid := r.PostForm.Get("action_id")
		if len(aid) < 16 || len(aid) > 128 {
			http.Error(w, "Bad request: the form has no action id: reload the page and try again", http.StatusBadRequest)
			return
		}
		who := s.who + " (" + s.role + ")"
		err := d.cfg.Store.KVAdd(r.Context(), dashActionNS, aid, []byte(who), dashActionTTL)
		var msg string
		switch {
		case errors.Is(err, store.ErrExists):
			msg = "Already done (this form was submitted before)."
		case err != nil:
			d.fail(w, "recording the action", err)
			return
		default:
			msg, err = do(r.Context(), r, who)
			if err != nil {
				// Let the operator try again with the same form.
				_ = d.cfg.Store.KVDelete(context.WithoutCancel(r.Context()), dashActionNS, aid)
				if errors.Is(err, store.ErrNotFound) {
					http.Error(w, err.Error(), http.StatusNotFound)
					return
				}
				msg = "Not done: " + err.Error()
			}
		}
		sep := "?"
		if strings.Contains(back, "?") {
			sep = "&"
		}
		http.Redirect(w, r, back+sep+"msg="+url.QueryEscape(msg), http.StatusSeeOther)
	}
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("exception id %q is not a number (%w)", r.PathValue("id"), store.ErrNotFound)
	}
	return id, nil
}

func (d *Dashboard) replay(ctx context.Context, r *http.Request, who string) (string, error) {
	id, err := pathID(r)
	if err != nil {
		return "", err
	}
	e, ok, err := d.cfg.Store.Exception(ctx, id)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("exception %d does not exist (%w)", id, store.ErrNotFound)
	}
	if !Lookup(e.Type).Replayable {
		return "", fmt.Errorf("%s exceptions cannot be replayed: fix the cause by hand, then resolve it with a note", e.Type)
	}
	if err := d.cfg.Store.RequestReplay(ctx, id, who); err != nil {
		return "", err
	}
	return fmt.Sprintf("Replay of exception #%d requested: the flow picks it up within seconds.", id), nil
}

func (d *Dashboard) resolve(ctx context.Context, r *http.Request, who string) (string, error) {
	id, err := pathID(r)
	if err != nil {
		return "", err
	}
	note := strings.TrimSpace(r.PostForm.Get("note"))
	if note == "" {
		return "", errors.New("say what was done in the note before resolving")
	}
	if len(note) > 1000 {
		note = note[:1000]
	}
	if err := d.cfg.Store.ResolveException(ctx, id, who, note); err != nil {
		return "", err
	}
	return fmt.Sprintf("Exception #%d resolved.", id), nil
}

func (d *Dashboard) note(ctx context.Context, r *http.Request, who string) (string, error) {
	orderID := strings.TrimSpace(r.PathValue("id"))
	note := strings.TrimSpace(r.PostForm.Get("note"))
	if orderID == "" || note == "" {
		return "", errors.New("write a note first")
	}
	if len(note) > 1000 {
		note = note[:1000]
	}
	now := d.cfg.Store.Now()
	if err := d.cfg.Store.Audit(ctx, store.AuditEntry{At: now, Who: who, Action: "note", Subject: "order:" + orderID, Detail: note}); err != nil {
		return "", err
	}
	if err := d.cfg.Store.AddEvent(ctx, store.OrderEvent{OrderID: orderID, At: now, Kind: "note", Detail: note, Actor: who}); err != nil {
		return "", err
	}
	return "Note added.", nil
}

// --- order timeline -------------------------------------------------------------

type orderView struct {
	Q          string
	Found      bool
	Order      store.LedgerOrder
	Timeline   []store.OrderEvent
	Shipments  []store.ShipmentRecord
	Exceptions []store.Exception
	Audit      []store.AuditEntry
	SKUHits    []store.Exception
	Back       string
}

func (d *Dashboard) orderPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	v := orderView{Q: q, Back: r.URL.RequestURI()}
	if q != "" {
		st := d.cfg.Store
		o, ok, err := st.Order(ctx, q)
		if err == nil && !ok {
			o, ok, err = st.OrderBySalesOrder(ctx, q)
		}
		if err != nil {
			d.fail(w, "reading the order", err)
			return
		}
		id := q
		if ok {
			id = o.OrderID
		}
		if v.Timeline, err = st.Timeline(ctx, id); err != nil {
			d.fail(w, "reading the timeline", err)
			return
		}
		if v.Exceptions, err = st.Exceptions(ctx, store.ExceptionFilter{OrderID: id}); err != nil {
			d.fail(w, "reading the exceptions", err)
			return
		}
		v.Found = ok || len(v.Timeline) > 0
		v.Order = o
		if v.Found {
			v.Order.OrderID = id
			if v.Shipments, err = st.Shipments(ctx, id); err != nil {
				d.fail(w, "reading the shipments", err)
				return
			}
			subjects := []string{"order:" + id}
			for _, e := range v.Exceptions {
				subjects = append(subjects, fmt.Sprintf("exception:%d", e.ID))
			}
			for _, s := range subjects {
				a, err := st.AuditLog(ctx, s, 100)
				if err != nil {
					d.fail(w, "reading the audit log", err)
					return
				}
				v.Audit = append(v.Audit, a...)
			}
			sort.Slice(v.Audit, func(i, j int) bool { return v.Audit[i].ID < v.Audit[j].ID })
		} else if v.SKUHits, err = st.Exceptions(ctx, store.ExceptionFilter{SKU: q, Limit: 200}); err != nil {
			d.fail(w, "searching exceptions by SKU", err)
			return
		}
	}
	d.render(w, r, "order", "Order timeline", v)
}

// --- SLA ------------------------------------------------------------------------

func (d *Dashboard) slaPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st := d.cfg.Store
	waiting, err := st.AwaitingAcceptance(ctx, 200)
	if err != nil {
		d.fail(w, "reading orders awaiting acceptance", err)
		return
	}
	notIn, err := st.ShippingNotImported(ctx, 200)
	if err != nil {
		d.fail(w, "reading orders not in Peoplevox", err)
		return
	}
	notShipped, err := st.DespatchedNotShipped(ctx, 200)
	if err != nil {
		d.fail(w, "reading despatched orders", err)
		return
	}
	d.render(w, r, "sla", "SLA", map[string]any{"Waiting": waiting, "NotInPeoplevox": notIn, "NotShipped": notShipped})
}

// --- stock ------------------------------------------------------------------------

func (d *Dashboard) stockPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st := d.cfg.Store
	pending, err := st.PendingStock(ctx, 100)
	if err != nil {
		d.fail(w, "reading pending stock", err)
		return
	}
	n, err := st.CountPendingStock(ctx)
	if err != nil {
		d.fail(w, "counting pending stock", err)
		return
	}
	imports, err := st.RecentStockImports(ctx, 15)
	if err != nil {
		d.fail(w, "reading stock imports", err)
		return
	}
	drift, _, err := st.Cursor(ctx, DriftCursor)
	if err != nil {
		d.fail(w, "reading the last drift", err)
		return
	}
	d.render(w, r, "stock", "Stock", map[string]any{"Pending": pending, "PendingCount": n, "Imports": imports, "Drift": drift})
}

// DriftCursor is the store cursor where the stock output records the drift
// found by the last full sync ("<n> SKU(s) at <time>").
const DriftCursor = "health/stock_full_sync/drift"

// --- flows ------------------------------------------------------------------------

type rateRow struct {
	store.FlowErrors
	PerHundred string
}

func (d *Dashboard) flowsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st := d.cfg.Store
	health, err := st.Health(ctx)
	if err != nil {
		d.fail(w, "reading flow health", err)
		return
	}
	rates, orders, err := st.ExceptionRates(ctx)
	if err != nil {
		d.fail(w, "reading error rates", err)
		return
	}
	rows := make([]rateRow, len(rates))
	for i, rt := range rates {
		rows[i] = rateRow{FlowErrors: rt, PerHundred: "–"}
		if orders > 0 {
			rows[i].PerHundred = strconv.FormatFloat(float64(rt.LastDay)*100/float64(orders), 'f', 1, 64)
		}
	}
	var budgets []mirakl.BudgetStats
	if d.cfg.MiraklURL != "" {
		budgets = mirakl.GovernorStats(d.cfg.MiraklURL, d.cfg.MiraklShopID)
	}
	d.render(w, r, "flows", "Flows", map[string]any{"Health": health, "Rates": rows, "Orders": orders, "Budgets": budgets})
}

// --- formatting -------------------------------------------------------------------

func dashDur(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		s = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if neg {
		return "-" + s
	}
	return s
}

// dashAge is how long ago t was, relative to now.
func dashAge(now, t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return dashDur(now.Sub(t))
}

// dashLeft is the time left until a deadline ("overdue" when past).
func dashLeft(now time.Time, t *time.Time) string {
	if t == nil {
		return "unknown"
	}
	d := t.Sub(now)
	if d < 0 {
		return "overdue by " + dashDur(-d)
	}
	return dashDur(d)
}

func dashWhen(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return "–"
		}
		return v.UTC().Format("2006-01-02 15:04:05Z")
	case *time.Time:
		if v == nil {
			return "–"
		}
		return dashWhen(*v)
	}
	return fmt.Sprint(t)
}

// ServeDashboard serves d on addr until ctx ends. It returns once listening
// (or with the listen error); errors after that are logged.
func ServeDashboard(ctx context.Context, d *Dashboard, addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dashboard: cannot listen on %s: %w: set MPVX_DASHBOARD_ADDR to a free host:port", addr, err)
	}
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.cfg.Logf("dashboard: server stopped: %v", err)
		}
	}()
	return ln.Addr(), nil
}
