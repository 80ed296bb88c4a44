package batching_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/infergate/infergate/batching"
	"github.com/infergate/infergate/runtime"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// TestBatchedEqualsAlone runs many concurrent random requests of 1 to 4
// rows through the dynamic batcher on the real MLP and checks that every
// request's output equals the output of running it alone, bit for bit
// (ONNX Runtime's CPU matrix product reduces each row in the same order
// whatever the row count).
func TestBatchedEqualsAlone(t *testing.T) {
	env, err := runtime.Open(runtime.Options{LibraryPath: runtimetest.Library(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	sess, err := env.NewSession(filepath.Join(runtimetest.Models(t), "mlp", "1", "model.onnx"), runtime.SessionOptions{Instances: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	obs := &batchCounter{}
	s, err := batching.NewScheduler(sess, batching.Options{MaxBatchSize: 16, Instances: 2, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const requests = 400
	rng := rand.New(rand.NewPCG(1, 2))
	reqs := make([]runtime.Tensor, requests)
	want := make([][]byte, requests)
	for i := range reqs {
		rows := 1 + rng.IntN(4)
		data := make([]byte, 4*16*rows)
		for j := 0; j < len(data); j += 4 {
			binary.LittleEndian.PutUint32(data[j:], math.Float32bits(rng.Float32()*4-2))
		}
		reqs[i] = runtime.Tensor{Name: "input", DataType: runtime.FP32, Shape: []int64{int64(rows), 16}, Data: data}
		out, err := sess.Run(context.Background(), []runtime.Tensor{reqs[i]})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = out[0].Data
	}
	var wg sync.WaitGroup
	errs := make(chan error, requests)
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < requests; i += 32 {
				out, err := s.Infer(context.Background(), batching.Request{Inputs: []runtime.Tensor{reqs[i]}})
				switch {
				case err != nil:
					errs <- err
				case out[0].Shape[0] != reqs[i].Shape[0] || string(out[0].Data) != string(want[i]):
					errs <- fmt.Errorf("request %d (%d rows): batched output differs from running it alone", i, reqs[i].Shape[0])
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d requests ran in %d batches (largest %d requests)", requests, obs.batches, obs.largest)
	if obs.largest < 2 {
		t.Log("no batch held more than one request: the machine ran them as fast as they came")
	}
}

type batchCounter struct {
	mu               sync.Mutex
	batches, largest int
	exact            bool
}

func (o *batchCounter) QueueDepth(int)               {}
func (o *batchCounter) Rejected(string)              {}
func (o *batchCounter) Dispatched(time.Duration)     {}
func (o *batchCounter) CacheLookup(bool)             {}
func (o *batchCounter) Coalesced()                   {}
func (o *batchCounter) Inflight(int)                 {}
func (o *batchCounter) Served(_, _ []runtime.Tensor) {}
func (o *batchCounter) BatchDone(rows, requests int, _ time.Duration, _ error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.batches++
	o.largest = max(o.largest, requests)
}
