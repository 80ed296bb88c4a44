package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sony/gobreaker/v2"
	"gopkg.in/yaml.v3"

	"github.com/infergate/infergate/audit"
	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/router/split"
)

// The reasons of a decision, as infergate_route_decisions_total counts
// them.
const (
	ReasonURL      = "url"
	ReasonHeader   = "header"
	ReasonSplit    = "split"
	ReasonSticky   = "sticky"
	ReasonRollout  = "rollout"
	ReasonFallback = "fallback"
	ReasonDefault  = "default"
)

// The override headers.
const (
	HeaderVersion  = "x-model-version"
	HeaderLabel    = "x-model-label"
	HeaderFallback = "x-infergate-fallback"
)

// File is the routing document of a model, beside its config.yaml: it
// takes precedence over config.yaml's routing section.
const File = repository.RoutingFile

// Observer receives the router's events; the monitoring package counts
// them. ObserveRoute runs on the request path: it must be fast, never
// block and take no lock.
type Observer interface {
	// ObserveRoute counts a request routed to v for reason.
	ObserveRoute(v *repository.Version, reason string)
	// ObserveFallback counts a request sent to the fallback because the
	// breaker of version from was open.
	ObserveFallback(model string, from int64)
	// ObserveBreaker reports a breaker's state: "closed", "half-open" or
	// "open".
	ObserveBreaker(model string, version int64, state string)
	// ObserveShadow reports a shadow request (ShadowCompared,
	// ShadowDropped, ShadowFailed) of a shadow version (0 when dropped),
	// with, when compared, the largest absolute output difference and
	// the rows whose argmax disagrees. It runs on the shadow workers.
	ObserveShadow(model string, version int64, result string, maxDiff float64, disagreements int)
	// ObserveShadowDropped counts n shadow requests dropped because the
	// pool was full.
	ObserveShadowDropped(model string, n int64)
	// ObserveRollout reports a rollout's canary weight and phase.
	ObserveRollout(model string, weight float64, phase string)
}

type nopObserver struct{}

func (nopObserver) ObserveRoute(*repository.Version, string)          {}
func (nopObserver) ObserveFallback(string, int64)                     {}
func (nopObserver) ObserveBreaker(string, int64, string)              {}
func (nopObserver) ObserveShadow(string, int64, string, float64, int) {}
func (nopObserver) ObserveShadowDropped(string, int64)                {}
func (nopObserver) ObserveRollout(string, float64, string)            {}

// Options configure a Router.
type Options struct {
	// Persist writes documents set through the API to
	// <repo>/<model>/routing.yaml. Default false: they stay in memory
	// (model control mode none, or a read-only repository).
	Persist bool
	// PollInterval, when positive, rereads every model's routing.yaml
	// that often, so that replicas sharing a repository agree. Default 0:
	// read when the model loads.
	PollInterval time.Duration
	// Logger receives routing changes and breaker transitions. Default:
	// discard.
	Logger *slog.Logger
	// Observer receives decisions and breaker states. Default: none.
	Observer Observer
	// Drift compares a rollout's canary with stable (the monitoring
	// package). Default: none, and rollouts run no drift check.
	Drift DriftComparer
	// Audit receives the rollout controller's decisions. Default: none.
	Audit *audit.Log
	// Feedback gives the versions' ground-truth feedback for a rollout's
	// min_accuracy_ratio check (package monitoring/feedback). Default:
	// none, and the check is skipped.
	Feedback FeedbackCounter
}

// FeedbackCounter gives a version's labelled feedback answers and the
// correct ones, over its life, the last answer of each request.
type FeedbackCounter interface {
	Counts(model string, version int64) (labelled, correct int64)
}

// Router decides which version of a model serves each request.
type Router struct {
	repo *repository.Repository
	opts Options
	log  *slog.Logger
	obs  Observer

	models sync.Map // model name → *modelState
	shadow *shadows

	stop chan struct{}
	wg   sync.WaitGroup
}

// modelState is a model's routing: the compiled policy, and where its
// document came from.
type modelState struct {
	mu     sync.Mutex // serialises compiles and API changes
	pol    atomic.Pointer[policy]
	config atomic.Pointer[repository.Config] // the config the policy was compiled from
	api    *Document                         // set through the API and not persisted; nil: none
	stamp  fileStamp                         // routing.yaml as last read
	// rollout is the running rollout, kept across recompiles of the same
	// rollout section; nil: none.
	rollout *rollout
}

type fileStamp struct {
	size  int64
	mtime int64
}

// policy is a compiled document. It never changes once published.
type policy struct {
	model     string
	doc       *Document // effective: defaults filled in; nil: none
	source    string    // "api", "routing.yaml", "config.yaml" or "none"
	split     *split.Split
	targets   []Target
	overrides bool
	header    string // sticky header, or
	cookie    string // sticky cookie
	salt      string
	fallback  *Target
	settings  *gobreaker.Settings // template; nil: no breakers
	rollout   *rollout            // nil: none
	breakers  sync.Map            // version number → *gobreaker.TwoStepCircuitBreaker[struct{}]
}

// New returns a Router over repo. Close stops its poller.
func New(repo *repository.Repository, opts Options) *Router {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	r := &Router{repo: repo, opts: opts, log: opts.Logger, obs: opts.Observer, stop: make(chan struct{})}
	r.startShadows()
	if opts.PollInterval > 0 {
		r.wg.Add(1)
		go r.poll(opts.PollInterval)
	}
	return r
}

// Close stops the poller and waits for it.
func (r *Router) Close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
}

// Request is what the router reads of a request.
type Request struct {
	Model string
	// Version and Label are the URL's; zero when it names none.
	Version int64
	Label   string
	// Headers gives the request's headers and cookies; nil: none.
	// *fasthttp.RequestHeader is one.
	Headers Headers
}

// Headers reads a request's headers and cookies; nil when absent. The
// bytes are read during Route only.
type Headers interface {
	Peek(name string) []byte
	Cookie(name string) []byte
}

// Decision is the version a request goes to. Route looks it up without
// holding it, so that the request can be decoded against its signature
// once; Acquire then holds it for the execution, and Done reports the
// outcome and releases it.
type Decision struct {
	// Version is the chosen version: looked up by Route, held after
	// Acquire (a reload may have replaced it by an equal-numbered one).
	Version *repository.Version
	// Reason is why: ReasonURL, ReasonHeader, ReasonSplit, ReasonSticky,
	// ReasonFallback or ReasonDefault.
	Reason string
	// Fallback, when not empty, says why the request fell back (the
	// x-infergate-fallback header).
	Fallback string

	r      *Router
	pol    *policy
	ro     *rollout // a rollout decision: its figures
	canary bool
	start  time.Time
	model  string
	n      int64  // what Acquire asks the repository for
	label  string //
	done   func(error)
	held   bool
}

// Route decides the version of a request: the URL's version or label,
// then a header override, then the model's routing document, then the
// default (the highest ready version). It never blocks.
func (r *Router) Route(req *Request) (Decision, error) {
	m, err := r.repo.Model(req.Model)
	if err != nil {
		return Decision{}, err
	}
	pol := r.policy(m)
	d := Decision{r: r, model: m.Name, pol: pol}
	if req.Version != 0 || req.Label != "" {
		return d, d.pin(m, pol, req.Version, req.Label, ReasonURL)
	}
	if pol.overrides && req.Headers != nil {
		if h := req.Headers.Peek(HeaderVersion); len(h) > 0 {
			n, err := strconv.ParseInt(string(h), 10, 64)
			if err != nil || n < 1 {
				return d, fmt.Errorf("%w: %s header %q: want a positive version", ErrInvalidRequest, HeaderVersion, h)
			}
			return d, d.pin(m, pol, n, "", ReasonHeader)
		}
		if h := req.Headers.Peek(HeaderLabel); len(h) > 0 {
			return d, d.pin(m, pol, 0, string(h), ReasonHeader)
		}
	}
	reason, target := ReasonDefault, Target{}
	if ro := pol.rollout; ro != nil {
		target, d.canary = ro.pick(pol, req)
		reason, d.ro, d.start = ReasonRollout, ro, time.Now()
	} else if pol.split != nil {
		i, sticky := -1, false
		if key := pol.key(req); len(key) > 0 {
			// The key is read only during the call: no copy.
			i, sticky = pol.split.Sticky(split.Bucket(pol.salt, unsafe.String(unsafe.SliceData(key), len(key)))), true
		} else {
			i = pol.split.Random(rand.Uint64())
		}
		target, reason = pol.targets[i], ReasonSplit
		if sticky {
			reason = ReasonSticky
		}
	}
	v, err := m.Lookup(target.Version, target.Label)
	if err != nil && reason != ReasonDefault {
		err := d.fallBack(m, pol, fmt.Sprintf("%s is not ready", target), target.Version)
		return d, err
	}
	if err != nil {
		return d, err
	}
	d.Version, d.Reason, d.n, d.label = v, reason, target.Version, target.Label
	if pol.settings == nil {
		return d, nil
	}
	done, err := pol.breaker(r, v.Number).Allow()
	if err != nil {
		err := d.fallBack(m, pol, fmt.Sprintf("breaker of version %d is open", v.Number), v.Number)
		return d, err
	}
	d.done = done
	return d, nil
}

// pin routes to a version the client named: no fallback, the client
// asked for it. Its breaker still counts the outcome when it lets the
// request through.
func (d *Decision) pin(m *repository.Model, pol *policy, n int64, label, reason string) error {
	v, err := m.Lookup(n, label)
	if err != nil {
		return err
	}
	d.Version, d.Reason, d.n, d.label = v, reason, n, label
	if pol.settings != nil {
		if done, err := pol.breaker(d.r, v.Number).Allow(); err == nil {
			d.done = done
		}
	}
	return nil
}

// fallBack routes away from version from (0: a target that does not
// resolve): to the document's fallback, else the first split target, the
// rollout's stable or the default version that is another version and
// whose breaker is not open.
func (d *Decision) fallBack(m *repository.Model, pol *policy, why string, from int64) error {
	var candidates []Target
	if pol.fallback != nil {
		candidates = append(candidates, *pol.fallback)
	}
	candidates = append(candidates, pol.targets...)
	if pol.rollout != nil {
		candidates = append(candidates, pol.rollout.spec.Stable)
	}
	candidates = append(candidates, Target{})
	for _, t := range candidates {
		v, err := m.Lookup(t.Version, t.Label)
		if err != nil || v.Number == from {
			continue
		}
		var done func(error)
		if pol.settings != nil {
			if done, err = pol.breaker(d.r, v.Number).Allow(); err != nil {
				continue // open too
			}
		}
		d.Version, d.Reason, d.Fallback, d.n, d.label, d.done = v, ReasonFallback, why, t.Version, t.Label, done
		if from > 0 {
			d.r.obs.ObserveFallback(m.Name, from)
		}
		return nil
	}
	return errdefs.New(errdefs.Unavailable, "model %q: %s, and no other version can serve", m.Name, why)
}

// Acquire holds the decided version for the execution, loading it first
// when it is evicted (waiting up to ctx). Release it with Done.
func (d *Decision) Acquire(ctx context.Context) (*repository.Version, error) {
	v, err := d.r.repo.Acquire(ctx, d.model, d.n, d.label)
	if err != nil {
		d.Done(err) // not an execution: the breaker does not count it
		return nil, err
	}
	d.Version, d.held = v, true
	return v, nil
}

// Done reports the outcome of the execution (nil: none ran, or it
// succeeded) and releases the version. Only execution failures count
// against a breaker: load (a full queue, a timeout) and client errors do
// not.
func (d *Decision) Done(err error) {
	if d.done != nil {
		if !d.held && err == nil {
			err = errNotRun // failed before the execution: not counted
		}
		d.done(err)
		d.done = nil
	}
	if d.held {
		if d.ro != nil && d.Reason == ReasonRollout {
			stats := d.ro.stable.Load()
			if d.canary {
				stats = d.ro.canary.Load()
			}
			stats.record(time.Since(d.start), IsExecutionFailure(err))
		}
		d.r.obs.ObserveRoute(d.Version, d.Reason)
		d.Version.Release()
		d.held = false
	}
}

// errNotRun is the outcome of a request that failed before it ran.
var errNotRun = errors.New("not run")

// IsExecutionFailure reports whether err is a failure of the model
// itself, which a breaker counts: not load (a full queue, a timeout, an
// unloading version), not the client's (invalid input), not the
// repository's (not found, not ready).
func IsExecutionFailure(err error) bool {
	return err != nil && !errors.Is(err, errNotRun) && errdefs.KindOf(err) == errdefs.Internal
}

// key returns the request's sticky key, or nil.
func (p *policy) key(req *Request) []byte {
	switch {
	case req.Headers == nil:
		return nil
	case p.header != "":
		return req.Headers.Peek(p.header)
	case p.cookie != "":
		return req.Headers.Cookie(p.cookie)
	}
	return nil
}

// breaker returns version n's breaker, made on first use.
func (p *policy) breaker(r *Router, n int64) *gobreaker.TwoStepCircuitBreaker[struct{}] {
	if b, ok := p.breakers.Load(n); ok {
		return b.(*gobreaker.TwoStepCircuitBreaker[struct{}])
	}
	st := *p.settings
	model := p.model
	st.Name = model + "/" + strconv.FormatInt(n, 10)
	st.OnStateChange = func(_ string, from, to gobreaker.State) {
		r.log.Warn("breaker changed state", "model", model, "version", n, "from", from.String(), "to", to.String())
		r.obs.ObserveBreaker(model, n, to.String())
	}
	b, loaded := p.breakers.LoadOrStore(n, gobreaker.NewTwoStepCircuitBreaker[struct{}](st))
	if !loaded {
		r.obs.ObserveBreaker(model, n, gobreaker.StateClosed.String())
	}
	return b.(*gobreaker.TwoStepCircuitBreaker[struct{}])
}

// policy returns the model's compiled policy, compiling it when the
// model's config changed since (a load or reload).
func (r *Router) policy(m *repository.Model) *policy {
	st := r.state(m.Name)
	if p := st.pol.Load(); p != nil && st.config.Load() == m.Config() {
		return p
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if p := st.pol.Load(); p != nil && st.config.Load() == m.Config() {
		return p
	}
	r.compileLocked(m, st)
	return st.pol.Load()
}

func (r *Router) state(model string) *modelState {
	if st, ok := r.models.Load(model); ok {
		return st.(*modelState)
	}
	st, _ := r.models.LoadOrStore(model, &modelState{})
	return st.(*modelState)
}

// compileLocked compiles the model's document: the API's, else
// routing.yaml, else config.yaml's routing section. A document that
// fails keeps the previous policy, with the reason logged.
func (r *Router) compileLocked(m *repository.Model, st *modelState) {
	cfg := m.Config()
	st.config.Store(cfg)
	doc, source, err := st.api, "api", error(nil)
	if doc == nil {
		doc, source, err = r.readFile(m.Name, st)
	}
	if doc == nil && err == nil && cfg != nil && cfg.Routing.Kind != 0 {
		b, merr := yaml.Marshal(&cfg.Routing)
		if merr == nil {
			doc, err = ParseYAML(b)
		} else {
			err = merr
		}
		source = repository.ConfigFile
	}
	if err != nil {
		r.log.Error("routing document refused: the previous routing stays", "model", m.Name, "source", source, "err", err)
		if st.pol.Load() == nil {
			st.pol.Store(compile(m.Name, nil, "none"))
		}
		return
	}
	if doc == nil {
		source = "none"
	}
	p := compile(m.Name, doc, source)
	switch {
	case doc == nil || doc.Rollout == nil:
		if st.rollout != nil {
			st.rollout.stopWait(true)
			st.rollout = nil
		}
	case st.rollout != nil && !st.rollout.ended() && sameRollout(st.rollout.spec0, *doc.Rollout):
		// The same rollout: it goes on, with the rest of the new document
		// for its final one.
		st.rollout.setDoc(doc)
	default:
		if st.rollout != nil {
			st.rollout.stopWait(true)
		}
		st.rollout = r.startRollout(m.Name, doc)
	}
	p.rollout = st.rollout
	st.pol.Store(p)
}

// readFile reads <repo>/<model>/routing.yaml; nil when absent.
func (r *Router) readFile(model string, st *modelState) (*Document, string, error) {
	path := filepath.Join(r.repo.Root(), model, File)
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		st.stamp = fileStamp{}
		return nil, File, nil
	}
	if err != nil {
		return nil, File, err
	}
	st.stamp = fileStamp{fi.Size(), fi.ModTime().UnixNano()}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, File, err
	}
	doc, err := ParseYAML(b)
	if err != nil {
		return nil, File, fmt.Errorf("%s: %w", path, err)
	}
	return doc, File, nil
}

// compile makes a policy of an effective document (nil: none).
func compile(model string, doc *Document, source string) *policy {
	p := &policy{model: model, source: source, overrides: true}
	if doc == nil {
		return p
	}
	eff := *doc
	p.doc = &eff
	if doc.Overrides != nil {
		p.overrides = *doc.Overrides
	} else {
		t := true
		eff.Overrides = &t
	}
	if len(doc.Split) > 0 {
		weights := make([]float64, len(doc.Split))
		for i, t := range doc.Split {
			weights[i] = t.Weight
		}
		p.split, _ = split.New(weights) // validated
		p.targets = doc.Split
	}
	if s := doc.Sticky; s != nil {
		sticky := *s
		if sticky.Salt == "" {
			sticky.Salt = model + "/default"
		}
		eff.Sticky = &sticky
		p.header, p.cookie, p.salt = http.CanonicalHeaderKey(s.Header), s.Cookie, sticky.Salt
	}
	p.fallback = doc.Fallback
	if b := doc.Breaker; b != nil {
		br := *b
		br.ConsecutiveFailures = cmp.Or(br.ConsecutiveFailures, DefaultConsecutiveFailures)
		br.FailureRatio = cmp.Or(br.FailureRatio, DefaultFailureRatio)
		br.MinRequests = cmp.Or(br.MinRequests, DefaultMinRequests)
		br.OpenSeconds = cmp.Or(br.OpenSeconds, DefaultOpenSeconds)
		eff.Breaker = &br
		p.settings = &gobreaker.Settings{
			MaxRequests: 1,
			Interval:    time.Minute, // the closed state's counts start over every minute
			Timeout:     time.Duration(br.OpenSeconds * float64(time.Second)),
			ReadyToTrip: func(c gobreaker.Counts) bool {
				counted := c.Requests - c.TotalExclusions // load and client errors are not requests here
				return c.ConsecutiveFailures >= uint32(br.ConsecutiveFailures) ||
					(counted >= uint32(br.MinRequests) && float64(c.TotalFailures) >= br.FailureRatio*float64(counted))
			},
			// Load and client errors are neither successes nor failures.
			IsExcluded: func(err error) bool { return err != nil && !IsExecutionFailure(err) },
		}
	}
	return p
}
