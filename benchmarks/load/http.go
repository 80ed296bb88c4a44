package load

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/infergate/infergate/gateway/client"
)

// Target is one model on one KServe v2 server.
type Target struct {
	// URL is the server's base URL: http://127.0.0.1:8000.
	URL string
	// Model is the model's name.
	Model string
	// Version is the model version; empty for the server's default.
	Version string
}

// InferPath is the target's inference path.
func (t Target) InferPath() string {
	p := "/v2/models/" + url.PathEscape(t.Model)
	if t.Version != "" {
		p += "/versions/" + url.PathEscape(t.Version)
	}
	return p + "/infer"
}

// hostClient returns a fasthttp client for t's server with conns
// connections at most.
func (t Target) hostClient(conns int, timeout time.Duration) (*fasthttp.HostClient, string, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, "", fmt.Errorf("url %q: %w", t.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "", fmt.Errorf("url %q: want http:// or https://", t.URL)
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	hc := &fasthttp.HostClient{
		Addr:                addr,
		IsTLS:               u.Scheme == "https",
		MaxConns:            conns,
		ReadTimeout:         timeout,
		WriteTimeout:        timeout,
		MaxIdleConnDuration: time.Minute,
		// The load generator reads every answer whole and needs no header
		// normalization work.
		DisableHeaderNamesNormalizing: true,
	}
	return hc, u.Scheme + "://" + addr + u.EscapedPath() + t.InferPath(), nil
}

// request prepares req to send body i of p.
func (p *Payload) request(req *fasthttp.Request, uri string, i int, headerLens []string) {
	req.Reset()
	req.SetRequestURI(uri)
	req.Header.SetMethod(fasthttp.MethodPost)
	if p.HeaderLens[i] >= 0 {
		req.Header.SetContentType("application/octet-stream")
		req.Header.Set(client.HeaderInferenceHeaderLength, headerLens[i])
	} else {
		req.Header.SetContentType("application/json")
	}
	req.SetBodyRaw(p.Bodies[i])
}

// Probe sends p's first body to t once and checks that the answer is a
// 2xx KServe v2 inference response; it returns the server's error text
// otherwise. Run calls it first, so that a misconfigured run fails at
// once instead of counting errors for a minute.
func Probe(ctx context.Context, t Target, p *Payload) error {
	if len(p.Bodies) == 0 {
		return fmt.Errorf("empty payload")
	}
	c := client.New(t.URL, nil)
	defer c.CloseIdleConnections()
	header := map[string][]string{"Content-Type": {"application/json"}}
	if p.HeaderLens[0] >= 0 {
		header["Content-Type"] = []string{"application/octet-stream"}
		header[client.HeaderInferenceHeaderLength] = []string{strconv.Itoa(p.HeaderLens[0])}
	}
	status, body, respHeader, err := c.Do(ctx, "POST", t.InferPath(), p.Bodies[0], header)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("%s answers %d: %s", t.URL+t.InferPath(), status, body)
	}
	headerLen := -1
	if h := respHeader.Get(client.HeaderInferenceHeaderLength); h != "" {
		if headerLen, err = strconv.Atoi(h); err != nil {
			return fmt.Errorf("%s: bad %s header %q", t.URL+t.InferPath(), client.HeaderInferenceHeaderLength, h)
		}
	}
	if _, err := client.DecodeResponse(body, headerLen); err != nil {
		return fmt.Errorf("%s: %w", t.URL+t.InferPath(), err)
	}
	return nil
}

// Run probes t (see Probe), then sends p's bodies in turn under opts' load
// pattern and returns the result, with URL, Model, Protocol and Rows set.
func Run(ctx context.Context, t Target, p *Payload, opts Options) (*Result, error) {
	if err := Probe(ctx, t, p); err != nil {
		return nil, err
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	workers := o.workers()
	hc, uri, err := t.hostClient(workers, o.Timeout)
	if err != nil {
		return nil, err
	}
	defer hc.CloseIdleConnections()
	headerLens := make([]string, len(p.HeaderLens))
	for i, n := range p.HeaderLens {
		headerLens[i] = strconv.Itoa(n)
	}
	// Every worker gets a prepared request per body, sent as it is: no
	// per-request URI parsing or header work in the loop.
	reqs := make([][]*fasthttp.Request, workers)
	resps := make([]*fasthttp.Response, workers)
	sent := make([]int, workers) // the next body, per worker: no shared counter
	for w := range workers {
		reqs[w] = make([]*fasthttp.Request, len(p.Bodies))
		for i := range p.Bodies {
			reqs[w][i] = fasthttp.AcquireRequest()
			p.request(reqs[w][i], uri, i, headerLens)
		}
		resps[w] = fasthttp.AcquireResponse()
		sent[w] = w % len(p.Bodies)
	}
	defer func() {
		for w := range workers {
			for _, req := range reqs[w] {
				fasthttp.ReleaseRequest(req)
			}
			fasthttp.ReleaseResponse(resps[w])
		}
	}()
	r, err := RunFunc(ctx, opts, func(_ context.Context, w int) (int, error) {
		i := sent[w]
		sent[w] = (i + 1) % len(p.Bodies)
		if err := hc.Do(reqs[w][i], resps[w]); err != nil {
			return 0, err
		}
		return resps[w].StatusCode(), nil
	})
	if err != nil {
		return nil, err
	}
	r.URL, r.Model = t.URL, t.Model
	r.Protocol = "json"
	if p.Binary {
		r.Protocol = "binary"
	}
	r.SetRows(p.Rows)
	return r, nil
}
