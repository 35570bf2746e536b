package peoplevox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AuthReason says why the client authenticated.
type AuthReason int

const (
	AuthInitial AuthReason = iota // first session
	AuthExpired                   // the server reported Session Expired / Invalid Session
	AuthRefresh                   // proactive refresh after SessionMaxAge
)

func (r AuthReason) String() string {
	switch r {
	case AuthInitial:
		return "initial"
	case AuthExpired:
		return "expired"
	case AuthRefresh:
		return "refresh"
	}
	return "unknown"
}

type session struct {
	clientID string
	id       string
	obtained time.Time
}

type authFlight struct {
	done chan struct{}
	st   *session
	err  error
}

// sessionManager holds the one shared session. Authentication is
// single-flight: concurrent callers that need a (new) session wait for the
// same Authenticate call.
type sessionManager struct {
	c *Client

	mu         sync.Mutex
	cur        *session
	flight     *authFlight
	ids        []string // recent session ids, for redaction
	failedAt   time.Time
	failedWith error

	hookMu  sync.Mutex
	auths   atomic.Int64
	reauths atomic.Int64
}

func (m *sessionManager) knownIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.ids...)
}

func (m *sessionManager) stale(s *session) bool {
	age := m.c.cfg.SessionMaxAge
	return age > 0 && m.c.now().Sub(s.obtained) >= age
}

// get returns the current session, authenticating first if there is none
// or it is older than SessionMaxAge.
func (m *sessionManager) get(ctx context.Context) (*session, error) {
	m.mu.Lock()
	if m.cur != nil && !m.stale(m.cur) {
		s := m.cur
		m.mu.Unlock()
		return s, nil
	}
	reason := AuthInitial
	if m.cur != nil {
		reason = AuthRefresh
	}
	f, err := m.startLocked(ctx, reason)
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return m.wait(ctx, f)
}

// renew replaces bad, the session the server just rejected. If another
// caller already replaced it, the newer session is returned without a new
// Authenticate.
func (m *sessionManager) renew(ctx context.Context, bad *session) (*session, error) {
	m.mu.Lock()
	if m.cur != nil && m.cur != bad && !m.stale(m.cur) {
		s := m.cur
		m.mu.Unlock()
		return s, nil
	}
	if m.cur == bad {
		m.cur = nil
	}
	f, err := m.startLocked(ctx, AuthExpired)
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return m.wait(ctx, f)
}

// startLocked joins the authentication in flight or starts one. The
// Authenticate call runs detached from the caller's cancellation (bounded by
// the retry policy and RequestTimeout) so that one impatient caller does not
// fail the others waiting on it.
func (m *sessionManager) startLocked(ctx context.Context, reason AuthReason) (*authFlight, error) {
	if m.flight != nil {
		return m.flight, nil
	}
	if cd := m.c.cfg.AuthFailureCooldown; cd > 0 && m.failedWith != nil && m.c.now().Sub(m.failedAt) < cd {
		return nil, m.failedWith
	}
	f := &authFlight{done: make(chan struct{})}
	m.flight = f
	actx := context.WithoutCancel(ctx)
	go func() {
		st, err := m.c.authenticate(actx)
		m.mu.Lock()
		m.flight = nil
		if err == nil {
			m.cur = st
			m.failedWith = nil
			m.ids = append(m.ids, st.id)
			if len(m.ids) > 4 {
				m.ids = m.ids[len(m.ids)-4:]
			}
			m.auths.Add(1)
			if reason != AuthInitial {
				m.reauths.Add(1)
			}
		} else {
			var ae *APIError
			if errors.As(err, &ae) {
				m.failedAt, m.failedWith = m.c.now(), err
			}
		}
		f.st, f.err = st, err
		m.mu.Unlock()
		if hook := m.c.cfg.OnAuthenticate; hook != nil && err == nil {
			m.hookMu.Lock()
			hook(reason)
			m.hookMu.Unlock()
		}
		close(f.done)
	}()
	return f, nil
}

func (m *sessionManager) wait(ctx context.Context, f *authFlight) (*session, error) {
	select {
	case <-f.done:
		return f.st, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// authenticate calls Authenticate (no session header) and parses
// Detail = "clientId,sessionId".
func (c *Client) authenticate(ctx context.Context) (*session, error) {
	req := &authenticateReq{ClientID: c.cfg.ClientID, Username: c.cfg.Username, Password: c.pwB64}
	resp, err := c.roundTrip(ctx, opAuthenticate, "", false, func(send func([]byte) (*IntegrationResponse, error)) (*IntegrationResponse, error) {
		payload, err := encodeEnvelope(nil, req)
		if err != nil {
			return nil, err
		}
		return send(payload)
	})
	if err != nil {
		return nil, err
	}
	if resp.ResponseID != 0 {
		return nil, c.apiError(opAuthenticate, "", resp)
	}
	detail := strings.TrimSpace(resp.Detail)
	clientID, sessionID, ok := strings.Cut(detail, ",")
	clientID, sessionID = strings.TrimSpace(clientID), strings.TrimSpace(sessionID)
	if !ok || sessionID == "" {
		return nil, &TransportError{Operation: opAuthenticate, Kind: KindUnexpected,
			Err: fmt.Errorf("Authenticate succeeded but Detail is not \"clientId,sessionId\" (%d characters)", len(detail))}
	}
	if clientID == "" {
		clientID = c.cfg.ClientID
	}
	return &session{clientID: clientID, id: sessionID, obtained: c.now()}, nil
}

// Authenticate establishes a session now (the first call does it
// otherwise). It is a no-op when a fresh session exists. Use it as a
// start-up credentials check.
func (c *Client) Authenticate(ctx context.Context) error {
	_, err := c.sess.get(ctx)
	return err
}

// Authentications returns the number of successful Authenticate calls.
func (c *Client) Authentications() int64 { return c.sess.auths.Load() }

// Reauthentications returns the number of authentications that replaced
// an existing session (expired, invalid or refreshed).
func (c *Client) Reauthentications() int64 { return c.sess.reauths.Load() }
