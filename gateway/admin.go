package gateway

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

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
	if err := s.repo.LoadModel(c, name, opts); err != nil {
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
	if err := s.repo.UploadVersion(c, name, n, ctx.PostBody()); err != nil {
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
	if err := s.repo.UnloadModel(c, name); err != nil {
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
	if err := s.repo.SetLabel(c, name, label, n); err != nil {
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
	if err := s.repo.DeleteLabel(c, name, label); err != nil {
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
	out, err := s.router.Set(name, doc)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, out)
}

// deleteRouting answers DELETE /v2/repository/models/{m}/routing.
func (s *Server) deleteRouting(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("model").(string)
	out, err := s.router.Delete(name)
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
	out, err := s.router.Control(name, action)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, out)
}
