package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// HeaderInferenceHeaderLength is the header of Triton's binary tensor
// extension: the length of the JSON that starts a body with binary data.
const HeaderInferenceHeaderLength = "Inference-Header-Content-Length"

// Client talks to one KServe v2 server. It is safe for concurrent use.
type Client struct {
	base string
	hc   *http.Client
}

// New returns a client for the server at baseURL ("http://127.0.0.1:8000";
// a trailing slash is ignored). With a nil hc it uses its own
// http.Client: no proxy, no overall timeout (use the context), and up to
// 1024 idle keep-alive connections to the server, so a load test's
// concurrent requests reuse connections instead of opening new ones.
func New(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   1024,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		}}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: hc}
}

// BaseURL returns the server's base URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// CloseIdleConnections closes the client's idle keep-alive connections,
// ending their goroutines (for tests that check for leaks).
func (c *Client) CloseIdleConnections() {
	c.hc.CloseIdleConnections()
}

// Error is a non-2xx answer from the server.
type Error struct {
	Status int
	// Msg is the server's "error" text, or the raw body when the body is
	// not a KServe error object.
	Msg string
}

func (e *Error) Error() string {
	return fmt.Sprintf("status %d: %s", e.Status, e.Msg)
}

// responseError builds the *Error for a non-2xx answer.
func responseError(status int, body []byte) *Error {
	var kserve struct {
		Error *string `json:"error"`
	}
	if json.Unmarshal(body, &kserve) == nil && kserve.Error != nil {
		return &Error{Status: status, Msg: *kserve.Error}
	}
	return &Error{Status: status, Msg: string(body)}
}

// Do sends one request to path (appended to the base URL) and returns the
// whole response. A non-2xx status is not an error here; err is only a
// transport failure. A nil body sends none.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, header http.Header) (status int, respBody []byte, respHeader http.Header, err error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, vs := range header {
		req.Header[k] = append([]string(nil), vs...)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	respBody, err = io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return resp.StatusCode, respBody, resp.Header, nil
}

// modelPath is /v2/models/{model}, with /versions/{version} when version
// is not empty.
func modelPath(model, version string) string {
	p := "/v2/models/" + url.PathEscape(model)
	if version != "" {
		p += "/versions/" + url.PathEscape(version)
	}
	return p
}

// Infer runs req on model (its default version when version is empty).
// A non-2xx answer is returned as *Error.
func (c *Client) Infer(ctx context.Context, model, version string, req *Request) (*Response, error) {
	body, headerLen, err := EncodeRequest(req)
	if err != nil {
		return nil, err
	}
	header := http.Header{"Content-Type": {"application/json"}}
	if headerLen >= 0 {
		header.Set("Content-Type", "application/octet-stream")
		header.Set(HeaderInferenceHeaderLength, strconv.Itoa(headerLen))
	}
	status, respBody, respHeader, err := c.Do(ctx, http.MethodPost, modelPath(model, version)+"/infer", body, header)
	if err != nil {
		return nil, err
	}
	if status < 200 || status > 299 {
		return nil, responseError(status, respBody)
	}
	respLen := -1
	if h := respHeader.Get(HeaderInferenceHeaderLength); h != "" {
		if respLen, err = strconv.Atoi(h); err != nil || respLen < 0 {
			return nil, fmt.Errorf("invalid %s header %q", HeaderInferenceHeaderLength, h)
		}
	}
	return DecodeResponse(respBody, respLen)
}

// ServerLive asks /v2/health/live.
func (c *Client) ServerLive(ctx context.Context) (bool, error) {
	return c.health(ctx, "/v2/health/live")
}

// ServerReady asks /v2/health/ready.
func (c *Client) ServerReady(ctx context.Context) (bool, error) {
	return c.health(ctx, "/v2/health/ready")
}

// ModelReady asks whether model (its default version when version is
// empty) is ready. An unknown model or version is an *Error (404), not
// false.
func (c *Client) ModelReady(ctx context.Context, model, version string) (bool, error) {
	return c.health(ctx, modelPath(model, version)+"/ready")
}

// health is true on 200 and false on 503 (the protocol's "not ready");
// any other status is an *Error.
func (c *Client) health(ctx context.Context, path string) (bool, error) {
	status, body, _, err := c.Do(ctx, http.MethodGet, path, nil, nil)
	switch {
	case err != nil:
		return false, err
	case status >= 200 && status <= 299:
		return true, nil
	case status == http.StatusServiceUnavailable:
		return false, nil
	}
	return false, responseError(status, body)
}

// TensorMetadata describes one input or output of a model.
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"` // -1 for a variable dimension
}

// ModelMetadata is the answer of GET /v2/models/{model}[/versions/{v}].
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// ServerMetadata is the answer of GET /v2.
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// ModelMetadata fetches model's metadata (its default version's when
// version is empty).
func (c *Client) ModelMetadata(ctx context.Context, model, version string) (*ModelMetadata, error) {
	var m ModelMetadata
	if err := c.getJSON(ctx, modelPath(model, version), &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ServerMetadata fetches the server's metadata.
func (c *Client) ServerMetadata(ctx context.Context) (*ServerMetadata, error) {
	var m ServerMetadata
	if err := c.getJSON(ctx, "/v2", &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// getJSON GETs path and decodes a 2xx body into v; any other status is an
// *Error.
func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	status, body, _, err := c.Do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return responseError(status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}
