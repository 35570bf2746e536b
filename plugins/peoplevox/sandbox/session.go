package sandbox

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"time"
)

// Session error texts, as the real service words them (Detail of an HTTP
// 200 answer with ResponseId -1).
const (
	detailSessionExpired = "System : Security - Session Expired"
	detailInvalidSession = "System : Security - Invalid Session"
	detailAuthFailed     = "Error: Failed to authenticate"
)

// sessions issues and checks session ids. A session expires SessionTTL
// after it was issued (absolute) or, when SessionIdleTTL > 0, after that long
// without a call; expired ids are remembered so they answer "Session
// Expired" rather than "Invalid Session". A new Authenticate does not end
// earlier sessions.
type sessions struct {
	mu      sync.Mutex
	live    map[string]*session
	expired map[string]bool
	stats   SessionStats
}

type session struct {
	issued, lastUsed time.Time
}

// SessionStats counts authentication and session outcomes.
type SessionStats struct {
	Issued            int `json:"issued"`             // successful Authenticate calls
	ReAuthentications int `json:"re_authentications"` // Authenticate calls after the first success
	AuthFailures      int `json:"auth_failures"`
	ExpiredAnswers    int `json:"expired_answers"` // "Session Expired" answers (TTL or fault)
	InvalidAnswers    int `json:"invalid_answers"` // "Invalid Session" answers
	Live              int `json:"live"`
}

func newSessions() *sessions {
	return &sessions{live: map[string]*session{}, expired: map[string]bool{}}
}

// authenticate checks credentials (password base64-encoded on the wire)
// and returns a new 32-hex session id.
func (ss *sessions) authenticate(cfg *Config, clientID, username, password string, now time.Time) (string, bool) {
	pw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(password))
	ok := err == nil && strings.EqualFold(clientID, cfg.ClientID) && username == cfg.Username && string(pw) == cfg.Password
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !ok {
		ss.stats.AuthFailures++
		return "", false
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	ss.live[id] = &session{issued: now, lastUsed: now}
	if ss.stats.Issued > 0 {
		ss.stats.ReAuthentications++
	}
	ss.stats.Issued++
	return id, true
}

// check validates a session at now; detail is "" when the session is good.
func (ss *sessions) check(cfg *Config, creds *credentials, now time.Time) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if creds == nil || creds.SessionID == "" || (creds.ClientID != "" && !strings.EqualFold(creds.ClientID, cfg.ClientID)) {
		ss.stats.InvalidAnswers++
		return detailInvalidSession
	}
	id := strings.TrimSpace(creds.SessionID)
	s := ss.live[id]
	if s == nil {
		if ss.expired[id] {
			ss.stats.ExpiredAnswers++
			return detailSessionExpired
		}
		ss.stats.InvalidAnswers++
		return detailInvalidSession
	}
	if (cfg.SessionTTL > 0 && !now.Before(s.issued.Add(cfg.SessionTTL))) ||
		(cfg.SessionIdleTTL > 0 && !now.Before(s.lastUsed.Add(cfg.SessionIdleTTL))) {
		ss.expireLocked(id)
		ss.stats.ExpiredAnswers++
		return detailSessionExpired
	}
	s.lastUsed = now
	return ""
}

// expire ends a session now (session_expiry fault); it reports whether the
// id was live.
func (ss *sessions) expire(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.live[id]; ok {
		ss.expireLocked(id)
	}
	ss.stats.ExpiredAnswers++
}

func (ss *sessions) expireLocked(id string) {
	delete(ss.live, id)
	ss.expired[id] = true
}

func (ss *sessions) snapshot() SessionStats {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	st := ss.stats
	st.Live = len(ss.live)
	return st
}
