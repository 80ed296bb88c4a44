package gateway

import (
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/infergate/infergate/audit"
	"github.com/infergate/infergate/gateway/console"
	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/router"
)

// adminTimeout bounds a repository API call (a load waits for the model
// to load and warm up).
const adminTimeout = 10 * time.Minute

// repositoryIndex answers Triton's POST /v2/repository/index.
func (s *Server) repositoryIndex(ctx *fasthttp.RequestCtx) {
	readyOnly := false
	if body := ctx.PostBody(); len(body) > 0 {
		v, err := fastjson.ParseBytes(body)
		if err != nil {
			s.fail(ctx, badRequest("malformed JSON: %v", err))
			return
		}
		if r := v.Get("ready"); r != nil {
			b, err := r.Bool()
			if err != nil {
				s.fail(ctx, badRequest(`"ready" must be a boolean`))
				return
			}
			readyOnly = b
		}
	}
	s.writeJSON(ctx, s.repo.Index(readyOnly))
}

// allowControl refuses lifecycle calls when model control is "none".
func (s *Server) allowControl(ctx *fasthttp.RequestCtx) bool {
	if s.opts.ModelControl == "poll" || s.opts.ModelControl == "explicit" {
		return true
	}
	s.fail(ctx, &Error{Status: http.StatusForbidden, Msg: "model control is disabled: start the server with --model-control-mode=poll or explicit"})
	return false
}

// loadModel answers Triton's POST /v2/repository/models/{m}/load, with
// optional parameters: "config", the model configuration as JSON, and
// "file:<version>/<file>", a file's content in base64, which form an
// override model directory (Repository.LoadModel).
func (s *Server) loadModel(ctx *fasthttp.RequestCtx) {
	if !s.allowControl(ctx) {
		return
	}
	name, _ := ctx.UserValue("model").(string)
	var opts repository.LoadOptions
	if body := ctx.PostBody(); len(body) > 0 {
		var err error
		if opts, err = parseLoadRequest(body); err != nil {
			s.fail(ctx, err)
			return
		}
	}
	c, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	before := audit.Doc(s.repo.Summary(name))
	err := s.repo.LoadModel(c, name, opts)
	s.audit(ctx, audit.Entry{Action: "load", Model: name, Before: before, After: audit.Doc(s.repo.Summary(name))}, err)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, struct{}{})
}

// parseLoadRequest decodes a load request's body.
func parseLoadRequest(body []byte) (repository.LoadOptions, error) {
	var opts repository.LoadOptions
	v, err := fastjson.ParseBytes(body)
	if err != nil {
		return opts, badRequest("malformed JSON: %v", err)
	}
	params := v.Get("parameters")
	if params == nil || params.Type() == fastjson.TypeNull {
		return opts, nil
	}
	obj, err := params.Object()
	if err != nil {
		return opts, badRequest("parameters must be an object")
	}
	obj.Visit(func(key []byte, p *fastjson.Value) {
		if err != nil {
			return
		}
		k := string(key)
		switch {
		case k == "config":
			text, e := p.StringBytes()
			if e != nil {
				err = badRequest(`parameters.config must be a string holding the model configuration as JSON`)
				return
			}
			if opts.Config, e = repository.ParseConfigJSON(text); e != nil {
				err = badRequest("parameters.config: %v", e)
			}
		case strings.HasPrefix(k, "file:"):
			text, e := p.StringBytes()
			if e != nil {
				err = badRequest("parameters[%q] must be a string: the file's content in base64", k)
				return
			}
			b := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
			n, e := base64.StdEncoding.Decode(b, text)
			b = b[:n]
			if e != nil {
				err = badRequest("parameters[%q] is not base64: %v", k, e)
				return
			}
			if opts.Files == nil {
				opts.Files = map[string][]byte{}
			}
			opts.Files[strings.TrimPrefix(k, "file:")] = b
		}
	})
	return opts, err
}

// uploadVersion answers PUT /v2/repository/models/{m}/versions/{v}: the
// body is the version's model.onnx, written into the repository, loaded
// and warmed up (Repository.UploadVersion). The body limit bounds it too.
func (s *Server) uploadVersion(ctx *fasthttp.RequestCtx) {
	if !s.allowControl(ctx) {
		return
	}
	name, _ := ctx.UserValue("model").(string)
	vs, _ := ctx.UserValue("version").(string)
	n, err := strconv.ParseInt(vs, 10, 64)
	if err != nil || n < 1 {
		s.fail(ctx, badRequest("invalid model version %q: want a positive integer", vs))
		return
	}
	c, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	before := audit.Doc(s.repo.Summary(name))
	err = s.repo.UploadVersion(c, name, n, ctx.PostBody())
	s.audit(ctx, audit.Entry{Action: "upload", Model: name, Version: n, Before: before, After: audit.Doc(s.repo.Summary(name))}, err)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, struct{}{})
}

// unloadModel answers Triton's POST /v2/repository/models/{m}/unload.
func (s *Server) unloadModel(ctx *fasthttp.RequestCtx) {
	if !s.allowControl(ctx) {
		return
	}
	name, _ := ctx.UserValue("model").(string)
	c, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	before := audit.Doc(s.repo.Summary(name))
	err := s.repo.UnloadModel(c, name)
	s.audit(ctx, audit.Entry{Action: "unload", Model: name, Before: before, After: audit.Doc(s.repo.Summary(name))}, err)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, struct{}{})
}

// labels answers GET /v2/repository/models/{m}/labels: {"label": version}.
func (s *Server) labels(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("model").(string)
	m, err := s.repo.Model(name)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	labels := map[string]int64{}
	for k, v := range m.Labels() {
		labels[k] = v
	}
	s.writeJSON(ctx, labels)
}

// setLabel answers PUT /v2/repository/models/{m}/labels/{l} with body
// {"version": N}.
func (s *Server) setLabel(ctx *fasthttp.RequestCtx) {
	if !s.allowControl(ctx) {
		return
	}
	name, _ := ctx.UserValue("model").(string)
	label, _ := ctx.UserValue("label").(string)
	v, err := fastjson.ParseBytes(ctx.PostBody())
	if err != nil {
		s.fail(ctx, badRequest(`malformed JSON: %v (want {"version": N})`, err))
		return
	}
	n := v.GetInt64("version")
	if n < 1 {
		s.fail(ctx, badRequest(`"version" must be a positive integer`))
		return
	}
	c, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	before := s.labelsOf(name)
	err = s.repo.SetLabel(c, name, label, n)
	s.audit(ctx, audit.Entry{Action: "label.set", Model: name, Version: n, Reason: "label " + label, Before: before, After: s.labelsOf(name)}, err)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, struct{}{})
}

// deleteLabel answers DELETE /v2/repository/models/{m}/labels/{l}.
func (s *Server) deleteLabel(ctx *fasthttp.RequestCtx) {
	if !s.allowControl(ctx) {
		return
	}
	name, _ := ctx.UserValue("model").(string)
	label, _ := ctx.UserValue("label").(string)
	c, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	before := s.labelsOf(name)
	err := s.repo.DeleteLabel(c, name, label)
	s.audit(ctx, audit.Entry{Action: "label.delete", Model: name, Reason: "label " + label, Before: before, After: s.labelsOf(name)}, err)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, struct{}{})
}

// drift answers GET /v2/repository/models/{m}/versions/{v}/drift: the
// per-element drift figures of a loaded version.
func (s *Server) drift(ctx *fasthttp.RequestCtx) {
	m, v, err := s.version(ctx)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	report, ok := s.opts.Drift.DriftReport(m.Name, v.Number)
	if !ok {
		s.fail(ctx, &Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("model %q version %d has no drift monitoring loaded: configure monitoring.drift in its %s (an evicted version has none until it loads again)", m.Name, v.Number, repository.ConfigFile)})
		return
	}
	s.writeJSON(ctx, report)
}

// getRouting answers GET /v2/repository/models/{m}/routing.
func (s *Server) getRouting(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("model").(string)
	out, err := s.router.Get(name)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, out)
}

// putRouting answers PUT /v2/repository/models/{m}/routing: the body is
// the document, in JSON.
func (s *Server) putRouting(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("model").(string)
	doc, err := router.ParseJSON(ctx.PostBody())
	if err != nil {
		s.fail(ctx, err)
		return
	}
	before := s.routingOf(name)
	out, err := s.router.Set(name, doc)
	s.audit(ctx, audit.Entry{Action: "routing.set", Model: name, Before: before, After: s.routingOf(name)}, err)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, out)
}

// deleteRouting answers DELETE /v2/repository/models/{m}/routing.
func (s *Server) deleteRouting(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("model").(string)
	before := s.routingOf(name)
	out, err := s.router.Delete(name)
	s.audit(ctx, audit.Entry{Action: "routing.delete", Model: name, Before: before, After: s.routingOf(name)}, err)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, out)
}

// getRollout answers GET /v2/repository/models/{m}/rollout.
func (s *Server) getRollout(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("model").(string)
	out, err := s.router.RolloutStatus(name)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, out)
}

// controlRollout answers POST /v2/repository/models/{m}/rollout/{abort,
// promote,pause,resume}.
func (s *Server) controlRollout(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("model").(string)
	action, _ := ctx.UserValue("action").(string)
	actor, _ := ctx.UserValue(actorKey).(string)
	out, err := s.router.Control(name, action, actor)
	if err != nil {
		// An applied control is the controller's entry, with the actor;
		// a refused one is the gateway's.
		s.audit(ctx, audit.Entry{Action: "rollout." + action, Model: name}, err)
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, out)
}

// actorKey is the request's user value naming who the admin guard let
// in: a token's name, or the client's address.
const actorKey = "infergate.actor"

// audit appends an admin action to the trail, with its actor and
// request id; err, when not nil, says it was refused or failed.
func (s *Server) audit(ctx *fasthttp.RequestCtx, e audit.Entry, err error) {
	if s.opts.Audit == nil {
		return
	}
	e.Actor, _ = ctx.UserValue(actorKey).(string)
	e.RequestID = string(ctx.Request.Header.Peek(HeaderRequestID))
	e.Protocol = "http"
	s.opts.Audit.Record(e, err)
}

func (s *Server) labelsOf(name string) []byte {
	if s.opts.Audit == nil {
		return nil
	}
	m, err := s.repo.Model(name)
	if err != nil {
		return nil
	}
	return audit.Doc(m.Labels())
}

func (s *Server) routingOf(name string) []byte {
	if s.opts.Audit == nil {
		return nil
	}
	r, err := s.router.Get(name)
	if err != nil {
		return nil
	}
	return audit.Doc(r)
}

// modelSummaries answers GET /v2/repository/models: every model with its
// versions (state, reason, model file size) and labels.
func (s *Server) modelSummaries(ctx *fasthttp.RequestCtx) {
	s.writeJSON(ctx, s.repo.Summaries())
}

// modelSummary answers GET /v2/repository/models/{m}.
func (s *Server) modelSummary(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("model").(string)
	m, err := s.repo.Model(name)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, m.Summary())
}

// auditEntries answers GET /v2/repository/audit?since=&model=&limit=:
// the audit trail's entries, oldest first; since is RFC 3339, limit
// keeps the newest (default audit.DefaultLimit).
func (s *Server) auditEntries(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	q := audit.Query{Model: string(args.Peek("model"))}
	if v := args.Peek("since"); len(v) > 0 {
		t, err := time.Parse(time.RFC3339Nano, string(v))
		if err != nil {
			s.fail(ctx, badRequest("since: %q is not an RFC 3339 time (2026-12-02T10:00:00Z)", v))
			return
		}
		q.Since = t
	}
	if v := args.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 {
			s.fail(ctx, badRequest("limit: %q is not a positive integer", v))
			return
		}
		q.Limit = n
	}
	out, err := s.opts.Audit.Query(q)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, out)
}

// HistoryReporter gives a model's figures over time (the monitoring
// package's History); false when none of its versions is sampled.
type HistoryReporter interface {
	ModelHistory(model string) (any, bool)
}

// history answers GET /v2/repository/models/{m}/history.
func (s *Server) history(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("model").(string)
	m, err := s.repo.Model(name)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	if s.opts.History == nil {
		s.fail(ctx, &Error{Status: http.StatusNotFound, Msg: "no history: metrics are off (--allow-metrics=false)"})
		return
	}
	out, ok := s.opts.History.ModelHistory(m.Name)
	if !ok {
		out = map[string]any{"model": m.Name, "versions": []any{}}
	}
	s.writeJSON(ctx, out)
}

// consoleFile serves the ops console (package console): the page at
// /console, its script, style and uPlot under /console/.
func (s *Server) consoleFile(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("file").(string)
	if name == "" {
		name = "index.html"
	}
	b, err := fs.ReadFile(console.Files, name)
	if err != nil || strings.HasSuffix(name, "/") {
		s.fail(ctx, &Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("no console file %q", name)})
		return
	}
	switch path.Ext(name) {
	case ".html":
		ctx.SetContentType("text/html; charset=utf-8")
	case ".js":
		ctx.SetContentType("text/javascript; charset=utf-8")
	case ".css":
		ctx.SetContentType("text/css; charset=utf-8")
	default:
		ctx.SetContentType("text/plain; charset=utf-8")
	}
	h := &ctx.Response.Header
	// Everything from this origin, no inline script, no framing.
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	ctx.SetBody(b)
}
