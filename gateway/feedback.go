package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/infergate/infergate/monitoring/feedback"
	"github.com/infergate/infergate/runtime"
)

// headerForwarded marks feedback one replica forwards to another: the
// peer answers from its own store and forwards no further.
const headerForwarded = "X-Infergate-Forwarded"

// feedbackTimeout bounds a forward to the peers.
const feedbackTimeout = 5 * time.Second

// recordPrediction remembers the request's prediction for feedback: its
// id is the body's id, else the X-Request-Id the answer carries.
func (s *Server) recordPrediction(ctx *fasthttp.RequestCtx, model string, version int64, bodyID string, outputs []runtime.Tensor) {
	if s.opts.Feedback == nil {
		return
	}
	id := bodyID
	if id == "" {
		id = string(ctx.Response.Header.Peek(HeaderRequestID))
	}
	s.opts.Feedback.Record(model, version, id, outputs)
}

// parseFeedback decodes POST /v2/models/{m}/feedback's body: {"id": ...,
// "label": N | [N, ...]} or {"id": ..., "value": X | [X, ...]}.
func parseFeedback(body []byte) (id string, a feedback.Answer, err error) {
	v, err := fastjson.ParseBytes(body)
	if err != nil {
		return "", a, badRequest(`malformed JSON: %v (want {"id": "<request id>", "label": <class>} or {"id": ..., "value": <number>})`, err)
	}
	if v.Type() != fastjson.TypeObject {
		return "", a, badRequest(`the body must be a JSON object: {"id": "<request id>", "label": <class>}`)
	}
	idv := v.Get("id")
	if idv == nil || idv.Type() != fastjson.TypeString || len(idv.GetStringBytes()) == 0 {
		return "", a, badRequest(`"id" must be the inference request's id, a non-empty string`)
	}
	id = string(idv.GetStringBytes())
	label, value := v.Get("label"), v.Get("value")
	switch {
	case label != nil && value != nil, label == nil && value == nil:
		return "", a, badRequest(`give "label" or "value", one of them`)
	case label != nil:
		a.Labels, err = numbers(label, "label", func(x *fastjson.Value) (int64, error) { return x.Int64() })
	default:
		a.Values, err = numbers(value, "value", func(x *fastjson.Value) (float64, error) { return x.Float64() })
	}
	return id, a, err
}

// numbers reads one number or a list of them.
func numbers[T int64 | float64](v *fastjson.Value, name string, get func(*fastjson.Value) (T, error)) ([]T, error) {
	items := []*fastjson.Value{v}
	if v.Type() == fastjson.TypeArray {
		items, _ = v.Array()
		if len(items) == 0 {
			return nil, badRequest("%q must not be an empty list", name)
		}
	}
	out := make([]T, len(items))
	for i, x := range items {
		n, err := get(x)
		if err != nil || x.Type() != fastjson.TypeNumber {
			what := "a number"
			if name == "label" {
				what = "an integer class"
			}
			return nil, badRequest("%q must be %s or a list of them, one a row", name, what)
		}
		out[i] = n
	}
	return out, nil
}

// giveFeedback answers POST /v2/models/{m}/feedback. Feedback for an id
// this replica did not serve goes to the peer that did: the one the id
// names (ids infergate generates end in "@<replica address>"), else
// every peer, the first that knows the id answering.
func (s *Server) giveFeedback(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("model").(string)
	m, err := s.repo.Model(name)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	id, a, err := parseFeedback(ctx.PostBody())
	if err != nil {
		s.fail(ctx, err)
		return
	}
	g, err := s.opts.Feedback.Give(m.Name, id, a)
	if err == nil {
		s.writeJSON(ctx, g)
		return
	}
	if !feedback.IsUnknown(err) || len(ctx.Request.Header.Peek(headerForwarded)) > 0 || len(s.opts.FeedbackPeers) == 0 {
		s.fail(ctx, err)
		return
	}
	if s.forwardFeedback(ctx, m.Name, id) {
		return
	}
	s.fail(ctx, err)
}

// forwardFeedback sends the request's feedback to the peers; true when
// one of them took it or refused it (its answer is then the answer).
func (s *Server) forwardFeedback(ctx *fasthttp.RequestCtx, model, id string) bool {
	c, cancel := context.WithTimeout(context.Background(), feedbackTimeout)
	defer cancel()
	peers, err := s.peers(c)
	if err != nil {
		s.log.Warn("feedback: the peers do not resolve", "peers", s.opts.FeedbackPeers, "err", err)
		return false
	}
	if _, addr, ok := strings.Cut(id, "@"); ok {
		if addr == s.opts.Advertise {
			return false // this replica's own, and gone
		}
		if i := slices.IndexFunc(peers, func(p peer) bool { return p.addr == addr }); i >= 0 {
			// The id names its replica (a peer: an id cannot send this
			// replica anywhere else).
			peers = peers[i : i+1]
		}
	}
	// What the forwards send, copied once: the request is not to be read
	// from several goroutines.
	fwd := forward{model: model, body: slices.Clone(ctx.PostBody()), header: http.Header{}}
	for _, h := range []string{"Authorization", HeaderRequestID} {
		if v := ctx.Request.Header.Peek(h); len(v) > 0 {
			fwd.header.Set(h, string(v))
		}
	}
	answers := make([]peerAnswer, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			answers[i] = s.postPeer(c, p, fwd)
			if answers[i].err != nil {
				s.log.Warn("feedback: a peer did not answer", "peer", p.addr, "err", answers[i].err)
			}
		})
	}
	wg.Wait()
	// The peer that took it answers; else one that knew the id and
	// refused the feedback (400). Any other status (a peer's 401, 429 or
	// 503) is not the serving replica's word: logged, and the id stays
	// unknown.
	for _, want := range []int{http.StatusOK, http.StatusBadRequest} {
		for _, a := range answers {
			if a.err == nil && a.status == want {
				ctx.SetStatusCode(a.status)
				ctx.SetContentType("application/json")
				ctx.SetBody(a.body)
				return true
			}
		}
	}
	for i, a := range answers {
		if a.err == nil && a.status != http.StatusNotFound {
			s.log.Warn("feedback: a peer refused the forward", "peer", peers[i].addr, "status", a.status, "body", string(a.body))
		}
	}
	return false
}

// forward is what a forward of feedback sends.
type forward struct {
	model  string
	body   []byte
	header http.Header
}

type peerAnswer struct {
	status int
	body   []byte
	err    error
}

// postPeer posts the feedback to a peer's feedback endpoint. Over TLS
// the peer's certificate is checked against the name in feedback.peers
// that the address came from.
func (s *Server) postPeer(c context.Context, p peer, f forward) peerAnswer {
	scheme := "http://"
	if s.opts.TLS != nil {
		scheme = "https://"
	}
	req, err := http.NewRequestWithContext(c, http.MethodPost, scheme+p.addr+"/v2/models/"+url.PathEscape(f.model)+"/feedback", bytes.NewReader(f.body))
	if err != nil {
		return peerAnswer{err: err}
	}
	req.Header = f.header.Clone()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerForwarded, "1")
	resp, err := s.peerClient(p.host).Do(req)
	if err != nil {
		return peerAnswer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return peerAnswer{status: resp.StatusCode, body: b, err: err}
}

// peerClient returns the HTTP client for the peers that host (a name of
// feedback.peers) resolves to: one a name, so that TLS verifies each
// against its own name.
func (s *Server) peerClient(host string) *http.Client {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	if c := s.peerClients[host]; c != nil {
		return c
	}
	tr := &http.Transport{MaxConnsPerHost: 16, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute, ResponseHeaderTimeout: feedbackTimeout}
	if s.opts.TLS != nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	c := &http.Client{Transport: tr, Timeout: feedbackTimeout}
	if s.peerClients == nil {
		s.peerClients = map[string]*http.Client{}
	}
	s.peerClients[host] = c
	return c
}

// closePeers closes the peer clients' idle connections.
func (s *Server) closePeers() {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	for _, c := range s.peerClients {
		c.CloseIdleConnections()
	}
}

// peer is an address of feedback.peers, with the name it came from.
type peer struct{ addr, host string }

// peers resolves FeedbackPeers to addresses (a DNS name stands for each
// of its addresses: a headless Service), without this replica's own.
func (s *Server) peers(c context.Context) ([]peer, error) {
	var out []peer
	var errs []error
	for _, p := range s.opts.FeedbackPeers {
		host, port, err := net.SplitHostPort(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("peer %q: %w", p, err))
			continue
		}
		ips, err := net.DefaultResolver.LookupHost(c, host)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ip := range ips {
			a := net.JoinHostPort(ip, port)
			if a != s.opts.Advertise && !slices.ContainsFunc(out, func(p peer) bool { return p.addr == a }) {
				out = append(out, peer{addr: a, host: host})
			}
		}
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
