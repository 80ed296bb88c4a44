package router

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/infergate/infergate/audit"
	"github.com/infergate/infergate/monitoring/drift"
	"github.com/infergate/infergate/router/rollout/check"
	"github.com/infergate/infergate/router/split"
)

// The phases of a rollout, as GET .../rollout and infergate_rollout_phase
// report them.
const (
	PhaseProgressing = "progressing"
	PhaseHolding     = "holding"
	PhasePaused      = "paused"
	PhasePromoted    = "promoted"
	PhaseRolledBack  = "rolled_back"
)

// The defaults of a rollout.
const (
	DefaultRolloutInterval    = 60 * time.Second
	DefaultRolloutMinRequests = 100
	DefaultRolloutThreshold   = 2
	DefaultMaxErrorRate       = 0.01
	DefaultMaxP99Ratio        = 1.5
	DefaultMaxDriftPSI        = 0.2
	DefaultConfidence         = 0.95
	DefaultMinFeedback        = 50
)

// DefaultSteps are the canary weights of a rollout that gives none.
var DefaultSteps = []float64{5, 10, 25, 50, 100}

// latencySamples bounds the latencies an interval keeps per version: the
// last ones, enough for a p99's confidence bounds (at least
// check.MinP99Samples).
const latencySamples = 8192

// DriftComparer compares the live drift windows of two versions of a
// model; the monitoring package implements it (Monitor.CompareDrift).
type DriftComparer interface {
	// CompareDrift returns the worst PSI and the smallest corrected
	// p-value over the outputs and predicted classes both versions watch,
	// and the fewest samples behind them. configured is false when either
	// version's config has no drift monitoring (the check is then
	// skipped); err is any other failure (not loaded, no window yet).
	CompareDrift(ctx context.Context, model string, candidate, baseline int64) (psi, pValue float64, samples int64, configured bool, err error)
}

// DriftBinExporter, when the DriftComparer implements it as well, counts
// the sampled outputs of a model's versions in the bins of a reference,
// as counters that every replica exports, so that a rollout judged from
// Prometheus can run its drift check on every replica's outputs
// (monitoring's ExportDriftBins). stop ends the counting and deletes the
// series.
type DriftBinExporter interface {
	ExportDriftBins(model string, versions []int64, ref *drift.Reference) (stop func(), err error)
}

// intervalStats are one version's figures in an interval, written on the
// request path with atomics only.
type intervalStats struct {
	requests atomic.Int64
	errors   atomic.Int64
	next     atomic.Uint64
	lat      [latencySamples]atomic.Int64 // nanoseconds, a ring
}

func (s *intervalStats) record(took time.Duration, failed bool) {
	s.requests.Add(1)
	if failed {
		s.errors.Add(1)
	}
	i := s.next.Add(1) - 1
	s.lat[i%latencySamples].Store(int64(took))
}

func (s *intervalStats) latencies() []float64 {
	n := min(s.next.Load(), latencySamples)
	out := make([]float64, n)
	for i := range out {
		out[i] = time.Duration(s.lat[i].Load()).Seconds()
	}
	return out
}

// RolloutStatus is GET .../rollout's answer.
type RolloutStatus struct {
	Model   string    `json:"model" yaml:"model"`
	Phase   string    `json:"phase" yaml:"phase"`
	Step    int       `json:"step" yaml:"step"`
	Weight  float64   `json:"weight" yaml:"weight"`
	Stable  Target    `json:"stable" yaml:"stable"`
	Canary  Target    `json:"canary" yaml:"canary"`
	Failed  int       `json:"failed_checks" yaml:"failed_checks"`
	Reason  string    `json:"reason,omitempty" yaml:"reason,omitempty"`
	Started time.Time `json:"started" yaml:"started"`
	// Figures says where the checks' figures come from: "local" (this
	// replica's requests) or "prometheus" (every replica's, aggregated).
	Figures string `json:"figures,omitempty" yaml:"figures,omitempty"`
	// Skipped names the checks that this rollout does not run, and why.
	Skipped []string `json:"skipped_checks,omitempty" yaml:"skipped_checks,omitempty"`
	// LastError is the last failure to read the figures of a step, which
	// is then evaluated again (prometheus figures only).
	LastError string `json:"last_error,omitempty" yaml:"last_error,omitempty"`
	// Last is the last interval's figures, per check.
	Last    *Interval  `json:"last_interval,omitempty" yaml:"last_interval,omitempty"`
	History []Interval `json:"history" yaml:"history"`
}

// Interval is one evaluation of a rollout.
type Interval struct {
	At             time.Time      `json:"at" yaml:"at"`
	Step           int            `json:"step" yaml:"step"`
	Weight         float64        `json:"weight" yaml:"weight"`
	CanaryRequests int64          `json:"canary_requests" yaml:"canary_requests"`
	StableRequests int64          `json:"stable_requests" yaml:"stable_requests"`
	Checks         []check.Result `json:"checks" yaml:"checks"`
	// Decision is what the controller did: "advance", "hold", "fail",
	// "promote", "roll back", or a manual "pause", "resume", "abort",
	// "promote".
	Decision string `json:"decision" yaml:"decision"`
	Reason   string `json:"reason,omitempty" yaml:"reason,omitempty"`
}

// rollout is a model's progressive delivery: its controller goroutine
// evaluates each interval and moves the canary's weight. Route reads the
// weight's split through an atomic pointer.
type rollout struct {
	r     *Router
	model string
	spec  Rollout // with defaults
	spec0 Rollout // as given, to recognise it in a new document

	split  atomic.Pointer[split.Split] // [stable, canary]
	stable atomic.Pointer[intervalStats]
	canary atomic.Pointer[intervalStats]

	controls chan control // latest-wins manual controls (size 1)
	stop     chan struct{}
	done     chan struct{}

	mu       sync.Mutex // the status, for GET, and doc
	doc      Document   // the document it runs in; its final one is this with the final split
	status   RolloutStatus
	progress time.Time // the last advance

	// stableLatencies is the last interval's sample of stable's
	// latencies that was large enough for a p99: at weight 100 stable
	// takes no traffic, and the canary is compared with it. stableHist is
	// the same for the histograms of Prometheus figures.
	stableLatencies []float64
	stableHist      check.Histogram

	// figures reads a step's figures from Prometheus (nil: from this
	// replica's requests).
	shared *promFigures
	start  time.Time // the instant intervals count from
	// bins is the reference whose bins the drift check compares, once
	// exported (stopBins ends the export); nil: no drift check across
	// replicas (binsTried says a try was made for the versions).
	bins      *drift.Reference
	stopBins  func()
	binsTried [2]int64

	// actor is the operator of the manual control being applied ("":
	// the controller decides by itself); audited the state the last
	// audit entry left. Both are the controller goroutine's.
	actor         string
	audited       auditState
	promoteChecks []check.Result // the last step's, for the promotion's entry
	// feedback is the versions' feedback counts at the last interval's
	// end, [canary, stable] × (labelled, correct), of the versions in
	// feedbackOf; the controller goroutine's.
	feedback   [2][2]int64
	feedbackOf [2]int64
}

// control is a manual control and the operator who asked for it.
type control struct{ action, actor string }

// auditState is what an audit entry of a rollout decision shows before
// and after it.
type auditState struct {
	Phase  string  `json:"phase"`
	Step   int     `json:"step"`
	Weight float64 `json:"weight"`
}

// figures are what an interval's checks read.
type figures struct {
	canaryRequests, canaryErrors, stableRequests int64
	p99                                          check.Result
	drift                                        *check.Result // nil: no drift check
	accuracy                                     *check.Result // nil: no feedback check
}

// DefaultScrapeLag is how long after a step's instant its Prometheus
// figures are read.
const DefaultScrapeLag = 30 * time.Second

func withRolloutDefaults(r Rollout) Rollout {
	if len(r.Steps) == 0 {
		r.Steps = DefaultSteps
	}
	r.IntervalSeconds = cmp.Or(r.IntervalSeconds, DefaultRolloutInterval.Seconds())
	r.MinRequests = cmp.Or(r.MinRequests, DefaultRolloutMinRequests)
	r.Threshold = cmp.Or(r.Threshold, DefaultRolloutThreshold)
	r.MaxErrorRate = cmp.Or(r.MaxErrorRate, DefaultMaxErrorRate)
	r.MaxP99Ratio = cmp.Or(r.MaxP99Ratio, DefaultMaxP99Ratio)
	r.MaxDriftPSI = cmp.Or(r.MaxDriftPSI, DefaultMaxDriftPSI)
	r.Confidence = cmp.Or(r.Confidence, DefaultConfidence)
	r.MinFeedback = cmp.Or(r.MinFeedback, DefaultMinFeedback)
	if r.PrometheusURL != "" && r.ScrapeLagSeconds == 0 {
		r.ScrapeLagSeconds = DefaultScrapeLag.Seconds()
	}
	return r
}

// sameRollout reports whether two rollout specs are the same rollout:
// equal, with their starts compared as instants.
func sameRollout(a, b Rollout) bool {
	as, bs := a.StartedAt, b.StartedAt
	a.StartedAt, b.StartedAt = nil, nil
	if !reflect.DeepEqual(a, b) {
		return false
	}
	return (as == nil && bs == nil) || (as != nil && bs != nil && as.Equal(*bs))
}

// startRollout starts a rollout's controller at its first step.
func (r *Router) startRollout(model string, doc *Document) *rollout {
	spec := withRolloutDefaults(*doc.Rollout)
	ro := &rollout{r: r, model: model, spec: spec, spec0: *doc.Rollout, doc: *doc,
		controls: make(chan control, 1), stop: make(chan struct{}), done: make(chan struct{})}
	now := time.Now()
	ro.start = now
	if spec.StartedAt != nil {
		ro.start = *spec.StartedAt
	}
	ro.status = RolloutStatus{Model: model, Phase: PhaseProgressing, Stable: spec.Stable, Canary: spec.Canary, Started: ro.start.UTC(),
		Figures: "local", History: []Interval{}}
	ro.progress = ro.start
	if spec.PrometheusURL != "" {
		shared, err := newPromFigures(spec, model)
		if err != nil { // Validate checked the URL: not expected
			r.log.Error("rollout: the Prometheus client failed: figures are this replica's", "model", model, "err", err)
		} else {
			ro.shared = shared
			ro.status.Figures = "prometheus"
		}
	}
	ro.setWeight(0, spec.Steps[0])
	ro.audited = auditState{Phase: PhaseProgressing, Step: 0, Weight: ro.status.Weight}
	if fb := r.opts.Feedback; fb != nil && spec.MinAccuracyRatio > 0 {
		// The feedback counts at the start: the first interval counts
		// from here.
		cv, sv := ro.versions()
		ro.feedback[0][0], ro.feedback[0][1] = fb.Counts(model, cv)
		ro.feedback[1][0], ro.feedback[1][1] = fb.Counts(model, sv)
		ro.feedbackOf = [2]int64{cv, sv}
	}
	if spec.MinAccuracyRatio > 0 && r.opts.Feedback == nil && ro.shared == nil {
		ro.status.Skipped = append(ro.status.Skipped, "accuracy_ratio: feedback is off on this server")
	}
	ro.stable.Store(new(intervalStats))
	ro.canary.Store(new(intervalStats))
	r.log.Info("rollout started", "model", model, "stable", spec.Stable.String(), "canary", spec.Canary.String(), "weight", spec.Steps[0],
		"figures", ro.status.Figures, "started_at", ro.status.Started)
	r.wg.Add(1)
	if ro.shared != nil {
		go ro.runShared()
	} else {
		go ro.run()
	}
	return ro
}

// setWeight moves the canary to weight percent, at step.
func (ro *rollout) setWeight(step int, weight float64) {
	weight = math.Max(0, math.Min(100, weight))
	var s *split.Split
	switch weight {
	case 0:
		s, _ = split.New([]float64{1, math.SmallestNonzeroFloat64})
	case 100:
		s, _ = split.New([]float64{math.SmallestNonzeroFloat64, 1})
	default:
		s, _ = split.New([]float64{100 - weight, weight})
	}
	ro.split.Store(s)
	ro.status.Step, ro.status.Weight = step, weight
	ro.r.obs.ObserveRollout(ro.model, weight, ro.status.Phase)
}

// pick returns the target of a request: the canary with its weight.
func (ro *rollout) pick(p *policy, req *Request) (Target, bool) {
	s := ro.split.Load()
	switch w := s.Share(1); {
	case w < 1e-9:
		return ro.spec.Stable, false // weight 0: every key, sticky or not
	case w > 1-1e-9:
		return ro.spec.Canary, true // weight 100
	}
	var i int
	if key := p.key(req); len(key) > 0 {
		// Sticky keys own the top buckets as the canary's weight grows:
		// a key on the canary stays there (package split).
		i = s.Sticky(split.Bucket(p.salt, unsafe.String(unsafe.SliceData(key), len(key))))
	} else {
		i = s.Random(rand.Uint64())
	}
	if i == 1 {
		return ro.spec.Canary, true
	}
	return ro.spec.Stable, false
}

// ended reports whether the controller has stopped.
func (ro *rollout) ended() bool {
	select {
	case <-ro.done:
		return true
	default:
		return false
	}
}

// decided reports whether the rollout has ended or reached its outcome
// (it is then writing its final document): a control would be taken by
// no one.
func (ro *rollout) decided() bool {
	if ro.ended() {
		return true
	}
	ro.mu.Lock()
	defer ro.mu.Unlock()
	return ro.status.Phase == PhasePromoted || ro.status.Phase == PhaseRolledBack
}

// setDoc keeps the rest of a new document that carries the same rollout.
func (ro *rollout) setDoc(doc *Document) {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	ro.doc = *doc
}

// stopWait stops the controller; wait says to wait for it (not from the
// controller's own goroutine).
func (ro *rollout) stopWait(wait bool) {
	select {
	case <-ro.stop:
	default:
		close(ro.stop)
	}
	if wait {
		<-ro.done
	}
}

// Status returns the rollout's status.
func (ro *rollout) Status() RolloutStatus {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	s := ro.status
	s.History = slices.Clone(s.History)
	return s
}

// run evaluates every interval until the rollout ends or is stopped.
func (ro *rollout) run() {
	defer ro.r.wg.Done()
	defer close(ro.done)
	t := time.NewTicker(time.Duration(ro.spec.IntervalSeconds * float64(time.Second)))
	defer t.Stop()
	for {
		select {
		case <-ro.stop:
			return
		case <-ro.r.stop:
			return
		case c := <-ro.controls:
			if ro.control(c) {
				return
			}
		case now := <-t.C:
			if ro.evaluate(now) {
				return
			}
		}
	}
}

// control applies a manual control; true when the rollout ended.
func (ro *rollout) control(ctl control) bool {
	c := ctl.action
	ro.actor = ctl.actor
	defer func() { ro.actor = "" }()
	ro.mu.Lock()
	phase := ro.status.Phase
	ro.mu.Unlock()
	now := time.Now()
	switch c {
	case "pause":
		ro.record(Interval{At: now, Decision: "pause"}, PhasePaused)
	case "resume":
		if phase == PhasePaused {
			ro.mu.Lock()
			ro.progress = now // a pause is not a lack of progress
			ro.mu.Unlock()
			ro.record(Interval{At: now, Decision: "resume"}, PhaseProgressing)
		}
	case "abort":
		ro.finish(now, PhaseRolledBack, "aborted by an operator", "abort")
		return true
	case "promote":
		ro.finish(now, PhasePromoted, "promoted by an operator", "promote")
		return true
	}
	return false
}

// record appends an interval to the history and sets the phase.
func (ro *rollout) record(iv Interval, phase string) {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	iv.At = iv.At.UTC()
	iv.Step, iv.Weight = ro.status.Step, ro.status.Weight
	ro.status.Phase = phase
	ro.status.History = append(ro.status.History, iv)
	if len(ro.status.History) > 100 {
		ro.status.History = ro.status.History[len(ro.status.History)-100:]
	}
	ro.status.Last = &ro.status.History[len(ro.status.History)-1]
	ro.r.obs.ObserveRollout(ro.model, ro.status.Weight, phase)
	ro.auditDecision(iv, phase)
	ro.r.log.Info("rollout", "model", ro.model, "decision", iv.Decision, "phase", phase, "step", iv.Step, "weight", iv.Weight, "reason", iv.Reason,
		"at", iv.At.Format(time.RFC3339Nano))
}

// auditDecision appends a decision to the audit trail (with ro.mu
// held): the controller's own, or an operator's control.
func (ro *rollout) auditDecision(iv Interval, phase string) {
	if ro.r.opts.Audit == nil {
		return
	}
	if iv.Decision == "promote" && phase != PhasePromoted {
		// The last step's checks passed: the promotion that follows is
		// the entry, with these checks.
		ro.promoteChecks = iv.Checks
		return
	}
	if iv.Checks == nil {
		iv.Checks, ro.promoteChecks = ro.promoteChecks, nil
	}
	after := auditState{Phase: phase, Step: iv.Step, Weight: iv.Weight}
	e := audit.Entry{Time: iv.At, Actor: ro.actor, Action: "rollout." + strings.ReplaceAll(iv.Decision, " ", ""), Model: ro.model,
		Before: audit.Doc(ro.audited), After: audit.Doc(after), Reason: iv.Reason}
	if e.Actor == "" {
		e.Actor = AuditActor
	}
	if iv.Checks != nil {
		e.After = audit.Doc(struct {
			auditState
			Checks []check.Result `json:"checks"`
		}{after, iv.Checks})
	}
	ro.audited = after
	ro.r.opts.Audit.Append(e)
}

// AuditActor is the audit trail's actor for the decisions that the
// rollout controller takes by itself.
const AuditActor = "rollout-controller"

// evaluate runs an interval's checks on this replica's figures and
// moves the rollout; true when it ended.
func (ro *rollout) evaluate(now time.Time) bool {
	ro.mu.Lock()
	phase := ro.status.Phase
	ro.mu.Unlock()
	canary := ro.canary.Swap(new(intervalStats))
	stable := ro.stable.Swap(new(intervalStats))
	if phase == PhasePaused {
		return false
	}
	return ro.decide(now, ro.localFigures(canary, stable))
}

// localFigures are an interval's figures from this replica's requests.
func (ro *rollout) localFigures(canary, stable *intervalStats) figures {
	sp := ro.spec
	f := figures{canaryRequests: canary.requests.Load(), canaryErrors: canary.errors.Load(), stableRequests: stable.requests.Load()}
	stableLat := stable.latencies()
	if len(stableLat) >= check.MinP99Samples(sp.Confidence) {
		ro.stableLatencies = stableLat
	} else if ro.stableLatencies != nil {
		stableLat = ro.stableLatencies
	}
	f.p99 = check.P99Ratio(canary.latencies(), stableLat, sp.MaxP99Ratio, sp.Confidence)
	if ro.r.opts.Drift != nil {
		cv, sv := ro.versions()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		psi, p, n, configured, err := ro.r.opts.Drift.CompareDrift(ctx, ro.model, cv, sv)
		cancel()
		switch {
		case !configured:
			// No drift monitoring on the model: no drift check.
		case err != nil:
			f.drift = &check.Result{Name: "drift", Verdict: check.Inconclusive, Reason: err.Error(), Value: math.NaN(), Limit: sp.MaxDriftPSI, Lower: math.NaN(), Upper: math.NaN()}
		default:
			d := check.Drift(psi, p, n, sp.MaxDriftPSI, sp.Confidence)
			f.drift = &d
		}
	}
	cv, sv := ro.versions()
	f.accuracy = ro.localAccuracy(cv, sv)
	return f
}

// localAccuracy is the feedback check on this replica's feedback in the
// interval: the differences of the versions' counts since the last one.
// Nil without min_accuracy_ratio or without feedback.
func (ro *rollout) localAccuracy(cv, sv int64) *check.Result {
	sp := ro.spec
	fb := ro.r.opts.Feedback
	if sp.MinAccuracyRatio <= 0 || fb == nil {
		return nil
	}
	var now [2][2]int64
	now[0][0], now[0][1] = fb.Counts(ro.model, cv)
	now[1][0], now[1][1] = fb.Counts(ro.model, sv)
	prev := ro.feedback
	if ro.feedbackOf != [2]int64{cv, sv} {
		// Other versions than at the last count (a label moved, or they
		// were not loaded): this interval counts from now.
		prev = now
	}
	ro.feedback, ro.feedbackOf = now, [2]int64{cv, sv}
	r := check.AccuracyRatio(now[0][1]-prev[0][1], now[0][0]-prev[0][0], now[1][1]-prev[1][1], now[1][0]-prev[1][0],
		sp.MinAccuracyRatio, int64(sp.MinFeedback), sp.Confidence)
	return &r
}

// decide runs an interval's checks on its figures and moves the
// rollout; true when it ended. With Prometheus figures it is a pure
// function of the figures and the rollout's state, so that every
// replica decides alike.
func (ro *rollout) decide(now time.Time, f figures) bool {
	ro.mu.Lock()
	step := ro.status.Step
	ro.mu.Unlock()
	sp := ro.spec
	iv := Interval{At: now, CanaryRequests: f.canaryRequests, StableRequests: f.stableRequests}
	iv.Checks = append(iv.Checks, check.ErrorRate(f.canaryErrors, f.canaryRequests, sp.MaxErrorRate, sp.Confidence), f.p99)
	if f.drift != nil {
		iv.Checks = append(iv.Checks, *f.drift)
	}
	if f.accuracy != nil {
		iv.Checks = append(iv.Checks, *f.accuracy)
	}
	failed, inconclusive := 0, 0
	for _, c := range iv.Checks {
		switch c.Verdict {
		case check.Fail:
			failed++
		case check.Inconclusive:
			inconclusive++
		}
	}
	switch {
	case failed > 0:
		ro.mu.Lock()
		ro.status.Failed++
		n := ro.status.Failed
		ro.mu.Unlock()
		iv.Decision, iv.Reason = "fail", fmt.Sprintf("%d of %d checks failed (%d failed intervals, threshold %d)", failed, len(iv.Checks), n, sp.Threshold)
		ro.record(iv, PhaseHolding)
		if n >= sp.Threshold {
			ro.finish(now, PhaseRolledBack, "failed checks: "+failedNames(iv.Checks), "roll back")
			return true
		}
	case iv.CanaryRequests < int64(sp.MinRequests):
		iv.Decision, iv.Reason = "hold", fmt.Sprintf("%d canary requests, fewer than min_requests %d", iv.CanaryRequests, sp.MinRequests)
		ro.record(iv, PhaseHolding)
	case inconclusive > 0:
		iv.Decision, iv.Reason = "hold", "a check is inconclusive"
		ro.record(iv, PhaseHolding)
	default:
		if step+1 >= len(sp.Steps) {
			iv.Decision = "promote"
			ro.record(iv, PhaseProgressing)
			ro.finish(now, PhasePromoted, "every step passed", "promote")
			return true
		}
		iv.Decision = "advance"
		ro.mu.Lock()
		ro.setWeight(step+1, sp.Steps[step+1])
		ro.progress = now
		ro.mu.Unlock()
		ro.record(iv, PhaseProgressing)
	}
	if d := sp.ProgressDeadlineSeconds; d > 0 && now.Sub(ro.progressAt()) > time.Duration(d*float64(time.Second)) {
		ro.finish(now, PhaseRolledBack, fmt.Sprintf("no progress in progress_deadline_seconds (%gs)", d), "roll back")
		return true
	}
	return false
}

// runShared evaluates every step at its pinned instant, start + k
// intervals, from Prometheus figures read once the scrape lag has
// passed, until the rollout ends or is stopped. A step whose figures
// cannot be read is read again at the next tick; a controller that
// starts late (a replica that joins, a restart) replays the steps since
// the start, so that every replica converges on the same state.
func (ro *rollout) runShared() {
	defer ro.r.wg.Done()
	defer close(ro.done)
	interval := time.Duration(ro.spec.IntervalSeconds * float64(time.Second))
	lag := time.Duration(ro.spec.ScrapeLagSeconds * float64(time.Second))
	t := time.NewTicker(min(interval/4, time.Second))
	defer t.Stop()
	evaluated := 0 // the steps decided so far
	failing := ""  // the last read failure logged
	ro.exportBins()
	defer func() {
		if ro.stopBins != nil {
			ro.stopBins()
		}
	}()
	for {
		select {
		case <-ro.stop:
			return
		case <-ro.r.stop:
			return
		case c := <-ro.controls:
			if ro.control(c) {
				return
			}
			continue
		case <-t.C:
		}
		due := int(time.Since(ro.start.Add(lag)) / interval) // the steps whose instant plus the lag has passed
		for evaluated < due {
			at := ro.start.Add(time.Duration(evaluated+1) * interval)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			f, err := ro.sharedFigures(ctx, at)
			cancel()
			if err != nil {
				ro.mu.Lock()
				ro.status.LastError = fmt.Sprintf("step at %s: %v", at.UTC().Format(time.RFC3339Nano), err)
				ro.mu.Unlock()
				if err.Error() != failing {
					failing = err.Error()
					ro.r.log.Warn("rollout: cannot read the step's figures from Prometheus: reading them again", "model", ro.model, "at", at, "err", err)
				}
				break
			}
			failing = ""
			evaluated++
			if ro.decide(at, f) {
				return
			}
			select {
			case <-ro.stop:
				return
			default:
			}
		}
	}
}

// sharedFigures are the figures of the step at instant at, from
// Prometheus: the canary's and stable's over the interval before it,
// summed over every replica.
func (ro *rollout) sharedFigures(ctx context.Context, at time.Time) (figures, error) {
	cv, sv := ro.versions()
	if cv == 0 || sv == 0 {
		return figures{}, fmt.Errorf("the canary (%s) or stable (%s) is not loaded", ro.spec.Canary, ro.spec.Stable)
	}
	window := time.Duration(ro.spec.IntervalSeconds * float64(time.Second))
	pf, err := ro.shared.read(ctx, at, window, cv, sv)
	if err != nil {
		return figures{}, err
	}
	sp := ro.spec
	f := figures{canaryRequests: pf.canaryRequests, canaryErrors: min(pf.canaryErrors, pf.canaryRequests), stableRequests: pf.stableRequests}
	stable := pf.stableHist
	if stable.Total() >= check.MinP99Samples(sp.Confidence) {
		ro.stableHist = stable
	} else if ro.stableHist.Bounds != nil {
		stable = ro.stableHist
	}
	f.p99 = check.P99RatioHistogram(pf.canaryHist, stable, sp.MaxP99Ratio, sp.Confidence)
	ro.exportBins() // when the versions were not loaded at the start
	if ro.bins != nil {
		cb, err := ro.shared.bins(ctx, at, window, cv, ro.bins)
		if err != nil {
			return figures{}, err
		}
		sb, err := ro.shared.bins(ctx, at, window, sv, ro.bins)
		if err != nil {
			return figures{}, err
		}
		psi, p, n := compareBins(cb, sb)
		d := check.Drift(psi, p, n, sp.MaxDriftPSI, sp.Confidence)
		f.drift = &d
	}
	if sp.MinAccuracyRatio > 0 {
		// increase() extrapolates each counter alone: keep correct ≤ labelled.
		a := check.AccuracyRatio(min(pf.canaryCorrect, pf.canaryLabelled), pf.canaryLabelled, min(pf.stableCorrect, pf.stableLabelled), pf.stableLabelled,
			sp.MinAccuracyRatio, int64(sp.MinFeedback), sp.Confidence)
		f.accuracy = &a
	}
	return f, nil
}

// exportBins starts the export of the drift bins of the canary and
// stable, over the stable version's reference file, once per pair of
// versions; without a reference file, or without drift monitoring, the
// rollout has no drift check, and its status says why.
func (ro *rollout) exportBins() {
	exporter, ok := ro.r.opts.Drift.(DriftBinExporter)
	if !ok || ro.bins != nil {
		return
	}
	cv, sv := ro.versions()
	if cv == 0 || sv == 0 || ro.binsTried == [2]int64{cv, sv} {
		return
	}
	ro.binsTried = [2]int64{cv, sv}
	skip := func(why string) {
		ro.mu.Lock()
		ro.status.Skipped = []string{"drift: " + why}
		ro.mu.Unlock()
	}
	m, err := ro.r.repo.Model(ro.model)
	if err != nil {
		return
	}
	cfg := m.Config()
	if cfg == nil || cfg.Monitoring.Drift == nil {
		return // no drift monitoring: no drift check, as on one replica
	}
	file := cmp.Or(cfg.Monitoring.Drift.Reference.File, "reference.json")
	path := filepath.Join(ro.r.repo.Root(), ro.model, strconv.FormatInt(sv, 10), file)
	ref, err := drift.ReadReference(path)
	if err != nil {
		skip(fmt.Sprintf("not checked across replicas: the stable version's reference file, whose bins every replica counts in, does not load (%v): "+
			"build one with infergate reference build; each replica's drift monitoring still applies", err))
		return
	}
	stop, err := exporter.ExportDriftBins(ro.model, []int64{cv, sv}, ref)
	if err != nil {
		skip(fmt.Sprintf("not checked across replicas: %v", err))
		return
	}
	ro.bins, ro.stopBins = ref, stop
	ro.mu.Lock()
	ro.status.Skipped = nil
	ro.mu.Unlock()
}

// compareBins compares the canary's bin counts with stable's, tensor by
// tensor, as drift.CompareCounts does: the worst PSI, the smallest
// corrected p-value and the fewest samples.
func compareBins(canary, stable map[binTensor][][]float64) (psi, pValue float64, samples int64) {
	pValue, samples = 1, -1
	for k, s := range stable {
		c, ok := canary[k]
		if !ok {
			continue
		}
		r := drift.CompareCounts(c, s)
		psi, pValue = max(psi, r.PSI), min(pValue, r.PValue)
		if samples < 0 || min(r.Samples, r.ReferenceSamples) < samples {
			samples = min(r.Samples, r.ReferenceSamples)
		}
	}
	return psi, pValue, max(samples, 0)
}

func (ro *rollout) progressAt() time.Time {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	return ro.progress
}

func failedNames(cs []check.Result) string {
	var out []string
	for _, c := range cs {
		if c.Verdict == check.Fail {
			out = append(out, c.Name)
		}
	}
	return fmt.Sprint(out)
}

// versions resolves the canary's and stable's version numbers now.
func (ro *rollout) versions() (canary, stable int64) {
	m, err := ro.r.repo.Model(ro.model)
	if err != nil {
		return 0, 0
	}
	if v, err := m.Lookup(ro.spec.Canary.Version, ro.spec.Canary.Label); err == nil {
		canary = v.Number
	}
	if v, err := m.Lookup(ro.spec.Stable.Version, ro.spec.Stable.Label); err == nil {
		stable = v.Number
	}
	return canary, stable
}

// finish ends the rollout: all traffic to the canary (promoted) or to
// stable (rolled back), and the document rewritten to that final split,
// with the outcome and history in its status.
func (ro *rollout) finish(now time.Time, phase, reason, decision string) {
	ro.mu.Lock()
	ro.status.Reason = reason
	if phase == PhasePromoted {
		ro.setWeight(ro.status.Step, 100)
	} else {
		ro.setWeight(ro.status.Step, 0)
	}
	ro.mu.Unlock()
	ro.record(Interval{At: now, Decision: decision, Reason: reason}, phase)
	final := ro.spec.Stable
	if phase == PhasePromoted {
		final = ro.spec.Canary
	}
	final.Weight = 100
	status := ro.Status()
	ro.mu.Lock()
	doc := ro.doc
	ro.mu.Unlock()
	doc.Rollout = nil
	doc.Split = []Target{final}
	doc.Status = &status
	if err := ro.r.replace(ro.model, &doc, ro); err != nil {
		ro.r.log.Error("rollout ended, but its final document was not applied", "model", ro.model, "err", err)
	}
}

// Control applies a manual control to a model's running rollout:
// "abort", "promote", "pause" or "resume". actor names the operator in
// the audit trail's entry of the decision.
func (r *Router) Control(model, action, actor string) (*RolloutStatus, error) {
	switch action {
	case "abort", "promote", "pause", "resume":
	default:
		return nil, fmt.Errorf("%w: unknown rollout action %q (want abort, promote, pause or resume)", ErrInvalidRequest, action)
	}
	m, err := r.repo.Model(model)
	if err != nil {
		return nil, err
	}
	ro := r.policy(m).rollout
	if ro == nil {
		return nil, fmt.Errorf("%w: model %q has no rollout running", ErrNoRollout, m.Name)
	}
	if ro.decided() {
		return nil, fmt.Errorf("%w: model %q has no rollout running", ErrNoRollout, m.Name)
	}
	if ro.shared != nil && (action == "pause" || action == "resume") {
		return nil, fmt.Errorf("%w: a rollout with prometheus_url cannot %s: a pause on one replica would make the replicas disagree; "+
			"abort or promote it (every replica follows the final document), or PUT a new document", ErrInvalidRequest, action)
	}
	// Latest wins: a control still waiting is replaced.
	for {
		select {
		case ro.controls <- control{action, actor}:
		default:
			select {
			case <-ro.controls:
			default:
			}
			continue
		}
		break
	}
	st := ro.Status()
	return &st, nil
}

// RolloutStatus returns a model's rollout: the running one, or the
// outcome of the last one kept in the document's status.
func (r *Router) RolloutStatus(model string) (*RolloutStatus, error) {
	m, err := r.repo.Model(model)
	if err != nil {
		return nil, err
	}
	p := r.policy(m)
	if p.rollout != nil {
		st := p.rollout.Status()
		return &st, nil
	}
	if p.doc != nil && p.doc.Status != nil {
		st := *p.doc.Status
		return &st, nil
	}
	return nil, fmt.Errorf("%w: model %q has no rollout", ErrNoRollout, m.Name)
}
