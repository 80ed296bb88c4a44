package router

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infergate/infergate/batching"
	"github.com/infergate/infergate/runtime"
)

// The shadow pool's bounds: ShadowWorkers run shadow requests, and at
// most ShadowQueue wait; past that a shadow is dropped and counted.
const (
	ShadowWorkers = 2
	ShadowQueue   = 16
	// ShadowTimeout bounds a shadow execution, its load on demand
	// included.
	ShadowTimeout = 10 * time.Second
)

// The results of a shadow request, as infergate_shadow_requests_total
// counts them.
const (
	ShadowCompared = "compared"
	ShadowDropped  = "dropped"
	ShadowFailed   = "failed"
)

// shadowJob is a request mirrored to a shadow version, with copies of its
// inputs and of the primary's outputs: the originals alias the request's
// body and the batch's buffers, which are gone once the handler returns.
type shadowJob struct {
	model   string
	target  Target
	primary int64 // the version that answered the client
	inputs  []runtime.Tensor
	outputs []runtime.Tensor
}

// shadows is the router's bounded shadow pool.
type shadows struct {
	r       *Router
	queue   chan *shadowJob // bounded: ShadowQueue; full drops
	dropped sync.Map        // model → *atomic.Int64, reported by the workers
}

func (r *Router) startShadows() {
	r.shadow = &shadows{r: r, queue: make(chan *shadowJob, ShadowQueue)}
	for range ShadowWorkers {
		r.wg.Add(1)
		go r.shadow.work()
	}
}

// Shadow mirrors a request that the primary answered to the document's
// shadow version, with the share the document asks for. It copies the
// inputs and the primary's outputs and never waits: when the pool is
// full the shadow is dropped and counted. Call it after a successful
// execution, before the request's buffers are released.
func (d *Decision) Shadow(inputs, outputs []runtime.Tensor) {
	p := d.pol
	if p == nil || p.doc == nil || p.doc.Shadow == nil || d.r.shadow == nil {
		return
	}
	s := p.doc.Shadow
	if rand.Float64()*100 >= s.Percent {
		return
	}
	if d.Version != nil && s.Version == d.Version.Number {
		return // the shadow answered the client itself
	}
	pool := d.r.shadow
	if len(pool.queue) == cap(pool.queue) {
		pool.drop(d.model)
		return
	}
	job := &shadowJob{model: d.model, target: Target{Version: s.Version, Label: s.Label}, inputs: cloneTensors(inputs), outputs: cloneTensors(outputs)}
	if d.Version != nil {
		job.primary = d.Version.Number
	}
	select {
	case pool.queue <- job:
	default:
		pool.drop(d.model)
	}
}

func (s *shadows) drop(model string) {
	c, ok := s.dropped.Load(model)
	if !ok {
		c, _ = s.dropped.LoadOrStore(model, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

// work runs shadow jobs until the router closes, and reports the drops
// counted on the request path at least every second.
func (s *shadows) work() {
	defer s.r.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.r.stop:
			s.flushDrops()
			return
		case <-t.C:
			s.flushDrops()
		case job := <-s.queue:
			s.flushDrops()
			s.run(job)
		}
	}
}

// flushDrops reports the drops counted on the request path.
func (s *shadows) flushDrops() {
	s.dropped.Range(func(k, v any) bool {
		if n := v.(*atomic.Int64).Swap(0); n > 0 {
			s.r.obs.ObserveShadowDropped(k.(string), n)
		}
		return true
	})
}

func (s *shadows) run(job *shadowJob) {
	ctx, cancel := context.WithTimeout(context.Background(), ShadowTimeout)
	defer cancel()
	v, err := s.r.repo.Acquire(ctx, job.model, job.target.Version, job.target.Label)
	if err != nil {
		n := job.target.Version
		if m, merr := s.r.repo.Model(job.model); merr == nil {
			if lv, lerr := m.Lookup(job.target.Version, job.target.Label); lerr == nil {
				n = lv.Number
			}
		}
		s.r.obs.ObserveShadow(job.model, n, ShadowFailed, 0, 0)
		return
	}
	defer v.Release()
	outs, err := v.Executor.Infer(ctx, batching.Request{Inputs: job.inputs}, nil)
	if err != nil {
		s.r.log.Debug("shadow request failed", "model", job.model, "version", v.Number, "err", err)
		s.r.obs.ObserveShadow(job.model, v.Number, ShadowFailed, 0, 0)
		return
	}
	diff, disagree, ok := compareOutputs(job.outputs, outs)
	if !ok {
		// Other names, types or shapes: the versions are not comparable.
		s.r.obs.ObserveShadow(job.model, v.Number, ShadowFailed, 0, 0)
		return
	}
	s.r.obs.ObserveShadow(job.model, v.Number, ShadowCompared, diff, disagree)
}

// compareOutputs returns the largest absolute difference between the
// primary's numeric outputs and the shadow's outputs of the same name and
// shape (NaN against NaN is equal; against a number, +Inf), and for
// [N, C] outputs the rows whose argmax differs. ok is false when some
// output has no counterpart of the same name, type and shape.
func compareOutputs(primary, shadow []runtime.Tensor) (maxDiff float64, disagreements int, ok bool) {
	for _, p := range primary {
		i := slices.IndexFunc(shadow, func(t runtime.Tensor) bool { return t.Name == p.Name })
		if i < 0 {
			return 0, 0, false
		}
		q := shadow[i]
		size := p.DataType.Size()
		if p.DataType != q.DataType || !slices.Equal(p.Shape, q.Shape) || len(p.Data) != len(q.Data) {
			return 0, 0, false
		}
		if size == 0 {
			continue // BYTES: no difference to measure
		}
		n := len(p.Data) / size
		for e := range n {
			a, b := p.DataType.Float64(p.Data[e*size:]), q.DataType.Float64(q.Data[e*size:])
			d := math.Abs(a - b)
			switch {
			case math.IsNaN(a) && math.IsNaN(b):
				d = 0
			case math.IsNaN(d):
				d = math.Inf(1)
			}
			maxDiff = max(maxDiff, d)
		}
		if len(p.Shape) == 2 && p.Shape[1] >= 2 {
			rows, cols := int(p.Shape[0]), int(p.Shape[1])
			for r := range rows {
				if argmax(p, r*cols, cols) != argmax(q, r*cols, cols) {
					disagreements++
				}
			}
		}
	}
	return maxDiff, disagreements, true
}

func argmax(t runtime.Tensor, off, n int) int {
	size := t.DataType.Size()
	best, at := math.Inf(-1), -1
	for i := range n {
		if v := t.DataType.Float64(t.Data[(off+i)*size:]); v > best || at < 0 {
			best, at = v, i
		}
	}
	return at
}

func cloneTensors(in []runtime.Tensor) []runtime.Tensor {
	out := make([]runtime.Tensor, len(in))
	for i, t := range in {
		out[i] = runtime.Tensor{Name: t.Name, DataType: t.DataType, Shape: slices.Clone(t.Shape), Data: slices.Clone(t.Data), Strings: slices.Clone(t.Strings)}
	}
	return out
}
