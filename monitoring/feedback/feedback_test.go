package feedback

import (
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/infergate/infergate/errdefs"
	irt "github.com/infergate/infergate/runtime"
)

func fp32(shape []int64, vals ...float32) irt.Tensor {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return irt.Tensor{Name: "out", DataType: irt.FP32, Shape: shape, Data: b}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestPredict(t *testing.T) {
	tests := []struct {
		name    string
		t       irt.Tensor
		want    []float64
		classes bool
	}{
		{"[N, C]: argmax of each row", fp32([]int64{2, 3}, 0.1, 0.7, 0.2, 0.9, 0.05, 0.05), []float64{1, 0}, true},
		{"[N]: the value of each row", fp32([]int64{3}, 1.5, 2.5, 3.5), []float64{1.5, 2.5, 3.5}, false},
		{"[N, 1]: the value", fp32([]int64{2, 1}, 0.25, 0.75), []float64{0.25, 0.75}, false},
		{"[N, 2, 2]: the first value of each row", fp32([]int64{2, 2, 2}, 1, 2, 3, 4, 5, 6, 7, 8), []float64{1, 5}, false},
		{"scalar", fp32(nil, 4), []float64{4}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, classes, ok := predict(&tt.t)
			if !ok || classes != tt.classes || len(got) != len(tt.want) {
				t.Fatalf("got %v %v %v", got, classes, ok)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
	if _, _, ok := predict(&irt.Tensor{DataType: irt.Bytes, Strings: []string{"a"}}); ok {
		t.Error("a BYTES output has no prediction")
	}
}

// TestAccuracyAndMAE: exact figures on known data, replacements, the
// window, unknown and expired ids, bad answers.
func TestAccuracyAndMAE(t *testing.T) {
	c := &clock{time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	s := New(Options{Now: c.now, TTL: time.Hour, Window: 10 * time.Minute})
	// Version 1 classifies: 10 one-row requests predicting class i%3.
	for i := range 10 {
		row := []float32{0, 0, 0}
		row[i%3] = 1
		s.Record("m", 1, "c"+strconv.Itoa(i), []irt.Tensor{fp32([]int64{1, 3}, row...)})
	}
	// Version 2 regresses: one 4-row request predicting 1, 2, 3, 4.
	s.Record("m", 2, "r", []irt.Tensor{fp32([]int64{4}, 1, 2, 3, 4)})
	// Labels: the first 7 right, 3 wrong.
	for i := range 10 {
		label := int64(i % 3)
		if i >= 7 {
			label = (label + 1) % 3
		}
		if _, err := s.Give("m", "c"+strconv.Itoa(i), Answer{Labels: []int64{label}}); err != nil {
			t.Fatal(err)
		}
	}
	if l, cr, _, _ := s.Window("m", 1); l != 10 || cr != 7 {
		t.Fatalf("window: %d of %d correct, want 7 of 10", cr, l)
	}
	// A replacement: request c9 was right after all.
	g, err := s.Give("m", "c9", Answer{Labels: []int64{0}})
	if err != nil || !g.Replaced || *g.Correct != 1 {
		t.Fatalf("replacement: %+v %v", g, err)
	}
	if l, cr := s.Counts("m", 1); l != 10 || cr != 8 {
		t.Fatalf("counts after the replacement: %d of %d, want 8 of 10", cr, l)
	}
	// Values for the 4 rows: errors 0.5, 0, 1, 2 → MAE 0.875.
	g, err = s.Give("m", "r", Answer{Values: []float64{1.5, 2, 4, 6}})
	if err != nil || g.Rows != 4 || *g.AbsError != 0.875 {
		t.Fatalf("values: %+v %v", g, err)
	}
	want := `
# HELP infergate_feedback_accuracy Correct labels of the labels given over the feedback window (the last answer of each request).
# TYPE infergate_feedback_accuracy gauge
infergate_feedback_accuracy{model="m",version="1"} 0.8
# HELP infergate_feedback_mae Mean absolute error of the values given over the feedback window (the last answer of each request).
# TYPE infergate_feedback_mae gauge
infergate_feedback_mae{model="m",version="2"} 0.875
`
	if err := testutil.CollectAndCompare(s, strings.NewReader(want), "infergate_feedback_accuracy", "infergate_feedback_mae"); err != nil {
		t.Error(err)
	}
	want = `
# HELP infergate_feedback_correct_total Feedback labels that matched the prediction (rows); a replacement counts again.
# TYPE infergate_feedback_correct_total counter
infergate_feedback_correct_total{model="m",version="1"} 8
infergate_feedback_correct_total{model="m",version="2"} 0
# HELP infergate_feedback_total Feedback answers taken (rows), by kind (label or value); a replacement counts again.
# TYPE infergate_feedback_total counter
infergate_feedback_total{kind="label",model="m",version="1"} 11
infergate_feedback_total{kind="label",model="m",version="2"} 0
infergate_feedback_total{kind="value",model="m",version="1"} 0
infergate_feedback_total{kind="value",model="m",version="2"} 4
`
	if err := testutil.CollectAndCompare(s, strings.NewReader(want), "infergate_feedback_total", "infergate_feedback_correct_total"); err != nil {
		t.Error(err)
	}
	// One value for all rows.
	if g, err := s.Give("m", "r", Answer{Values: []float64{2}}); err != nil || *g.AbsError != 1 {
		t.Fatalf("one value for 4 rows: %+v %v", g, err)
	}
	// Past the window the gauges have nothing; the counts stay.
	c.t = c.t.Add(11 * time.Minute)
	if l, _, v, _ := s.Window("m", 1); l != 0 || v != 0 {
		t.Errorf("window after 11 minutes: %d labels", l)
	}
	if l, cr := s.Counts("m", 1); l != 10 || cr != 8 {
		t.Errorf("counts after the window: %d of %d", cr, l)
	}
	bad := []struct {
		name string
		id   string
		a    Answer
		kind errdefs.Kind
		msg  string
	}{
		{"unknown id", "nope", Answer{Labels: []int64{1}}, errdefs.NotFound, `unknown request id "nope"`},
		{"neither", "c1", Answer{}, errdefs.Invalid, `give "label" or "value"`},
		{"both", "c1", Answer{Labels: []int64{1}, Values: []float64{1}}, errdefs.Invalid, `give "label" or "value"`},
		{"wrong count", "r", Answer{Values: []float64{1, 2}}, errdefs.Invalid, "the request had 4 rows"},
		{"not finite", "r", Answer{Values: []float64{math.Inf(1)}}, errdefs.Invalid, "finite"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := s.Give("m", b.id, b.a)
			if errdefs.KindOf(err) != b.kind || !strings.Contains(err.Error(), b.msg) {
				t.Errorf("got %v (kind %v), want %v containing %q", err, errdefs.KindOf(err), b.kind, b.msg)
			}
		})
	}
	// Past the TTL an id is unknown.
	c.t = c.t.Add(time.Hour)
	if _, err := s.Give("m", "c1", Answer{Labels: []int64{1}}); !errors.Is(err, ErrUnknownID) {
		t.Errorf("after the TTL: %v", err)
	}
	var nilStore *Store
	nilStore.Record("m", 1, "x", nil)
	if _, err := nilStore.Give("m", "x", Answer{Labels: []int64{1}}); !IsUnknown(err) {
		t.Error("a nil store knows no id")
	}
}

// TestMemoryBound: a million ids keep the store at max_ids and its
// memory bounded.
func TestMemoryBound(t *testing.T) {
	s := New(Options{MaxIDs: 10_000})
	out := []irt.Tensor{fp32([]int64{1, 2}, 0.3, 0.7)}
	var before, after runtime.MemStats
	for i := range 20_000 {
		s.Record("m", 1, strconv.Itoa(i), out)
	}
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 1_000_000 {
		s.Record("m", 1, "id-"+strconv.Itoa(i), out)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if s.Len() != 10_000 {
		t.Fatalf("%d ids remembered, want max_ids 10000", s.Len())
	}
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("a million ids at max_ids 10000: %d remembered, heap in use %d → %d bytes", s.Len(), before.HeapInuse, after.HeapInuse)
	// The index is a map that keys keep leaving: left alone it grows
	// with its tombstones (by 1 MB here over a million ids, 1.7 MB over
	// three, as the soak's 16 shards grew by 12 MB in 10 minutes). Rebuilt,
	// it stays the size the first 20000 gave it.
	if grew > 256<<10 {
		t.Errorf("the heap grew by %d bytes over a million ids at a bound of 10000", grew)
	}
	if _, err := s.Give("m", "id-999999", Answer{Labels: []int64{1}}); err != nil {
		t.Errorf("the newest id: %v", err)
	}
	if _, err := s.Give("m", "id-0", Answer{Labels: []int64{1}}); !IsUnknown(err) {
		t.Errorf("the oldest id was pushed out: %v", err)
	}

	// A store of the default size is sharded: each shard keeps its 16th.
	s = New(Options{})
	for i := range 3 * DefaultMaxIDs {
		s.Record("m", 1, "id-"+strconv.Itoa(i), out)
	}
	if s.Len() != DefaultMaxIDs || len(s.shards) != shards {
		t.Fatalf("%d ids remembered in %d shards, want max_ids %d in %d", s.Len(), len(s.shards), DefaultMaxIDs, shards)
	}
	if _, err := s.Give("m", "id-"+strconv.Itoa(3*DefaultMaxIDs-1), Answer{Labels: []int64{1}}); err != nil {
		t.Errorf("the newest id: %v", err)
	}
	if _, err := s.Give("m", "id-0", Answer{Labels: []int64{1}}); !IsUnknown(err) {
		t.Errorf("the oldest id was pushed out: %v", err)
	}
}

func BenchmarkRecord(b *testing.B) {
	s := New(Options{})
	out := []irt.Tensor{fp32([]int64{1, 10}, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)}
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = strconv.FormatUint(uint64(i)*2654435761, 16)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Record("m", 1, ids[i&(1<<16-1)], out)
	}
}

// BenchmarkRecordFull is Record as a busy server makes it: the store
// full at its default bounds, every request a new id (so each one pushes
// out the oldest), one-row requests of 10 classes, from one goroutine and
// from 64 on the machine's CPUs.
//
//	go test -run '^$' -bench RecordFull -benchmem ./monitoring/feedback/
func BenchmarkRecordFull(b *testing.B) {
	out := []irt.Tensor{fp32([]int64{1, 10}, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)}
	ids := make([]string, 1<<18) // more than DefaultMaxIDs: every id is new when it comes round again
	for i := range ids {
		ids[i] = "4f1c2e8a-" + strconv.FormatUint(uint64(i)*2654435761, 16)
	}
	fill := func() *Store {
		s := New(Options{})
		for _, id := range ids {
			s.Record("m", 1, id, out)
		}
		return s
	}
	b.Run("sequential", func(b *testing.B) {
		s := fill()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			s.Record("m", 1, ids[i&(len(ids)-1)], out)
		}
	})
	b.Run("parallel-64", func(b *testing.B) {
		s := fill()
		var next atomic.Uint64
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s.Record("m", 1, ids[next.Add(1)&uint64(len(ids)-1)], out)
			}
		})
	})
}

// TestMaxRows: large requests are bounded by rows, not only by count.
func TestMaxRows(t *testing.T) {
	s := New(Options{MaxIDs: 1000, MaxRows: 100})
	big := make([]float32, 40)
	for i := range 10 {
		s.Record("m", 1, strconv.Itoa(i), []irt.Tensor{fp32([]int64{40}, big...)})
	}
	if s.Len() != 2 || s.rowsHeld() != 80 {
		t.Fatalf("%d requests, %d rows remembered; want the newest 2, 80 rows", s.Len(), s.rowsHeld())
	}
	s.Record("m", 1, "9", []irt.Tensor{fp32([]int64{1}, 1)}) // replaced by a smaller one
	if s.rowsHeld() != 41 {
		t.Fatalf("%d rows after a replacement, want 41", s.rowsHeld())
	}
	if _, err := s.Give("m", "9", Answer{Values: []float64{1}}); err != nil {
		t.Fatal(err)
	}
	s.Record("m", 1, "nan", []irt.Tensor{fp32([]int64{1}, float32(math.NaN()))})
	if _, err := s.Give("m", "nan", Answer{Values: []float64{1}}); !IsUnknown(err) {
		t.Errorf("a NaN prediction was remembered: %v", err)
	}
}
