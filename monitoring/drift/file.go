package drift

import (
	"github.com/google/renameio/v2"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
)

// ParseReference decodes and validates a reference file. It is strict: an
// unknown field (names match exactly), a value of the wrong type, data
// after the document, a format other than Format, an unknown kind, an
// empty or repeated tensor name, bin edges that are not finite and
// strictly increasing or more than Bins+1, a counts array whose length is
// not that of the edges plus one, and a count that is negative or not
// finite are errors, each prefixed by the JSON path of the bad field, like
// "tensors[0].elements[3].edges[2]: ...". A null array reads as empty.
func ParseReference(b []byte) (*Reference, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err == io.EOF {
		return nil, errors.New("empty reference document")
	} else if err != nil {
		return nil, syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the reference document")
	}
	r, err := decodeReference(doc)
	if err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}

func syntaxError(err error) error {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Errorf("offset %d: %w", se.Offset, err)
	}
	return err
}

// ReadReference reads and parses the reference file at path.
func ReadReference(path string) (*Reference, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := ParseReference(b)
	if err != nil {
		return nil, fmt.Errorf("reference %s: %w", path, err)
	}
	return r, nil
}

// WriteFile validates the reference and writes it to path atomically: to a
// temporary file in the same directory, synced, then renamed over path (and
// the directory synced), so that a reader sees the old file or the new one,
// never a part.
func (r *Reference) WriteFile(path string) error {
	if err := r.validate(); err != nil {
		return fmt.Errorf("reference %s: %w", path, err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("reference %s: %w", path, err)
	}
	// Written aside, synced, then renamed over path (renameio): a reader
	// never sees half a reference.
	return renameio.WriteFile(path, append(b, '\n'), 0o644)
}

// validate checks what ParseReference promises beyond the JSON types.
func (r *Reference) validate() error {
	if r.Format != Format {
		return fmt.Errorf("format: %q is not %s", r.Format, Format)
	}
	if r.Samples < 0 {
		return fmt.Errorf("samples: must be 0 or more, got %d", r.Samples)
	}
	type key struct{ kind, name string }
	seen := make(map[key]bool, len(r.Tensors))
	for i, t := range r.Tensors {
		path := fmt.Sprintf("tensors[%d]", i)
		switch t.Kind {
		case KindInput, KindOutput:
			if len(t.Classes) > 0 {
				return fmt.Errorf("%s.classes: only a %s tensor has classes", path, KindPrediction)
			}
		case KindPrediction:
			if len(t.Elements) > 0 {
				return fmt.Errorf("%s.elements: a %s tensor has classes, not elements", path, KindPrediction)
			}
		default:
			return fmt.Errorf("%s.kind: unknown kind %q (want %s, %s or %s)", path, t.Kind, KindInput, KindOutput, KindPrediction)
		}
		if t.Name == "" {
			return fmt.Errorf("%s.name: must not be empty", path)
		}
		if seen[key{t.Kind, t.Name}] {
			return fmt.Errorf("%s: %s %q is given twice", path, t.Kind, t.Name)
		}
		seen[key{t.Kind, t.Name}] = true
		if err := validCounts(path+".classes", t.Classes); err != nil {
			return err
		}
		for j, e := range t.Elements {
			path := fmt.Sprintf("%s.elements[%d]", path, j)
			if len(e.Edges) > Bins+1 {
				return fmt.Errorf("%s.edges: %d edges, at most %d", path, len(e.Edges), Bins+1)
			}
			for k, x := range e.Edges {
				switch {
				case math.IsNaN(x) || math.IsInf(x, 0):
					return fmt.Errorf("%s.edges[%d]: %v is not finite", path, k, x)
				case k > 0 && x <= e.Edges[k-1]:
					return fmt.Errorf("%s.edges[%d]: %v is not greater than edges[%d] (%v)", path, k, x, k-1, e.Edges[k-1])
				}
			}
			if len(e.Counts) != len(e.Edges)+1 {
				return fmt.Errorf("%s.counts: %d counts for %d edges, want %d", path, len(e.Counts), len(e.Edges), len(e.Edges)+1)
			}
			if err := validCounts(path+".counts", e.Counts); err != nil {
				return err
			}
		}
	}
	return nil
}

func validCounts(path string, counts []float64) error {
	for k, c := range counts {
		if !(c >= 0) || math.IsInf(c, 0) {
			return fmt.Errorf("%s[%d]: %v is not a finite count of 0 or more", path, k, c)
		}
	}
	return nil
}

// decodeReference turns a decoded JSON document (json.Number numbers) into
// a Reference, field by field, so that an error can name its path.
func decodeReference(doc any) (*Reference, error) {
	obj, err := object(doc, "", "format", "samples", "source", "model_sha256", "tensors")
	if err != nil {
		return nil, err
	}
	r := &Reference{}
	if r.Format, err = str(obj, "", "format"); err != nil {
		return nil, err
	}
	if r.Source, err = str(obj, "", "source"); err != nil {
		return nil, err
	}
	if r.ModelSHA256, err = str(obj, "", "model_sha256"); err != nil {
		return nil, err
	}
	if v, ok := obj["samples"]; ok {
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("samples: want a number, got %s", typeName(v))
		}
		if r.Samples, err = strconv.ParseInt(n.String(), 10, 64); err != nil {
			return nil, fmt.Errorf("samples: want an integer, got %s", n)
		}
	}
	tensors, err := array(obj["tensors"], "tensors")
	if err != nil {
		return nil, err
	}
	r.Tensors = make([]TensorReference, len(tensors))
	for i, v := range tensors {
		path := fmt.Sprintf("tensors[%d]", i)
		obj, err := object(v, path, "kind", "name", "elements", "classes")
		if err != nil {
			return nil, err
		}
		t := &r.Tensors[i]
		if t.Kind, err = str(obj, path, "kind"); err != nil {
			return nil, err
		}
		if t.Name, err = str(obj, path, "name"); err != nil {
			return nil, err
		}
		if t.Classes, err = numbers(obj["classes"], path+".classes"); err != nil {
			return nil, err
		}
		elements, err := array(obj["elements"], path+".elements")
		if err != nil {
			return nil, err
		}
		if len(elements) > 0 {
			t.Elements = make([]ElementReference, len(elements))
		}
		for j, v := range elements {
			path := fmt.Sprintf("%s.elements[%d]", path, j)
			obj, err := object(v, path, "edges", "counts")
			if err != nil {
				return nil, err
			}
			e := &t.Elements[j]
			if e.Edges, err = numbers(obj["edges"], path+".edges"); err != nil {
				return nil, err
			}
			if e.Counts, err = numbers(obj["counts"], path+".counts"); err != nil {
				return nil, err
			}
			if e.Edges == nil {
				e.Edges = []float64{}
			}
		}
	}
	return r, nil
}

// object returns v as an object whose keys are all among fields.
func object(v any, path string, fields ...string) (map[string]any, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: want an object, got %s", orDocument(path), typeName(v))
	}
	for k := range obj {
		known := false
		for _, f := range fields {
			known = known || k == f
		}
		if !known {
			return nil, fmt.Errorf("%s: unknown field", join(path, k))
		}
	}
	return obj, nil
}

// str returns the string field name of obj, "" when absent.
func str(obj map[string]any, path, name string) (string, error) {
	v, ok := obj[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: want a string, got %s", join(path, name), typeName(v))
	}
	return s, nil
}

// array returns v as an array; absent (nil) and null read as empty.
func array(v any, path string) ([]any, error) {
	if v == nil {
		return nil, nil
	}
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want an array, got %s", path, typeName(v))
	}
	return a, nil
}

// numbers returns v as an array of finite numbers; absent and null read as
// nil.
func numbers(v any, path string) ([]float64, error) {
	a, err := array(v, path)
	if err != nil || len(a) == 0 {
		return nil, err
	}
	out := make([]float64, len(a))
	for i, x := range a {
		n, ok := x.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s[%d]: want a number, got %s", path, i, typeName(x))
		}
		f, err := strconv.ParseFloat(n.String(), 64)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %s is out of range", path, i, n)
		}
		out[i] = f
	}
	return out, nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func orDocument(path string) string {
	if path == "" {
		return "reference"
	}
	return path
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
