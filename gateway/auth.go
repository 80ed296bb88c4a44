package gateway

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Scope is what an admin token may do: read (the index, GET calls) or
// write (everything: loads, unloads, labels, routing, rollouts).
type Scope string

// The scopes.
const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
)

// AdminToken is a named bearer token for the repository API. The name is
// the actor in logs; the token is never logged.
type AdminToken struct {
	Name  string
	Scope Scope
	// File holds the token (surrounding whitespace ignored); it is read
	// again when it changes, so that a token rotates without a restart.
	// Empty: Value is the token.
	File  string
	Value string
}

// AdminAuth guards the repository API (/v2/repository/...).
//
// A request with "Authorization: Bearer <token>" is served when the
// token matches one of Tokens (compared in constant time) whose scope
// allows the call; a wrong token gets 401, a read token on a write call
// 403. A request without a token is served only to a loopback client,
// and only while TrustLoopback holds; every other gets 401 saying how to
// set a token. AllowUnauthenticated serves everyone.
type AdminAuth struct {
	Tokens []AdminToken
	// DistrustLoopback refuses loopback clients without a token too
	// (behind a sidecar every request comes from 127.0.0.1). Default
	// false: loopback is trusted.
	DistrustLoopback     bool
	AllowUnauthenticated bool
}

// Validate reports whether the tokens can be used: named, scoped, and
// their files readable and not empty.
func (a AdminAuth) Validate() error {
	_, err := newAdminGuard(a)
	return err
}

// tokenRecheck is how often a token file is looked at for a change.
const tokenRecheck = time.Second

// adminGuard checks admin requests against an AdminAuth.
type adminGuard struct {
	auth   AdminAuth
	tokens []*tokenSource
}

// tokenSource is one token, its file re-read when its modification time
// or size changes (looked at once per tokenRecheck at most).
type tokenSource struct {
	AdminToken
	mu      sync.Mutex
	value   []byte
	checked time.Time
	mod     time.Time
	size    int64
	err     error
}

func newAdminGuard(a AdminAuth) (*adminGuard, error) {
	g := &adminGuard{auth: a}
	for _, t := range a.Tokens {
		if t.Name == "" {
			return nil, fmt.Errorf("admin token: a name is required")
		}
		if t.Scope != ScopeRead && t.Scope != ScopeWrite {
			return nil, fmt.Errorf("admin token %q: scope must be read or write, got %q", t.Name, t.Scope)
		}
		ts := &tokenSource{AdminToken: t, value: bytes.TrimSpace([]byte(t.Value))}
		if t.File != "" {
			if err := ts.reload(time.Now()); err != nil {
				return nil, fmt.Errorf("admin token %q: %w", t.Name, err)
			}
		} else if len(ts.value) == 0 {
			return nil, fmt.Errorf("admin token %q: empty", t.Name)
		}
		g.tokens = append(g.tokens, ts)
	}
	return g, nil
}

// reload reads the token file if it changed; with ts.mu held or before
// ts is shared.
func (ts *tokenSource) reload(now time.Time) error {
	ts.checked = now
	fi, err := os.Stat(ts.File)
	if err != nil {
		ts.err = fmt.Errorf("token file: %w", err)
		return ts.err
	}
	if ts.value != nil && fi.ModTime().Equal(ts.mod) && fi.Size() == ts.size {
		return ts.err
	}
	b, err := os.ReadFile(ts.File)
	if err != nil {
		ts.err = fmt.Errorf("token file: %w", err)
		return ts.err
	}
	v := bytes.TrimSpace(b)
	if len(v) == 0 {
		ts.err = fmt.Errorf("token file %s is empty", ts.File)
		return ts.err
	}
	ts.value, ts.mod, ts.size, ts.err = v, fi.ModTime(), fi.Size(), nil
	return nil
}

// current returns the token's value now (nil when its file cannot be
// read: the token then matches nothing).
func (ts *tokenSource) current(now time.Time) []byte {
	if ts.File == "" {
		return ts.value
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if now.Sub(ts.checked) >= tokenRecheck {
		ts.reload(now)
	}
	if ts.err != nil {
		return nil
	}
	return ts.value
}

// check authorizes an admin request needing scope: the actor's name for
// the logs, or the error to answer.
func (g *adminGuard) check(ctx *fasthttp.RequestCtx, scope Scope, trusted bool) (actor string, err error) {
	if g.auth.AllowUnauthenticated {
		return "unauthenticated", nil
	}
	auth := ctx.Request.Header.Peek("Authorization")
	if len(auth) == 0 {
		if trusted {
			return "admin-listener", nil
		}
		if !g.auth.DistrustLoopback && isLoopback(ctx.RemoteAddr()) {
			return "loopback", nil
		}
		return "", &Error{Status: http.StatusUnauthorized, Msg: "the repository API needs a bearer token from a non-loopback client: " +
			"configure admin.tokens (or INFERGATE_ADMIN_TOKEN) and send Authorization: Bearer <token>"}
	}
	presented, ok := bytes.CutPrefix(auth, []byte("Bearer "))
	if !ok {
		return "", &Error{Status: http.StatusUnauthorized, Msg: "the Authorization header must be Bearer <token>"}
	}
	var match *tokenSource
	now := time.Now()
	for _, t := range g.tokens { // every token compared, in constant time each
		if v := t.current(now); v != nil && subtle.ConstantTimeCompare(presented, v) == 1 && match == nil {
			match = t
		}
	}
	switch {
	case match == nil:
		return "", &Error{Status: http.StatusUnauthorized, Msg: "invalid admin token"}
	case scope == ScopeWrite && match.Scope != ScopeWrite:
		return "", &Error{Status: http.StatusForbidden, Msg: fmt.Sprintf("admin token %q has read scope: this call needs write", match.Name)}
	}
	return match.Name, nil
}

// adminOnly serves h to the requests the guard authorizes for scope
// (trusted: on the admin listener, no token needed), and logs
// each write call with its actor.
func (s *Server) adminOnly(trusted bool, scope Scope, h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		actor, err := s.guard.Load().check(ctx, scope, trusted)
		if err != nil {
			if e, ok := err.(*Error); ok && e.Status == http.StatusUnauthorized {
				ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="infergate"`)
			}
			s.fail(ctx, err)
			return
		}
		if scope == ScopeWrite {
			s.log.Info("admin call", "actor", actor, "method", string(ctx.Method()), "path", string(ctx.Path()),
				"request_id", string(ctx.Request.Header.Peek(HeaderRequestID)))
		}
		h(ctx)
	}
}

func isLoopback(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}
