// Package feedback closes the loop between a prediction and the truth:
// it remembers, for a bounded count and time, which version answered
// each inference request and what it predicted, takes ground truth for
// those requests (a class label, or a value), and keeps each version's
// accuracy (labels) and mean absolute error (values) over a window, for
// Prometheus and for the rollout's min_accuracy_ratio check.
//
// The prediction of a request is read from its first output: for an
// output of shape [N, C] with C > 1, the argmax of each row (a class);
// otherwise the first value of each row (N rows; a tensor without a
// batch dimension is one row). Feedback for a request of N rows is one
// label or value for all rows, or a list of N. Feedback given again for
// the same id replaces the earlier one: the figures count the last. A
// label matches when it equals the predicted class: the argmax, or the
// first value rounded to the nearest integer (so a [N, 1] probability
// predicts class 1 above 0.5, and an integer label output is its own
// class). A value's error is its distance to the first value.
//
// A Store holds at most Options.MaxIDs requests and Options.MaxRows rows
// (the least recently served go first); a prediction that is not finite
// is not remembered and forgets a request Options.TTL after it was
// served. It starts no goroutine: expiry is checked on lookup, and the
// window's buckets roll as time reaches them.
//
// Figures, per model version:
//
//   - infergate_feedback_total{model,version,kind}: answers taken (rows;
//     kind "label" or "value"), a replacement counting again;
//   - infergate_feedback_correct_total{model,version}: correct labels, a
//     replacement counting again;
//   - infergate_feedback_accuracy{model,version}: correct labels of the
//     labels given in the window (Options.Window), the last answer of
//     each request;
//   - infergate_feedback_mae{model,version}: the mean absolute error of
//     the values given in the window.
//
// The package imports no protocol package: the gateway and the gRPC
// server call Record and Give, the router reads Counts.
package feedback

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/runtime"
)

// Defaults of Options.
const (
	DefaultMaxIDs = 100_000
	// DefaultMaxRows bounds the rows remembered over all requests: 8 MB
	// of predictions.
	DefaultMaxRows = 1_000_000
	DefaultTTL     = time.Hour
	DefaultWindow  = 10 * time.Minute
	// buckets is how many buckets the window rolls through.
	buckets = 10
)

// Options configure a Store.
type Options struct {
	// MaxIDs bounds the requests remembered (feedback.max_ids). Default
	// DefaultMaxIDs.
	MaxIDs int
	// MaxRows bounds the rows remembered over every request
	// (feedback.max_rows), so that large batches cannot hold much
	// memory: past it the least recently served requests go first.
	// Default DefaultMaxRows.
	MaxRows int
	// TTL is how long a request can get feedback after it was served
	// (feedback.ttl). Default DefaultTTL.
	TTL time.Duration
	// Window is what the accuracy and MAE gauges cover
	// (feedback.window). Default DefaultWindow.
	Window time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Errors of Give.
var (
	// ErrUnknownID: no request with that id was served by this store's
	// model in the last TTL (or it was pushed out by newer ones).
	ErrUnknownID = errdefs.Sentinel(errdefs.NotFound, "unknown request id")
	// ErrInvalid: the feedback does not fit the request.
	ErrInvalid = errdefs.Sentinel(errdefs.Invalid, "invalid feedback")
)

// Store remembers predictions and takes feedback for them. Its methods
// are safe for concurrent use; a nil *Store records nothing.
type Store struct {
	opts   Options
	bucket time.Duration

	mu       sync.Mutex
	ids      *simplelru.LRU[string, *record]
	rows     int // the rows of the requests in ids
	versions map[versionKey]*versionStats
}

type versionKey struct {
	model   string
	version int64
}

// record is one served request.
type record struct {
	key     versionKey
	served  time.Time
	preds   []float64 // one a row
	classes bool      // preds are argmax classes
	given   *given    // the feedback taken; nil: none yet
}

// given is a request's feedback as counted: what to take back when it
// is replaced.
type given struct {
	bucket     int64 // the bucket's start, Unix ns
	labels     bool
	n, correct int64
	absErr     float64
}

// versionStats are a version's figures.
type versionStats struct {
	// Cumulative over the version's life, the last answer of each
	// request: Counts, for the rollout's intervals.
	labelled, correct int64
	// Prometheus counters: every answer taken.
	labelsTotal, valuesTotal, correctTotal float64
	ring                                   [buckets]bucket
}

type bucket struct {
	start             int64 // Unix ns; 0: empty
	labelled, correct int64
	valued            int64
	absErr            float64
}

// New returns an empty Store.
func New(opts Options) *Store {
	opts.MaxIDs = cmp.Or(opts.MaxIDs, DefaultMaxIDs)
	opts.MaxRows = cmp.Or(opts.MaxRows, DefaultMaxRows)
	opts.TTL = cmp.Or(opts.TTL, DefaultTTL)
	opts.Window = cmp.Or(opts.Window, DefaultWindow)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{opts: opts, bucket: opts.Window / buckets, versions: map[versionKey]*versionStats{}}
	ids, err := simplelru.NewLRU(opts.MaxIDs, func(_ string, r *record) { s.rows -= len(r.preds) })
	if err != nil { // only for a size ≤ 0
		panic(err)
	}
	s.ids = ids
	return s
}

func idKey(model, id string) string { return model + "\x00" + id }

// Record remembers that version of model answered request id with
// outputs (the first one is the prediction). An output that is not
// numeric, or an empty id, records nothing.
func (s *Store) Record(model string, version int64, id string, outputs []runtime.Tensor) {
	if s == nil || id == "" || len(outputs) == 0 {
		return
	}
	preds, classes, ok := predict(&outputs[0])
	if !ok {
		return
	}
	r := &record{key: versionKey{model, version}, served: s.opts.Now(), preds: preds, classes: classes}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.ids.Peek(idKey(model, id)); ok {
		if old.given != nil {
			// Served again under the same id: its old feedback no
			// longer stands for what was served.
			s.retract(old)
		}
		s.rows -= len(old.preds) // replaced without an eviction
	}
	s.rows += len(preds)
	s.ids.Add(idKey(model, id), r)
	for s.rows > s.opts.MaxRows && s.ids.Len() > 1 {
		s.ids.RemoveOldest()
	}
}

// predict reads a request's prediction from its first output.
func predict(t *runtime.Tensor) (preds []float64, classes, ok bool) {
	size := t.DataType.Size()
	if t.Data == nil || size <= 0 || len(t.Data) == 0 {
		return nil, false, false
	}
	count := len(t.Data) / size
	rows := 1
	if len(t.Shape) >= 1 && t.Shape[0] > 0 && count%int(t.Shape[0]) == 0 {
		rows = int(t.Shape[0])
	}
	per := count / rows
	preds = make([]float64, rows)
	classes = len(t.Shape) == 2 && t.Shape[1] > 1
	for r := range rows {
		row := t.Data[r*per*size : (r+1)*per*size]
		if !classes {
			preds[r] = t.DataType.Float64(row)
			if math.IsNaN(preds[r]) || math.IsInf(preds[r], 0) {
				return nil, false, false // no prediction to judge
			}
			continue
		}
		best, arg := math.Inf(-1), 0
		for i := range per {
			if x := t.DataType.Float64(row[i*size:]); x > best {
				best, arg = x, i
			}
		}
		preds[r] = float64(arg)
	}
	return preds, classes, true
}

// Answer is a request's feedback: Labels (classes) or Values, one for
// every row or one for all.
type Answer struct {
	Labels []int64
	Values []float64
}

// Given says what a Give counted.
type Given struct {
	Model   string `json:"model"`
	Version int64  `json:"version"`
	Rows    int    `json:"rows"`
	// Correct is how many rows the label matched (labels only).
	Correct *int64 `json:"correct,omitempty"`
	// AbsError is the mean absolute error of the rows (values only).
	AbsError *float64 `json:"abs_error,omitempty"`
	Replaced bool     `json:"replaced"`
}

// Give takes feedback for request id of model; feedback given before
// for it is replaced.
func (s *Store) Give(model, id string, a Answer) (Given, error) {
	if s == nil {
		return Given{}, fmt.Errorf("%w: feedback is off", ErrUnknownID)
	}
	if (a.Labels == nil) == (a.Values == nil) {
		return Given{}, fmt.Errorf(`%w: give "label" or "value", one of them`, ErrInvalid)
	}
	for _, v := range a.Values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Given{}, fmt.Errorf("%w: a value must be a finite number", ErrInvalid)
		}
	}
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.ids.Get(idKey(model, id))
	if ok && now.Sub(r.served) > s.opts.TTL {
		s.ids.Remove(idKey(model, id))
		ok = false
	}
	if !ok {
		return Given{}, fmt.Errorf("%w %q for model %q: it was not served here in the last %v (feedback.ttl) or was pushed out by newer requests (feedback.max_ids)",
			ErrUnknownID, id, model, s.opts.TTL)
	}
	rows := len(r.preds)
	n := max(len(a.Labels), len(a.Values))
	if n != 1 && n != rows {
		return Given{}, fmt.Errorf("%w: the request had %d rows: give one answer for all or a list of %d, got %d", ErrInvalid, rows, rows, n)
	}
	g := &given{bucket: s.bucketStart(now), labels: a.Labels != nil, n: int64(rows)}
	for i, p := range r.preds {
		j := min(i, n-1)
		if g.labels {
			if float64(a.Labels[j]) == math.Round(p) {
				g.correct++
			}
		} else {
			g.absErr += math.Abs(a.Values[j] - p)
		}
	}
	replaced := r.given != nil
	if replaced {
		s.retract(r)
	}
	r.given = g
	vs := s.stats(r.key)
	b := s.bucketAt(vs, g.bucket)
	if g.labels {
		vs.labelled += g.n
		vs.correct += g.correct
		vs.labelsTotal += float64(g.n)
		vs.correctTotal += float64(g.correct)
		b.labelled += g.n
		b.correct += g.correct
	} else {
		vs.valuesTotal += float64(g.n)
		b.valued += g.n
		b.absErr += g.absErr
	}
	out := Given{Model: model, Version: r.key.version, Rows: rows, Replaced: replaced}
	if g.labels {
		c := g.correct
		out.Correct = &c
	} else {
		e := g.absErr / float64(max(rows, 1))
		out.AbsError = &e
	}
	return out, nil
}

// retract takes a request's counted feedback back out of the figures
// (not out of the counters: they count every answer taken).
func (s *Store) retract(r *record) {
	g := r.given
	r.given = nil
	vs := s.stats(r.key)
	if g.labels {
		vs.labelled -= g.n
		vs.correct -= g.correct
	}
	for i := range vs.ring {
		b := &vs.ring[i]
		if b.start == g.bucket {
			if g.labels {
				b.labelled -= g.n
				b.correct -= g.correct
			} else {
				b.valued -= g.n
				b.absErr -= g.absErr
			}
		}
	}
}

func (s *Store) stats(k versionKey) *versionStats {
	vs := s.versions[k]
	if vs == nil {
		vs = &versionStats{}
		s.versions[k] = vs
	}
	return vs
}

func (s *Store) bucketStart(t time.Time) int64 {
	return t.Truncate(s.bucket).UnixNano()
}

// bucketAt returns the bucket that starts at start, reusing the slot of
// the one a window before it.
func (s *Store) bucketAt(vs *versionStats, start int64) *bucket {
	b := &vs.ring[(start/int64(s.bucket))%buckets]
	if b.start != start {
		*b = bucket{start: start}
	}
	return b
}

// Counts returns a version's labelled answers and how many were
// correct, over its life, the last answer of each request: the rollout
// takes their differences between intervals.
func (s *Store) Counts(model string, version int64) (labelled, correct int64) {
	if s == nil {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if vs := s.versions[versionKey{model, version}]; vs != nil {
		return vs.labelled, vs.correct
	}
	return 0, 0
}

// Window returns a version's figures over the window: answers and
// correct labels, and values with their summed absolute error.
func (s *Store) Window(model string, version int64) (labelled, correct, valued int64, absErr float64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if vs := s.versions[versionKey{model, version}]; vs != nil {
		return s.window(vs)
	}
	return
}

func (s *Store) window(vs *versionStats) (labelled, correct, valued int64, absErr float64) {
	oldest := s.bucketStart(s.opts.Now().Add(-s.opts.Window)) + int64(s.bucket)
	for _, b := range vs.ring {
		if b.start != 0 && b.start >= oldest {
			labelled += b.labelled
			correct += b.correct
			valued += b.valued
			absErr += b.absErr
		}
	}
	return
}

// Len returns how many requests the store remembers.
func (s *Store) Len() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids.Len()
}

var (
	descTotal    = prometheus.NewDesc("infergate_feedback_total", "Feedback answers taken (rows), by kind (label or value); a replacement counts again.", []string{"model", "version", "kind"}, nil)
	descCorrect  = prometheus.NewDesc("infergate_feedback_correct_total", "Feedback labels that matched the prediction (rows); a replacement counts again.", []string{"model", "version"}, nil)
	descAccuracy = prometheus.NewDesc("infergate_feedback_accuracy", "Correct labels of the labels given over the feedback window (the last answer of each request).", []string{"model", "version"}, nil)
	descMAE      = prometheus.NewDesc("infergate_feedback_mae", "Mean absolute error of the values given over the feedback window (the last answer of each request).", []string{"model", "version"}, nil)
)

// Describe implements prometheus.Collector.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTotal
	ch <- descCorrect
	ch <- descAccuracy
	ch <- descMAE
}

// Collect implements prometheus.Collector: the figures as they are at
// the scrape.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, vs := range s.versions {
		v := strconv.FormatInt(k.version, 10)
		ch <- prometheus.MustNewConstMetric(descTotal, prometheus.CounterValue, vs.labelsTotal, k.model, v, "label")
		ch <- prometheus.MustNewConstMetric(descTotal, prometheus.CounterValue, vs.valuesTotal, k.model, v, "value")
		ch <- prometheus.MustNewConstMetric(descCorrect, prometheus.CounterValue, vs.correctTotal, k.model, v)
		labelled, correct, valued, absErr := s.window(vs)
		if labelled > 0 {
			ch <- prometheus.MustNewConstMetric(descAccuracy, prometheus.GaugeValue, float64(correct)/float64(labelled), k.model, v)
		}
		if valued > 0 {
			ch <- prometheus.MustNewConstMetric(descMAE, prometheus.GaugeValue, absErr/float64(valued), k.model, v)
		}
	}
}

// IsUnknown reports whether err is Give's unknown id.
func IsUnknown(err error) bool { return errors.Is(err, ErrUnknownID) }
