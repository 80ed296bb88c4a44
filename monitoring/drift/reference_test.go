package drift

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestElementReference(t *testing.T) {
	t.Parallel()
	up := func(x float64) float64 { return math.Nextafter(x, math.Inf(1)) }
	tests := []struct {
		name       string
		values     []float64
		wantEdges  []float64
		wantCounts []float64
	}{
		// n = 11: h = 10·k/10 = k, so the quantiles are the values 2..10.
		{"integers", []float64{11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1},
			[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, up(11)},
			[]float64{0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 0}},
		// n = 5: h = 0.4·k, interpolated: 0.4, 0.8, ... 3.6.
		{"interpolated", []float64{0, 1, 2, 3, 4},
			[]float64{0, 0.4, 0.8, 1.2, 1.6, 2, 2.4, 2.8, 3.2, 3.6, up(4)},
			// 1 is in [0.8, 1.2), 2 in [2, 2.4), 3 in [2.8, 3.2), the
			// maximum in [3.6, up(4)).
			[]float64{0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0}},
		// A constant keeps a bin below, its own, and a bin above.
		{"constant", []float64{5, 5, 5}, []float64{5, up(5)}, []float64{0, 3, 0}},
		{"two values", []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
			// Quantiles 0 (k ≤ 8) and 0.1 (k = 9, h = 8.1: 0 + 0.1·(1−0)).
			// The maximum is in the last inner bin, [0.1, up(1)).
			[]float64{0, 0.1, up(1)}, []float64{0, 9, 1, 0}},
		{"no values", nil, []float64{}, []float64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := elementReference(slices.Clone(tt.values))
			if !slices.EqualFunc(got.Edges, tt.wantEdges, near) || !slices.Equal(got.Counts, tt.wantCounts) {
				t.Fatalf("got edges %v counts %v, want %v %v", got.Edges, got.Counts, tt.wantEdges, tt.wantCounts)
			}
			// The last edge is exactly the float just above the maximum.
			if n := len(tt.wantEdges); n > 0 && got.Edges[n-1] != tt.wantEdges[n-1] {
				t.Errorf("got last edge %v, want %v", got.Edges[n-1], tt.wantEdges[n-1])
			}
		})
	}
}

func TestQuantileType7(t *testing.T) {
	t.Parallel()
	x := []float64{1, 2, 4, 8}
	tests := []struct {
		name string
		q    float64
		want float64
	}{
		{"min", 0, 1},
		{"max", 1, 8},
		{"median", 0.5, 3},         // h = 1.5: 2 + 0.5·(4−2)
		{"first decile", 0.1, 1.3}, // h = 0.3: 1 + 0.3·(2−1)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := quantile(x, tt.q); !near(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUpperBound(t *testing.T) {
	t.Parallel()
	edges := []float64{0, 1, 2}
	tests := []struct {
		name string
		x    float64
		want int
	}{
		{"below the minimum", -1, 0},
		{"on the minimum", 0, 1},
		{"inside", 0.5, 1},
		{"on an inner edge", 1, 2},
		{"on the last edge", 2, 3},
		{"above", 3, 3},
		{"-Inf", math.Inf(-1), 0},
		{"+Inf", math.Inf(1), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := upperBound(edges, tt.x); got != tt.want {
				t.Errorf("got bin %d, want %d", got, tt.want)
			}
			// NaN padding never counts.
			if got := upperBound(append(slices.Clone(edges), math.NaN(), math.NaN()), tt.x); got != tt.want {
				t.Errorf("padded: got bin %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBuilder(t *testing.T) {
	t.Parallel()
	specs := []Spec{{Kind: KindInput, Name: "x", Elements: 2}, {Kind: KindPrediction, Name: "y", Classes: 3}}
	b := NewBuilder(specs, 4)
	nan := float32(math.NaN())
	for i := range 5 { // the fifth is past rows
		b.Add(0, []float32{float32(i), nan})
		if i < 3 && b.Full() {
			t.Fatalf("full after %d samples", i+1)
		}
	}
	b.Add(1, []float32{1, 2}) // wrong kind: ignored
	for _, c := range []int{0, 2, 2, -1, 3, 1, 1} {
		b.AddClass(0, c) // wrong kind: ignored
		b.AddClass(1, c) // -1 and 3 are out of range
	}
	if !b.Full() {
		t.Fatal("not full")
	}
	r := b.Build()
	if r.Format != Format || r.Samples != 4 || len(r.Tensors) != 2 {
		t.Fatalf("got %+v", r)
	}
	x := r.Tensors[0]
	if x.Kind != KindInput || x.Name != "x" || len(x.Elements) != 2 {
		t.Fatalf("got tensor %+v", x)
	}
	// Values 0, 1, 2, 3: quantiles at h = 0.3·k, 0.3 apart from 0.3 to 2.7.
	if got, want := x.Elements[0].Counts, []float64{0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("element 0: got counts %v, want %v", got, want)
	}
	// All NaN: no edges, one empty bin.
	if got := x.Elements[1]; len(got.Edges) != 0 || !slices.Equal(got.Counts, []float64{0}) {
		t.Errorf("element 1: got %+v, want no edges and counts [0]", got)
	}
	// Classes 0, 2, 2, 1: the fifth in range (1) is past rows.
	if got, want := r.Tensors[1].Classes, []float64{1, 1, 2}; !slices.Equal(got, want) {
		t.Errorf("classes: got %v, want %v", got, want)
	}
	if err := r.validate(); err != nil {
		t.Errorf("got %v, want a valid reference", err)
	}
	// Build released the samples: the builder starts over.
	if b.Full() || b.values[0] != nil {
		t.Error("the builder kept its samples after Build")
	}
}

func TestBuilderSkipsNonFinite(t *testing.T) {
	t.Parallel()
	b := NewBuilder([]Spec{{Kind: KindOutput, Name: "z", Elements: 2}}, 3)
	b.Add(0, []float32{1, float32(math.Inf(1))})
	b.Add(0, []float32{float32(math.NaN())}) // short: element 1 is missing
	b.Add(0, []float32{3, 4, 5})             // long: 5 is beyond Elements
	r := b.Build()
	e := r.Tensors[0].Elements
	if got := sum(e[0].Counts); got != 2 {
		t.Errorf("element 0: got %v reference values, want 2", got)
	}
	if got := sum(e[1].Counts); got != 1 {
		t.Errorf("element 1: got %v reference values, want 1", got)
	}
	if err := r.validate(); err != nil {
		t.Errorf("got %v, want a valid reference", err)
	}
}

func TestReferenceCheck(t *testing.T) {
	t.Parallel()
	r := NewBuilder([]Spec{{Kind: KindInput, Name: "x", Elements: 3}, {Kind: KindPrediction, Name: "y", Classes: 4}}, 1).Build()
	tests := []struct {
		name  string
		specs []Spec
		want  string
	}{
		{"fits", []Spec{{Kind: KindPrediction, Name: "y", Classes: 4}, {Kind: KindInput, Name: "x", Elements: 3}}, ""},
		{"missing", []Spec{{Kind: KindOutput, Name: "x", Elements: 3}}, `output "x": not in the reference`},
		{"elements", []Spec{{Kind: KindInput, Name: "x", Elements: 4}}, `input "x": the reference has 3 elements, want 4`},
		{"classes", []Spec{{Kind: KindInput, Name: "x", Elements: 3}, {Kind: KindPrediction, Name: "y", Classes: 5}}, `prediction "y": the reference has 4 classes, want 5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := r.Check(tt.specs)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("got error %v, want %q", err, tt.want)
			}
		})
	}
	if r.Tensor(KindInput, "y") != nil || r.Tensor(KindPrediction, "y") != &r.Tensors[1] {
		t.Error("Tensor: wrong lookup")
	}
}

func TestReferenceRoundTrip(t *testing.T) {
	t.Parallel()
	b := NewBuilder([]Spec{{Kind: KindInput, Name: "x", Elements: 3}, {Kind: KindPrediction, Name: "y", Classes: 4}}, 100)
	for i := range 100 {
		b.Add(0, []float32{float32(i) / 7, float32(i % 3), 0.1})
		b.AddClass(1, i%4)
	}
	r := b.Build()
	r.Source = "first 100 rows"
	r.ModelSHA256 = strings.Repeat("ab", 32)
	path := filepath.Join(t.TempDir(), "reference.json")
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadReference(path)
	if err != nil {
		t.Fatal(err)
	}
	if !equalReferences(got, r) {
		t.Errorf("got %+v, want %+v", got, r)
	}
	// Nothing left behind but the file itself.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("got %d files in the directory, want 1", len(entries))
	}
	// Overwriting replaces.
	r.Source = "again"
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadReference(path); err != nil || got.Source != "again" {
		t.Errorf("got %v, %v, want the new file", got, err)
	}
	// An invalid reference is not written.
	r.Format = "v0"
	if err := r.WriteFile(filepath.Join(t.TempDir(), "bad.json")); err == nil {
		t.Error("wrote an invalid reference")
	}
}

func equalReferences(a, b *Reference) bool {
	if a.Format != b.Format || a.Samples != b.Samples || a.Source != b.Source || a.ModelSHA256 != b.ModelSHA256 || len(a.Tensors) != len(b.Tensors) {
		return false
	}
	for i := range a.Tensors {
		x, y := a.Tensors[i], b.Tensors[i]
		if x.Kind != y.Kind || x.Name != y.Name || !slices.Equal(x.Classes, y.Classes) || len(x.Elements) != len(y.Elements) {
			return false
		}
		for j := range x.Elements {
			if !slices.Equal(x.Elements[j].Edges, y.Elements[j].Edges) || !slices.Equal(x.Elements[j].Counts, y.Elements[j].Counts) {
				return false
			}
		}
	}
	return true
}

// validDocument is a small valid reference file.
const validDocument = `{"format": "infergate-drift-reference/v1", "samples": 3, "source": "test",
 "tensors": [
  {"kind": "input", "name": "x", "elements": [{"edges": [0, 1, 2], "counts": [0, 1, 2, 0]}, {"edges": [], "counts": [0]}]},
  {"kind": "prediction", "name": "y", "classes": [1, 2]}
 ]}`

func TestParseReference(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want string // error text; empty for a valid document
	}{
		{"valid", validDocument, ""},
		{"minimal", `{"format": "infergate-drift-reference/v1", "tensors": null}`, ""},
		{"bad format", `{"format": "infergate-drift-reference/v2", "tensors": []}`, `format: "infergate-drift-reference/v2" is not infergate-drift-reference/v1`},
		{"no format", `{"tensors": []}`, `format: "" is not infergate-drift-reference/v1`},
		{"unknown field", `{"format": "infergate-drift-reference/v1", "tensors": [], "bins": 10}`, "bins: unknown field"},
		{"names match exactly", `{"Format": "infergate-drift-reference/v1"}`, "Format: unknown field"},
		{"unknown nested field", `{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "input", "name": "x", "elements": [{"edges": [], "counts": [0], "nan": 0}]}]}`,
			"tensors[0].elements[0].nan: unknown field"},
		{"edges not increasing", `{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "input", "name": "x", "elements": [{"edges": [0, 1], "counts": [0, 1, 0]}, {"edges": [0, 2, 2], "counts": [0, 1, 1, 0]}]}]}`,
			"tensors[0].elements[1].edges[2]: 2 is not greater than edges[1] (2)"},
		{"too many edges", `{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "input", "name": "x", "elements": [{"edges": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], "counts": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}]}]}`,
			"tensors[0].elements[0].edges: 12 edges, at most 11"},
		{"counts length", `{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "output", "name": "x", "elements": [{"edges": [0, 1], "counts": [0, 1]}]}]}`,
			"tensors[0].elements[0].counts: 2 counts for 2 edges, want 3"},
		{"negative count", `{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "prediction", "name": "y", "classes": [1, -2]}]}`,
			"tensors[0].classes[1]: -2 is not a finite count of 0 or more"},
		{"edge out of range", `{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "input", "name": "x", "elements": [{"edges": [1e999], "counts": [0, 0]}]}]}`,
			"tensors[0].elements[0].edges[0]: 1e999 is out of range"},
		{"wrong type", `{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "input", "name": 7}]}`,
			"tensors[0].name: want a string, got a number"},
		{"edge not a number", `{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "input", "name": "x", "elements": [{"edges": ["0"], "counts": [0, 0]}]}]}`,
			"tensors[0].elements[0].edges[0]: want a number, got a string"},
		{"unknown kind", `{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "label", "name": "x"}]}`,
			`tensors[0].kind: unknown kind "label" (want input, output or prediction)`},
		{"no name", `{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "input"}]}`, "tensors[0].name: must not be empty"},
		{"twice", `{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "input", "name": "x"}, {"kind": "input", "name": "x"}]}`,
			`tensors[1]: input "x" is given twice`},
		{"classes of an input", `{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "input", "name": "x", "classes": [1]}]}`,
			"tensors[0].classes: only a prediction tensor has classes"},
		{"elements of a prediction", `{"format": "infergate-drift-reference/v1", "tensors": [{"kind": "prediction", "name": "y", "elements": [{"edges": [], "counts": [0]}]}]}`,
			"tensors[0].elements: a prediction tensor has classes, not elements"},
		{"fractional samples", `{"format": "infergate-drift-reference/v1", "samples": 1.5}`, "samples: want an integer, got 1.5"},
		{"negative samples", `{"format": "infergate-drift-reference/v1", "samples": -1}`, "samples: must be 0 or more, got -1"},
		{"not an object", `[]`, "reference: want an object, got an array"},
		{"syntax", `{"format": `, "unexpected EOF"},
		{"bad character", `{"format" 1}`, "offset 11: invalid character '1' after object key"},
		{"empty", ``, "empty reference document"},
		{"trailing data", `{"format": "infergate-drift-reference/v1"} {}`, "data after the reference document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseReference([]byte(tt.doc))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestReadReferenceNames(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "reference.json")
	if err := os.WriteFile(path, []byte(`{"format": "x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadReference(path)
	if want := "reference " + path + `: format: "x" is not ` + Format; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	if _, err := ReadReference(filepath.Join(t.TempDir(), "none.json")); !os.IsNotExist(err) {
		t.Errorf("got %v, want a not-exist error", err)
	}
}

func TestRadixSort(t *testing.T) {
	t.Parallel()
	r := newRand(77)
	values := []float32{0, float32(math.Copysign(0, -1)), 1, -1, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, 3.5, 3.5}
	for range 1000 {
		values = append(values, float32(r.NormFloat64()*1e3))
	}
	keys := make([]uint32, len(values))
	for i, v := range values {
		keys[i] = sortKey(v)
		if got := fromSortKey(keys[i]); math.Float32bits(got) != math.Float32bits(v) {
			t.Fatalf("fromSortKey(sortKey(%v)): got %v", v, got)
		}
	}
	radixSort(keys, make([]uint32, len(keys)))
	got := make([]float32, len(keys))
	for i, k := range keys {
		got[i] = fromSortKey(k)
	}
	want := slices.Clone(values)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got[:12], want[:12])
	}
}
