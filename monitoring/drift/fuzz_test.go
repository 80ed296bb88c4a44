package drift

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

// FuzzParseReference checks that ParseReference never panics, that what it
// accepts survives a round trip through its own JSON form, and that a
// window over any accepted tensor can take samples and compare.
func FuzzParseReference(f *testing.F) {
	f.Add([]byte(validDocument))
	built := NewBuilder([]Spec{{Kind: KindOutput, Name: "z", Elements: 2}, {Kind: KindPrediction, Name: "c", Classes: 3}}, 20)
	for i := range 20 {
		built.Add(0, []float32{float32(i), float32(i % 2)})
		built.AddClass(1, i%3)
	}
	doc, err := json.Marshal(built.Build())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc)
	for _, bad := range []string{
		``,
		`null`,
		`{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "input", "name": "x", "elements": [{"edges": [1, 0], "counts": [0, 0, 0]}]}]}`,
		`{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "input", "name": "x", "elements": [{"edges": [0], "counts": [0]}]}]}`,
		`{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "prediction", "name": "y", "classes": [1e400]}]}`,
		`{"format": "infergate-drift-reference/v1", "extra": true}`,
		`{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "input", "name": "x", "elements": [null]}]}`,
		`{"format": "infergate-drift-reference/v1", "samples": 99999999999999999999}`,
	} {
		f.Add([]byte(bad))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReference(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("accepted reference does not marshal: %v", err)
		}
		r2, err := ParseReference(again)
		if err != nil {
			t.Fatalf("accepted reference does not parse again: %v\n%s", err, again)
		}
		if !equalReferences(r, r2) {
			t.Fatalf("round trip: got %+v, want %+v", r2, r)
		}
		for i := range r.Tensors {
			tr := &r.Tensors[i]
			if len(tr.Elements)*(Bins+2)+len(tr.Classes) > 1<<16 {
				continue // a valid but large window: not this test's business
			}
			w := NewWindow(tr, 20, time.Second)
			sample := make([]float32, len(tr.Elements))
			for j := range sample {
				sample[j] = float32(j) - 1
			}
			sample = append(sample, float32(math.NaN()))
			now := time.Unix(0, 0)
			for j := range 60 {
				w.Add(sample[:len(sample)-j%2], now)
				w.AddClass(j%max(len(tr.Classes), 1), now)
			}
			w.Expire(now.Add(time.Hour))
			w.Compare()
			CompareWindows(w, NewWindow(tr, 20, 0))
		}
	})
}
