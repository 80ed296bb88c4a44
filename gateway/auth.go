package gateway

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/infergate/infergate/errdefs"
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
	scopes []Scope // of each token
}

// tokenSource is one token, its file re-read when its modification time
// or size changes (looked at once per tokenRecheck at most).
type tokenSource struct {
	Name    string
	File    string
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
		ts, err := newTokenSource(t.Name, t.File, t.Value)
		if err != nil {
			return nil, fmt.Errorf("admin token %q: %w", t.Name, err)
		}
		g.tokens, g.scopes = append(g.tokens, ts), append(g.scopes, t.Scope)
	}
	return g, nil
}

// newTokenSource reads a token from its file, or takes value.
func newTokenSource(name, file, value string) (*tokenSource, error) {
	ts := &tokenSource{Name: name, File: file, value: bytes.TrimSpace([]byte(value))}
	if file != "" {
		ts.value = nil
		if err := ts.reload(time.Now()); err != nil {
			return nil, err
		}
	} else if len(ts.value) == 0 {
		return nil, errors.New("empty")
	}
	return ts, nil
}

// match returns the index of the token among tokens that presented is,
// or -1. Every token is compared, each in constant time, so that the
// time taken tells nothing of which one, or how much of one, matched.
func match(tokens []*tokenSource, presented []byte, now time.Time) int {
	found := -1
	for i, t := range tokens {
		if v := t.current(now); v != nil && subtle.ConstantTimeCompare(presented, v) == 1 && found < 0 {
			found = i
		}
	}
	return found
}

// bearer returns the token of an "Authorization: Bearer <token>" header
// value (the scheme is case-insensitive, as RFC 9110 says).
func bearer(auth []byte) ([]byte, bool) {
	const scheme = "bearer "
	if len(auth) <= len(scheme) || !bytes.EqualFold(auth[:len(scheme)], []byte(scheme)) {
		return nil, false
	}
	return bytes.TrimSpace(auth[len(scheme):]), true
}

// basicPassword returns the password of an "Authorization: Basic
// <base64(user:password)>" header value: a browser sends the admin token
// that way to the console and the API calls it makes, after the console
// asked with a Basic challenge. The user name is ignored.
func basicPassword(auth []byte) ([]byte, bool) {
	const scheme = "basic "
	if len(auth) <= len(scheme) || !bytes.EqualFold(auth[:len(scheme)], []byte(scheme)) {
		return nil, false
	}
	dec, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(auth[len(scheme):])))
	if err != nil {
		return nil, false
	}
	_, pass, ok := bytes.Cut(dec, []byte(":"))
	return pass, ok && len(pass) > 0
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
	return g.checkToken(ctx.Request.Header.Peek("Authorization"), scope, trusted, isLoopback(ctx.RemoteAddr()))
}

// checkToken authorizes an admin call by its Authorization value (nil:
// none); trusted is the admin listener's, loopback a client on this
// machine.
func (g *adminGuard) checkToken(auth []byte, scope Scope, trusted, loopback bool) (actor string, err error) {
	if g.auth.AllowUnauthenticated {
		return "unauthenticated", nil
	}
	if len(auth) == 0 {
		if trusted {
			return "admin-listener", nil
		}
		if !g.auth.DistrustLoopback && loopback {
			return "loopback", nil
		}
		return "", unauthenticated("the repository API needs a bearer token from a non-loopback client: " +
			"configure admin.tokens (or INFERGATE_ADMIN_TOKEN) and send Authorization: Bearer <token>")
	}
	presented, ok := bearer(auth)
	if !ok {
		presented, ok = basicPassword(auth)
	}
	if !ok {
		return "", unauthenticated("the Authorization header must be Bearer <token> (or, for the console in a browser, Basic with the token as the password)")
	}
	i := match(g.tokens, presented, time.Now())
	switch {
	case i < 0:
		return "", unauthenticated("invalid admin token")
	case scope == ScopeWrite && g.scopes[i] != ScopeWrite:
		return "", forbidden(fmt.Sprintf("admin token %q has read scope: this call needs write", g.tokens[i].Name))
	}
	return g.tokens[i].Name, nil
}

// adminOnly serves h to the requests the guard authorizes for scope
// (trusted: on the admin listener, no token needed), and logs
// each write call with its actor.
func (s *Server) adminOnly(trusted bool, scope Scope, h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		actor, err := s.guard.Load().check(ctx, scope, trusted)
		if err != nil {
			if errdefs.KindOf(err) == errdefs.Unauthenticated {
				if bytes.HasPrefix(ctx.Path(), []byte("/console")) {
					// A browser asks for credentials on a Basic challenge
					// and sends them on the page's API calls too.
					ctx.Response.Header.Set("WWW-Authenticate", `Basic realm="infergate console (any user, the admin token as password)", charset="UTF-8"`)
				} else {
					ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="infergate"`)
				}
			}
			s.fail(ctx, err)
			return
		}
		if err := s.crossOrigin(ctx); err != nil {
			s.fail(ctx, err)
			return
		}
		if len(ctx.Request.Header.Peek("Authorization")) == 0 {
			// No token: the audit trail names the client's address.
			actor = ctx.RemoteIP().String()
		}
		ctx.SetUserValue(actorKey, actor)
		if scope == ScopeWrite {
			s.log.Info("admin call", "actor", actor, "method", string(ctx.Method()), "path", string(ctx.Path()),
				"request_id", string(ctx.Request.Header.Peek(HeaderRequestID)))
		}
		h(ctx)
	}
}

// crossOrigin refuses the unsafe (non-GET) admin calls that a browser
// makes from another site's page: a browser resends the console's Basic
// credentials, and a loopback client needs none, so without it any page
// could unload a model through the operator's browser. net/http's
// CrossOriginProtection decides, from Sec-Fetch-Site and Origin; clients
// that are not browsers send neither and pass.
func (s *Server) crossOrigin(ctx *fasthttp.RequestCtx) error {
	req := &http.Request{Method: string(ctx.Method()), Host: string(ctx.Host()), Header: http.Header{}}
	for _, h := range []string{"Sec-Fetch-Site", "Origin"} {
		if v := ctx.Request.Header.Peek(h); len(v) > 0 {
			req.Header.Set(h, string(v))
		}
	}
	if err := s.csrf.Check(req); err != nil {
		return forbidden("a cross-origin request to the admin API from a browser is refused: " + err.Error())
	}
	return nil
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

// InferenceToken is a named bearer token for the inference API. A
// request presenting it belongs to Tenant (default: the token's Name),
// whatever its tenant header says, so that a tenant's limits cannot be
// escaped by naming another.
type InferenceToken struct {
	Name   string
	Tenant string
	// File holds the token, read again when it changes; empty: Value
	// is the token.
	File  string
	Value string
}

// inferenceGuard checks the tokens of inference requests: with tokens
// configured, every /v2/models/... call needs one of them (health and
// server metadata stay open, for probes).
type inferenceGuard struct {
	tokens  []*tokenSource
	tenants []string // of each token
}

func newInferenceGuard(list []InferenceToken) (*inferenceGuard, error) {
	if len(list) == 0 {
		return nil, nil
	}
	g := &inferenceGuard{}
	seen := map[string]bool{}
	for _, t := range list {
		if t.Name == "" {
			return nil, fmt.Errorf("inference token: a name is required")
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("inference token %q: defined twice", t.Name)
		}
		seen[t.Name] = true
		ts, err := newTokenSource(t.Name, t.File, t.Value)
		if err != nil {
			return nil, fmt.Errorf("inference token %q: %w", t.Name, err)
		}
		tenant := t.Tenant
		if tenant == "" {
			tenant = t.Name
		}
		g.tokens, g.tenants = append(g.tokens, ts), append(g.tenants, tenant)
	}
	return g, nil
}

// ValidateInferenceTokens reports whether the tokens can be used: named
// once each, their files readable and not empty.
func ValidateInferenceTokens(list []InferenceToken) error {
	_, err := newInferenceGuard(list)
	return err
}

// errNoInferenceToken is the answer to an inference call without a token
// when tokens are required.
var errNoInferenceToken = &errdefs.Error{Kind: errdefs.Unauthenticated,
	Msg: "this server requires an inference token (inference.tokens): send Authorization: Bearer <token>"}

// caller authorizes an inference request: its tenant (the token's, or
// "" to let the tenant header name it), or the error to answer. A nil
// guard requires no token.
func (g *inferenceGuard) caller(ctx *fasthttp.RequestCtx) (tenant string, err error) {
	if g == nil {
		return "", nil
	}
	return g.callerOf(ctx.Request.Header.Peek("Authorization"))
}

// callerOf authorizes an inference call by its Authorization value.
func (g *inferenceGuard) callerOf(auth []byte) (tenant string, err error) {
	if g == nil {
		return "", nil
	}
	if len(auth) == 0 {
		return "", errNoInferenceToken
	}
	presented, ok := bearer(auth)
	if !ok {
		presented, ok = basicPassword(auth)
	}
	if !ok {
		return "", unauthenticated("the Authorization header must be Bearer <token> (or, for the console in a browser, Basic with the token as the password)")
	}
	i := match(g.tokens, presented, time.Now())
	if i < 0 {
		return "", unauthenticated("invalid inference token")
	}
	return g.tenants[i], nil
}

// inferenceOnly serves h to the requests that the inference guard
// authorizes (metadata, readiness and config of models; infer checks
// for itself, as it needs the tenant).
func (s *Server) inferenceOnly(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if _, err := s.callers.Load().caller(ctx); err != nil {
			s.refuseCaller(ctx, err)
			return
		}
		h(ctx)
	}
}

// refuseCaller answers an unauthorized inference request.
func (s *Server) refuseCaller(ctx *fasthttp.RequestCtx, err error) {
	ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="infergate"`)
	s.fail(ctx, err)
}

func unauthenticated(msg string) error {
	return &errdefs.Error{Kind: errdefs.Unauthenticated, Msg: msg}
}

func forbidden(msg string) error { return &errdefs.Error{Kind: errdefs.Forbidden, Msg: msg} }

// AuthorizeAdmin authorizes a repository call made over another protocol
// (gRPC) with the tokens and rules of the HTTP API: authorization is the
// call's Authorization value (empty: none), loopback whether the client
// is on this machine, write whether the call changes something. It
// returns the actor for the logs; errors carry errdefs kinds
// (Unauthenticated, Forbidden).
func (s *Server) AuthorizeAdmin(authorization []byte, loopback, write bool) (actor string, err error) {
	scope := ScopeRead
	if write {
		scope = ScopeWrite
	}
	return s.guard.Load().checkToken(authorization, scope, false, loopback)
}

// AuthorizeInference authorizes an inference call made over another
// protocol with the inference tokens: it returns the tenant the token
// names, "" when none are required.
func (s *Server) AuthorizeInference(authorization []byte) (tenant string, err error) {
	return s.callers.Load().callerOf(authorization)
}

// AdmitTenant applies the tenant limits to an inference call made over
// another protocol: tenant is its token's ("" none), header its tenant
// header's value. release ends the call; priority caps the priority it
// asked for. Both are nil when no tenant limits apply to the call.
func (s *Server) AdmitTenant(tenant string, header []byte, model string) (release func(), priority func(int64) int64, err error) {
	st, err := s.tenants.Load().admitName(tenant, header, model, s.observer)
	if err != nil || st == nil {
		return nil, nil, err
	}
	return st.release, st.priority, nil
}

// TenantHeader names, in lower case (as a gRPC metadata key), the header
// that names a call's tenant; "" when no tenants are configured.
func (s *Server) TenantHeader() string {
	if ts := s.tenants.Load(); ts != nil {
		return ts.key
	}
	return ""
}
