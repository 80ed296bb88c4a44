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
// Record is on every request's path, so the store is laid out for it: a
// ring of fixed-size slots in the order served, and an index from a
// 128-bit hash of (model, id) to a slot. Neither holds a pointer, so the
// garbage collector does not walk a full store, and a one-row request
// allocates nothing. Only requests of several rows keep their
// predictions in a map of their own. A request served again under the
// same id leaves its old slot empty until the ring comes round to it.
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
	"hash/maphash"
	"maps"
	"math"
	"strconv"
	"sync"
	"time"

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
	seeds  [2]maphash.Seed
	shards []shard // by the id's hash

	mu       sync.Mutex // guards versions; taken after a shard's
	versions map[versionKey]*versionStats
}

// shards is how many a store of at least shardedIDs requests has: each
// holds a 16th of the requests (by hash) under its own lock, with a 16th
// of both bounds. A smaller store is one shard.
const (
	shards     = 16
	shardedIDs = 1 << 14
)

// shard is a ring of the requests in the order served, and their index.
type shard struct {
	mu      sync.Mutex
	maxIDs  int
	maxRows int
	slots   []slot // the ring; grows to maxIDs
	start   int    // the oldest position
	n       int    // positions in use from start, empty ones included
	// index maps a remembered request to its position. A Go map that
	// keys come and go through leaves tombstones, and grows past them
	// (to several times the keys it holds, measured in make soak), so
	// it is rebuilt after every maxIDs removals (removed), with room for
	// 2×maxIDs keys: its size is bounded by maxIDs.
	index   map[idHash]int32
	removed int
	multi   [][]float64 // the predictions of a request of several rows, by position (beside slots)
	live    int         // remembered requests
	rows    int         // their rows
	// vkeys are the versions slots refer to (slot.version), vindex
	// their positions in it.
	vkeys  []versionKey
	vindex map[versionKey]int32
}

// idHash stands for a (model, id) pair: two independent 64-bit hashes,
// so that two pairs share one with a chance of about 2^-128 a pair.
type idHash [2]uint64

type versionKey struct {
	model   string
	version int64
}

// slot is one served request, or an empty position (zero key).
type slot struct {
	key      idHash
	served   int64   // Unix ns
	pred     float64 // the prediction of a one-row request
	rows     int32
	version  int32 // in Store.vkeys
	classes  bool  // predictions are argmax classes
	hasGiven bool
	given    given // the feedback taken, when hasGiven
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
	s := &Store{
		opts:     opts,
		bucket:   opts.Window / buckets,
		seeds:    [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		versions: map[versionKey]*versionStats{},
	}
	n := 1
	if opts.MaxIDs >= shardedIDs {
		n = shards
	}
	s.shards = make([]shard, n)
	for i := range s.shards {
		s.shards[i] = shard{
			maxIDs:  opts.MaxIDs / n,
			maxRows: max(opts.MaxRows/n, 1),
			index:   map[idHash]int32{},
			vindex:  map[versionKey]int32{},
		}
	}
	return s
}

func (s *Store) shard(h idHash) *shard { return &s.shards[h[1]%uint64(len(s.shards))] }

type pair struct{ model, id string }

func (s *Store) hash(model, id string) idHash {
	p := pair{model, id}
	h := idHash{maphash.Comparable(s.seeds[0], p), maphash.Comparable(s.seeds[1], p)}
	if h == (idHash{}) {
		h[0] = 1 // the zero key marks an empty slot
	}
	return h
}

// Record remembers that version of model answered request id with
// outputs (the first one is the prediction). An output that is not
// numeric, or an empty id, records nothing.
func (s *Store) Record(model string, version int64, id string, outputs []runtime.Tensor) {
	if s == nil || id == "" || len(outputs) == 0 {
		return
	}
	t := &outputs[0]
	rows, per, classes, ok := predictShape(t)
	if !ok {
		return
	}
	sl := slot{rows: int32(rows), classes: classes}
	var preds []float64
	if rows == 1 {
		if sl.pred, ok = predictRow(t, 0, per, classes); !ok {
			return
		}
	} else if preds, ok = predictRows(t, rows, per, classes); !ok {
		return
	}
	sl.key = s.hash(model, id)
	sl.served = s.opts.Now().UnixNano()
	sh := s.shard(sl.key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if pos, ok := sh.index[sl.key]; ok {
		if old := &sh.slots[pos]; old.hasGiven {
			// Served again under the same id: its old feedback no
			// longer stands for what was served.
			s.retract(sh, old)
		}
		sh.forget(pos)
	}
	sl.version = sh.version(versionKey{model, version})
	for sh.n > 0 && (sh.n == sh.maxIDs || sh.rows+rows > sh.maxRows) {
		if sh.slots[sh.start].key != (idHash{}) {
			sh.forget(int32(sh.start)) // its feedback stands
		}
		sh.start = (sh.start + 1) % sh.maxIDs
		sh.n--
	}
	pos := (sh.start + sh.n) % sh.maxIDs
	if pos == len(sh.slots) {
		sh.slots = append(sh.slots, sl)
		sh.multi = append(sh.multi, preds)
	} else {
		sh.slots[pos] = sl
		sh.multi[pos] = preds
	}
	sh.n++
	sh.index[sl.key] = int32(pos)
	sh.live++
	sh.rows += rows
}

// version returns k's position in sh.vkeys, adding it if new.
func (sh *shard) version(k versionKey) int32 {
	if n := len(sh.vkeys); n > 0 && sh.vkeys[n-1] == k {
		return int32(n - 1) // the common case: the version served last
	}
	i, ok := sh.vindex[k]
	if !ok {
		i = int32(len(sh.vkeys))
		sh.vkeys = append(sh.vkeys, k)
		sh.vindex[k] = i
	}
	return i
}

// forget empties the slot at pos.
func (sh *shard) forget(pos int32) {
	sl := &sh.slots[pos]
	delete(sh.index, sl.key)
	sh.multi[pos] = nil
	sh.live--
	sh.rows -= int(sl.rows)
	*sl = slot{}
	if sh.removed++; sh.removed >= sh.maxIDs {
		sh.rebuildIndex()
	}
}

// rebuildIndex copies the index into a new map with room for 2×maxIDs
// keys. The keys it holds (live) and the inserts until the next rebuild
// (at most maxIDs-live with no removal, then one per removal, maxIDs of
// them) cannot fill it, so it never grows; the old map's tombstones go
// with it.
func (sh *shard) rebuildIndex() {
	index := make(map[idHash]int32, 2*sh.maxIDs)
	maps.Copy(index, sh.index)
	sh.index, sh.removed = index, 0
}

// predictShape reads how a request's prediction is laid out in its first
// output: rows, values per row, and whether each row is a class (the
// argmax of [N, C]) or its first value.
func predictShape(t *runtime.Tensor) (rows, per int, classes, ok bool) {
	size := t.DataType.Size()
	if t.Data == nil || size <= 0 || len(t.Data) == 0 {
		return 0, 0, false, false
	}
	count := len(t.Data) / size
	rows = 1
	if len(t.Shape) >= 1 && t.Shape[0] > 0 && count%int(t.Shape[0]) == 0 {
		rows = int(t.Shape[0])
	}
	return rows, count / rows, len(t.Shape) == 2 && t.Shape[1] > 1, true
}

// predictRow returns row r's prediction; false when it is not finite.
func predictRow(t *runtime.Tensor, r, per int, classes bool) (float64, bool) {
	size := t.DataType.Size()
	row := t.Data[r*per*size : (r+1)*per*size]
	if !classes {
		p := t.DataType.Float64(row)
		return p, !math.IsNaN(p) && !math.IsInf(p, 0) // else no prediction to judge
	}
	best, arg := math.Inf(-1), 0
	for i := range per {
		if x := t.DataType.Float64(row[i*size:]); x > best {
			best, arg = x, i
		}
	}
	return float64(arg), true
}

func predictRows(t *runtime.Tensor, rows, per int, classes bool) ([]float64, bool) {
	preds := make([]float64, rows)
	for r := range preds {
		p, ok := predictRow(t, r, per, classes)
		if !ok {
			return nil, false
		}
		preds[r] = p
	}
	return preds, true
}

// predict reads a request's predictions from its first output.
func predict(t *runtime.Tensor) (preds []float64, classes, ok bool) {
	rows, per, classes, ok := predictShape(t)
	if !ok {
		return nil, false, false
	}
	preds, ok = predictRows(t, rows, per, classes)
	return preds, classes, ok
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
	key := s.hash(model, id)
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	pos, ok := sh.index[key]
	if ok && now.UnixNano()-sh.slots[pos].served > int64(s.opts.TTL) {
		sh.forget(pos) // its feedback stands
		ok = false
	}
	if !ok {
		return Given{}, fmt.Errorf("%w %q for model %q: it was not served here in the last %v (feedback.ttl) or was pushed out by newer requests (feedback.max_ids)",
			ErrUnknownID, id, model, s.opts.TTL)
	}
	r := &sh.slots[pos]
	preds := []float64{r.pred}
	if r.rows > 1 {
		preds = sh.multi[pos]
	}
	rows := len(preds)
	n := max(len(a.Labels), len(a.Values))
	if n != 1 && n != rows {
		return Given{}, fmt.Errorf("%w: the request had %d rows: give one answer for all or a list of %d, got %d", ErrInvalid, rows, rows, n)
	}
	g := given{bucket: s.bucketStart(now), labels: a.Labels != nil, n: int64(rows)}
	for i, p := range preds {
		j := min(i, n-1)
		if g.labels {
			if float64(a.Labels[j]) == math.Round(p) {
				g.correct++
			}
		} else {
			g.absErr += math.Abs(a.Values[j] - p)
		}
	}
	replaced := r.hasGiven
	if replaced {
		s.retract(sh, r)
	}
	r.given, r.hasGiven = g, true
	k := sh.vkeys[r.version]
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.stats(k)
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
	out := Given{Model: model, Version: k.version, Rows: rows, Replaced: replaced}
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
// (not out of the counters: they count every answer taken). sh, r's
// shard, is locked.
func (s *Store) retract(sh *shard, r *slot) {
	g := r.given
	r.given, r.hasGiven = given{}, false
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.stats(sh.vkeys[r.version])
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
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.live
		sh.mu.Unlock()
	}
	return n
}

// rowsHeld returns how many rows the store remembers.
func (s *Store) rowsHeld() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.rows
		sh.mu.Unlock()
	}
	return n
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
