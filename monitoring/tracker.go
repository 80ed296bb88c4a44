package monitoring

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infergate/infergate/monitoring/drift"
	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/runtime"
)

// source is one watched tensor of a version: where it is in the
// signature and how its samples are cut.
type source struct {
	input    bool
	index    int // in the signature's inputs or outputs
	name     string
	dtype    runtime.DataType
	last     int // length of the last axis: the values of one sample
	elements int // the first ones tracked
	spec     int // index of its element spec
	classes  int // index of its prediction spec, or -1
}

// tensorGauges are the drift children of one spec.
type tensorGauges struct {
	psi, ks, js, pValue prometheus.Gauge
	detected, samples   prometheus.Gauge
}

// sample is a request's sampled rows, copied off the request path: the
// raw bytes of each source's rows, concatenated.
type sample struct {
	data [][]byte
	at   time.Time
}

// tracker watches one loaded version for drift. offer copies sampled rows
// into a bounded queue on the request path; one goroutine, owned by the
// tracker and stopped by close, bins them into the windows and
// evaluates. Everything but the queue, the report and the snapshot
// requests belongs to that goroutine.
type tracker struct {
	log        *slog.Logger
	model      string
	version    int64
	cfg        repository.DriftConfig // with its defaults
	batched    bool
	sources    []source
	specs      []drift.Spec
	gauges     []tensorGauges
	dropped    prometheus.Counter
	statePath  string // where a built reference is saved; "" not saved
	builderSHA string // the model file's SHA-256, recorded in a saved reference
	refInfo    ReferenceInfo
	skipped    []string // default outputs that cannot be tracked

	// queue is bounded (Options.DriftQueue) and never waited on: a full
	// queue drops. A send takes the channel's own lock for an instant;
	// the hooks take none of their own.
	queue chan *sample
	// wake rouses the worker (capacity 1, never waited on by senders).
	// The worker drains the queue every drainEvery while samples come;
	// a sender wakes it only when it sleeps (idle) or the queue is half
	// full, so that a busy version costs one wake-up a period instead of
	// one a request (at c=1 a wake-up a request added 20 to 35 µs to the
	// p50 on 2 cores).
	wake      chan struct{}
	idle      atomic.Bool
	pool      sync.Pool // *sample
	snapshots chan chan []*drift.Window
	stop      chan struct{}
	done      chan struct{}
	report    atomic.Pointer[Report]
	// superseded is set while a newer instance of the version is loaded:
	// its gauges are the newer one's.
	superseded atomic.Bool
	droppedN   atomic.Int64
	processed  atomic.Int64
	// export, while a rollout judged from Prometheus runs, also counts
	// the outputs in its reference's bins (ExportDriftBins).
	export atomic.Pointer[binExport]

	// The worker's own.
	builder  *drift.Builder
	windows  []*drift.Window // nil until the reference is known
	pending  []int           // samples added per spec since its last evaluation
	due      []bool          // a chunk's worth pending: to evaluate
	evalMin  time.Duration   // least time between evaluations; ≤ 0: none
	lastEval time.Time
	results  []drift.Result
	scratch  []float32
}

// Report is a version's drift, as GET .../drift answers it.
type Report struct {
	Model         string        `json:"model"`
	Version       string        `json:"version"`
	Reference     ReferenceInfo `json:"reference"`
	Window        int           `json:"window"`
	WindowSeconds float64       `json:"window_seconds"`
	SampleRate    float64       `json:"sample_rate"`
	// Processed and Dropped count the sampled requests the worker has
	// taken, and those it dropped because its queue was full.
	Processed int64           `json:"processed"`
	Dropped   int64           `json:"dropped"`
	Updated   time.Time       `json:"updated"`
	Tensors   []TensorReport  `json:"tensors"`
	Decision  DecisionSummary `json:"decision"`
}

// ReferenceInfo says what a version's drift is measured against.
type ReferenceInfo struct {
	// Source is "first" (the first rows after ready), "file" or "state"
	// (a first reference saved earlier for the same model file).
	Source string `json:"source"`
	// Samples is the reference's size, or the rows it still needs while
	// Ready is false.
	Samples int64  `json:"samples"`
	Ready   bool   `json:"ready"`
	Path    string `json:"path,omitempty"`
}

// TensorReport is the drift of one watched tensor.
type TensorReport struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	drift.Result
}

// DecisionSummary states the decision rule's constants.
type DecisionSummary struct {
	Alpha      float64 `json:"alpha"`
	MinPSI     float64 `json:"min_psi"`
	MinSamples int     `json:"min_samples"`
}

func decisionSummary() DecisionSummary {
	return DecisionSummary{Alpha: drift.Alpha, MinPSI: drift.MinPSI, MinSamples: drift.MinSamples}
}

// newTracker checks a version's drift config against its signature and
// finds its reference, touching no series: a failed check leaves no
// trace.
func (m *Monitor) newTracker(info repository.VersionInfo) (*tracker, error) {
	t, err := newWatch(info, m.opts.DriftQueue)
	if err != nil {
		return nil, err
	}
	t.log = m.log.With("model", info.Model, "version", info.Version)
	t.evalMin = m.opts.EvaluateEvery
	if err := t.initReference(m.opts.StateDir, info.Path); err != nil {
		return nil, err
	}
	for _, name := range t.skipped {
		t.log.Warn("drift: output not watched: it is not numbers with a fixed last dimension", "output", name)
	}
	return t, nil
}

// startTracker resolves a tracker's gauges, resets them (an older
// instance of the version may have set them) and starts its worker.
func (m *Monitor) startTracker(t *tracker) {
	model, version := t.model, strconv.FormatInt(t.version, 10)
	for _, s := range t.specs {
		g := tensorGauges{
			psi:      m.driftScore.WithLabelValues(model, version, s.Kind, s.Name, "psi"),
			ks:       m.driftScore.WithLabelValues(model, version, s.Kind, s.Name, "ks"),
			js:       m.driftScore.WithLabelValues(model, version, s.Kind, s.Name, "js"),
			pValue:   m.driftScore.WithLabelValues(model, version, s.Kind, s.Name, "p_value"),
			detected: m.driftDetected.WithLabelValues(model, version, s.Kind, s.Name),
			samples:  m.driftSamples.WithLabelValues(model, version, s.Kind, s.Name),
		}
		g.psi.Set(0)
		g.ks.Set(0)
		g.js.Set(0)
		g.pValue.Set(1)
		g.detected.Set(0)
		g.samples.Set(0)
		t.gauges = append(t.gauges, g)
	}
	t.dropped = m.driftDropped.WithLabelValues(model, version)
	t.publish(time.Now())
	go t.run()
}

// deleteDriftSeries deletes the drift series of old's tensors that keep
// (the version's newest instance; nil: none) does not watch.
func (m *Monitor) deleteDriftSeries(old, keep *tracker) {
	model, version := old.model, strconv.FormatInt(old.version, 10)
	for _, s := range old.specs {
		if keep != nil && slices.ContainsFunc(keep.specs, func(k drift.Spec) bool { return k.Kind == s.Kind && k.Name == s.Name }) {
			continue
		}
		for _, stat := range []string{"psi", "ks", "js", "p_value"} {
			m.driftScore.DeleteLabelValues(model, version, s.Kind, s.Name, stat)
		}
		m.driftDetected.DeleteLabelValues(model, version, s.Kind, s.Name)
		m.driftSamples.DeleteLabelValues(model, version, s.Kind, s.Name)
	}
	if keep == nil {
		m.driftDropped.DeleteLabelValues(model, version)
	}
}

// newWatch checks a version's drift config against its signature and
// returns a tracker that has no worker, gauges or reference yet.
func newWatch(info repository.VersionInfo, queue int) (*tracker, error) {
	cfg := info.Drift.WithDefaults()
	t := &tracker{
		log:       slog.New(slog.DiscardHandler),
		model:     info.Model,
		version:   info.Version,
		cfg:       cfg,
		batched:   info.Batched,
		queue:     make(chan *sample, queue),
		wake:      make(chan struct{}, 1),
		snapshots: make(chan chan []*drift.Window),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	outputs := cfg.Outputs
	defaultOutputs := outputs == nil
	if outputs == nil {
		all := make([]string, len(info.Outputs))
		for i, o := range info.Outputs {
			all[i] = o.Name
		}
		outputs = &all
	}
	for _, w := range []struct {
		field string
		input bool
		names []string
		infos []runtime.TensorInfo
	}{{"inputs", true, cfg.Inputs, info.Inputs}, {"outputs", false, *outputs, info.Outputs}} {
		for _, name := range w.names {
			i := slices.IndexFunc(w.infos, func(t runtime.TensorInfo) bool { return t.Name == name })
			if i < 0 {
				return nil, fmt.Errorf("monitoring.drift.%s: %q is not one of the model's %s (%s)", w.field, name, w.field, tensorNames(w.infos))
			}
			if err := t.addSource(w.input, i, w.infos[i], cfg.MaxElements); err != nil {
				if !w.input && defaultOutputs {
					// Every output by default: those that cannot be
					// tracked are skipped, not an error.
					t.skipped = append(t.skipped, name)
					continue
				}
				return nil, fmt.Errorf("monitoring.drift.%s: %w", w.field, err)
			}
		}
	}
	if len(t.sources) == 0 {
		return nil, errors.New("monitoring.drift: no tensor to watch (inputs is empty and outputs is [])")
	}
	t.pool.New = func() any { return &sample{data: make([][]byte, len(t.sources))} }
	t.pending = make([]int, len(t.specs))
	t.due = make([]bool, len(t.specs))
	t.results = make([]drift.Result, len(t.specs))
	most := 0
	for _, src := range t.sources {
		most = max(most, src.elements)
	}
	t.scratch = make([]float32, 0, most)
	return t, nil
}

// ReferenceBuilder builds a reference from sample requests, offline:
// "infergate reference build".
type ReferenceBuilder struct {
	t *tracker
}

// NewReferenceBuilder returns a builder for a version's drift config
// that takes up to rows samples of each watched tensor.
func NewReferenceBuilder(info repository.VersionInfo, rows int) (*ReferenceBuilder, error) {
	if info.Drift == nil {
		return nil, fmt.Errorf("model %q has no monitoring.drift section in its %s", info.Model, repository.ConfigFile)
	}
	t, err := newWatch(info, 1)
	if err != nil {
		return nil, err
	}
	t.builder = drift.NewBuilder(t.specs, rows)
	return &ReferenceBuilder{t: t}, nil
}

// Add takes every row of a request's inputs and outputs.
func (b *ReferenceBuilder) Add(inputs, outputs []runtime.Tensor) {
	s := b.t.copySample(inputs, outputs, nil, 1)
	b.t.process(s)
}

// Build returns the reference.
func (b *ReferenceBuilder) Build(source string) *drift.Reference {
	ref := b.t.builder.Build()
	ref.Source = source
	return ref
}

func tensorNames(infos []runtime.TensorInfo) string {
	names := make([]string, len(infos))
	for i, t := range infos {
		names[i] = t.Name
	}
	return strings.Join(names, ", ")
}

// addSource adds a watched tensor, and its predicted class when it is an
// output of class scores ([N, C], C ≥ 2, floating point).
func (t *tracker) addSource(input bool, index int, info runtime.TensorInfo, maxElements int) error {
	if info.DataType == runtime.Bytes {
		return fmt.Errorf("%q is BYTES: drift needs numbers", info.Name)
	}
	last := 1
	rank := len(info.Shape)
	if rank > 1 || (rank == 1 && !t.batched) {
		last = int(info.Shape[rank-1])
		if last < 1 {
			return fmt.Errorf("%q has a variable last dimension (shape %v): drift needs a fixed one (pin it with dims in the config)", info.Name, info.Shape)
		}
	}
	kind := drift.KindOutput
	if input {
		kind = drift.KindInput
	}
	src := source{input: input, index: index, name: info.Name, dtype: info.DataType, last: last, elements: min(last, maxElements), spec: len(t.specs), classes: -1}
	t.specs = append(t.specs, drift.Spec{Kind: kind, Name: info.Name, Elements: src.elements})
	float := info.DataType == runtime.FP32 || info.DataType == runtime.FP64 || info.DataType == runtime.FP16
	if !input && float && rank == 2 && last >= 2 {
		src.classes = len(t.specs)
		t.specs = append(t.specs, drift.Spec{Kind: drift.KindPrediction, Name: info.Name, Classes: last})
	}
	t.sources = append(t.sources, src)
	return nil
}

// initReference reads the reference file, reuses a saved first
// reference of the same model file, or starts building one.
func (t *tracker) initReference(stateDir, modelPath string) error {
	if f := t.cfg.Reference.File; f != "" {
		path := filepath.Join(filepath.Dir(modelPath), f)
		ref, err := drift.ReadReference(path)
		if err == nil {
			err = ref.Check(t.specs)
		}
		if err != nil {
			return fmt.Errorf("monitoring.drift.reference.file: %w", err)
		}
		t.refInfo = ReferenceInfo{Source: "file", Samples: ref.Samples, Ready: true, Path: path}
		t.useReference(ref)
		return nil
	}
	t.refInfo = ReferenceInfo{Source: "first", Samples: int64(t.cfg.Reference.First)}
	if stateDir != "" {
		sum, err := fileSHA256(modelPath)
		if err != nil {
			return fmt.Errorf("monitoring.state_dir: hash the model file: %w", err)
		}
		t.statePath = filepath.Join(stateDir, t.model, strconv.FormatInt(t.version, 10), "reference-"+sum[:16]+".json")
		if ref, err := drift.ReadReference(t.statePath); err == nil && ref.ModelSHA256 == sum && ref.Check(t.specs) == nil {
			t.refInfo = ReferenceInfo{Source: "state", Samples: ref.Samples, Ready: true, Path: t.statePath}
			t.useReference(ref)
			t.statePath = ""
			t.log.Info("drift reference reused", "path", t.refInfo.Path, "samples", ref.Samples)
			return nil
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.log.Warn("drift reference in the state directory is unusable: building a new one", "path", t.statePath, "err", err)
		}
		t.refInfo.Path = t.statePath
		t.builderSHA = sum
	}
	t.builder = drift.NewBuilder(t.specs, t.cfg.Reference.First)
	return nil
}

func (t *tracker) useReference(ref *drift.Reference) {
	t.windows = make([]*drift.Window, len(t.specs))
	for i, s := range t.specs {
		t.windows[i] = drift.NewWindow(ref.Tensor(s.Kind, s.Name), t.cfg.Window, time.Duration(t.cfg.WindowSeconds*float64(time.Second)))
	}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// close stops the worker and waits for it.
func (t *tracker) close() {
	close(t.stop)
	<-t.done
}

// offer copies the sampled rows of a request into the queue, or counts
// them dropped when the queue is full. It runs on the request path: no
// lock, no wait, and one copy per watched tensor when every row is
// sampled.
func (t *tracker) offer(inputs, outputs []runtime.Tensor) {
	rows := 1
	if t.batched && len(inputs) > 0 && len(inputs[0].Shape) > 0 {
		rows = int(inputs[0].Shape[0])
	}
	if rows < 1 {
		return
	}
	rate := *t.cfg.SampleRate
	var picked []int  // nil: every row
	var stack [64]int // picked rows without an allocation, up to 64
	if rate < 1 {
		picked = stack[:0]
		for r := range rows {
			if rand.Float64() < rate {
				picked = append(picked, r)
			}
		}
		if len(picked) == 0 {
			return
		}
	}
	if len(t.queue) == cap(t.queue) {
		// Full: drop before copying. (A race with the worker only drops
		// a sample that might have fitted.)
		t.dropped.Inc()
		t.droppedN.Add(1)
		return
	}
	s := t.copySample(inputs, outputs, picked, rows)
	select {
	case t.queue <- s:
	default:
		t.pool.Put(s)
		t.dropped.Inc()
		t.droppedN.Add(1)
		return
	}
	if t.idle.Load() || len(t.queue) >= cap(t.queue)/2 {
		t.idle.Store(false)
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// drainEvery is how often the worker drains its queue while samples come.
const drainEvery = 5 * time.Millisecond

// copySample copies the picked rows (nil: all) of every source.
func (t *tracker) copySample(inputs, outputs []runtime.Tensor, picked []int, rows int) *sample {
	s := t.pool.Get().(*sample)
	for i, src := range t.sources {
		tensors := outputs
		if src.input {
			tensors = inputs
		}
		buf := s.data[i][:0]
		if src.index < len(tensors) {
			data := tensors[src.index].Data
			if picked == nil {
				buf = append(buf, data...)
			} else {
				per := len(data) / rows
				for _, r := range picked {
					buf = append(buf, data[r*per:(r+1)*per]...)
				}
			}
		}
		s.data[i] = buf
	}
	s.at = time.Now()
	return s
}

// run is the worker.
func (t *tracker) run() {
	defer close(t.done)
	var expire <-chan time.Time
	if t.cfg.WindowSeconds > 0 {
		// Ten times a window, so that an idle version's window still
		// ages out.
		tk := time.NewTicker(max(time.Duration(t.cfg.WindowSeconds*float64(time.Second)/10), 100*time.Millisecond))
		defer tk.Stop()
		expire = tk.C
	}
	// held fires when evaluations were held back by evalMin.
	held := time.NewTimer(time.Hour)
	held.Stop()
	defer held.Stop()
	armed := false
	// drain processes the queued samples, at most a queue's worth so that
	// stop, snapshots and the timers get their turn when samples come
	// faster than they are processed; it reports whether there was any.
	drain := func() bool {
		got := false
		for range cap(t.queue) {
			var s *sample
			select {
			case s = <-t.queue:
			default:
				return got
			}
			got = true
			t.process(s)
			at := s.at
			t.pool.Put(s) // s is another request's from here on
			if t.builder != nil && t.builder.Full() {
				t.finishReference()
				t.publish(at)
			}
			if t.evaluateDue(at) {
				t.publish(at)
			} else if !armed && slices.Contains(t.due, true) {
				held.Reset(t.evalMin - at.Sub(t.lastEval))
				armed = true
			}
			t.processed.Add(1)
		}
		return got
	}
	// tick drains while samples come; the worker sleeps (idle) when a
	// drain finds none.
	tick := time.NewTimer(drainEvery)
	defer tick.Stop()
	ticking := true
	for {
		select {
		case <-t.stop:
			return
		case <-t.wake:
			drain()
			if !ticking {
				tick.Reset(drainEvery)
				ticking = true
			}
		case <-tick.C:
			if drain() {
				tick.Reset(drainEvery)
				continue
			}
			ticking = false
			t.idle.Store(true)
			// A sample queued before idle was set woke no one.
			if len(t.queue) > 0 {
				t.idle.Store(false)
				drain()
				tick.Reset(drainEvery)
				ticking = true
			}
		case now := <-held.C:
			armed = false
			if t.evaluateDue(now) {
				t.publish(now)
			}
		case now := <-expire:
			if t.windows != nil {
				for i, w := range t.windows {
					w.Expire(now)
					t.due[i] = true
				}
				t.lastEval = time.Time{}
				t.evaluateDue(now)
				t.publish(now)
			}
		case reply := <-t.snapshots:
			var out []*drift.Window
			if t.windows != nil {
				out = make([]*drift.Window, len(t.windows))
				for i, w := range t.windows {
					out[i] = w.Clone()
				}
			}
			reply <- out
		}
	}
}

// process bins a sample's vectors and marks due the specs whose window
// has taken a chunk's worth since their last evaluation.
func (t *tracker) process(s *sample) {
	chunk := max(1, t.cfg.Window/drift.Chunks)
	for i, src := range t.sources {
		size := src.dtype.Size()
		stride := src.last * size
		data := s.data[i]
		for off := 0; off+stride <= len(data); off += stride {
			vec := data[off : off+stride]
			t.scratch = t.scratch[:src.elements]
			if src.dtype == runtime.FP32 { // the common case, without the type switch
				for e := range t.scratch {
					t.scratch[e] = math.Float32frombits(binary.LittleEndian.Uint32(vec[e*4:]))
				}
			} else {
				for e := range t.scratch {
					t.scratch[e] = value(src.dtype, vec[e*size:])
				}
			}
			class := -1
			if src.classes >= 0 {
				class = argmax(src.dtype, vec, src.last)
			}
			if exp := t.export.Load(); exp != nil {
				exp.add(i, t.scratch, class)
			}
			if t.builder != nil {
				t.builder.Add(src.spec, t.scratch)
				if class >= 0 {
					t.builder.AddClass(src.classes, class)
				}
				continue
			}
			t.windows[src.spec].Add(t.scratch, s.at)
			t.pending[src.spec]++
			if class >= 0 {
				t.windows[src.classes].AddClass(class, s.at)
				t.pending[src.classes]++
			}
		}
	}
	for i := range t.pending {
		if t.windows != nil && t.pending[i] >= chunk {
			t.due[i] = true
		}
	}
}

// evaluateDue evaluates the due specs unless the last evaluation was
// less than evalMin ago: a window of 1000 rows under 15 k rows/s turns
// over 15 times a second, and comparing 256 elements costs far more than
// binning a row. It reports whether it evaluated.
func (t *tracker) evaluateDue(now time.Time) bool {
	if !slices.Contains(t.due, true) || (t.evalMin > 0 && now.Sub(t.lastEval) < t.evalMin) {
		return false
	}
	for i, due := range t.due {
		if due {
			t.windows[i].Expire(now)
			t.evaluate(i)
		}
	}
	t.lastEval = now
	return true
}

// finishReference builds the reference from the first rows, and saves it
// in the state directory when there is one.
func (t *tracker) finishReference() {
	ref := t.builder.Build()
	t.builder = nil
	ref.Source = fmt.Sprintf("first %d sampled rows of %s version %d", t.cfg.Reference.First, t.model, t.version)
	ref.ModelSHA256 = t.builderSHA
	t.refInfo.Samples, t.refInfo.Ready = ref.Samples, true
	t.useReference(ref)
	t.log.Info("drift reference built from the first rows", "samples", ref.Samples)
	if t.statePath == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(t.statePath), 0o755); err != nil {
		t.log.Error("drift reference not saved", "path", t.statePath, "err", err)
		return
	}
	if err := ref.WriteFile(t.statePath); err != nil {
		t.log.Error("drift reference not saved", "path", t.statePath, "err", err)
		return
	}
	t.log.Info("drift reference saved", "path", t.statePath)
}

// evaluate compares spec i's window with the reference and sets its
// gauges.
func (t *tracker) evaluate(i int) {
	t.pending[i], t.due[i] = 0, false
	r := t.windows[i].Compare()
	t.results[i] = r
	if t.superseded.Load() {
		return
	}
	g := t.gauges[i]
	g.psi.Set(r.PSI)
	g.ks.Set(r.KS)
	g.js.Set(r.JS)
	g.pValue.Set(r.PValue)
	g.samples.Set(float64(r.Samples))
	if r.Detected {
		g.detected.Set(1)
	} else {
		g.detected.Set(0)
	}
}

// publish stores the report that DriftReport answers.
func (t *tracker) publish(now time.Time) {
	rep := &Report{
		Model:         t.model,
		Version:       strconv.FormatInt(t.version, 10),
		Reference:     t.refInfo,
		Window:        t.cfg.Window,
		WindowSeconds: t.cfg.WindowSeconds,
		SampleRate:    *t.cfg.SampleRate,
		Updated:       now.UTC(),
		Tensors:       make([]TensorReport, len(t.specs)),
		Decision:      decisionSummary(),
	}
	for i, s := range t.specs {
		rep.Tensors[i] = TensorReport{Kind: s.Kind, Name: s.Name, Result: t.results[i]}
	}
	t.report.Store(rep)
}

// currentReport returns the last report with the live counters.
func (t *tracker) currentReport() *Report {
	rep := *t.report.Load()
	rep.Processed, rep.Dropped = t.processed.Load(), t.droppedN.Load()
	return &rep
}

// snapshot returns copies of the version's windows, nil while its
// reference is being built.
func (t *tracker) snapshot(ctx context.Context) ([]*drift.Window, error) {
	reply := make(chan []*drift.Window, 1)
	select {
	case t.snapshots <- reply:
	case <-t.done:
		return nil, errUnloaded
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return <-reply, nil
}

// value decodes element 0 of b as a float32.
func value(dt runtime.DataType, b []byte) float32 { return float32(dt.Float64(b)) }

// argmax returns the index of the largest of n values in vec (the first
// of equal ones), or -1 when all are NaN.
func argmax(dt runtime.DataType, vec []byte, n int) int {
	size := dt.Size()
	best, at := float32(math.Inf(-1)), -1
	for i := range n {
		if v := value(dt, vec[i*size:]); v > best || (at < 0 && v == best) {
			best, at = v, i
		}
	}
	return at
}
