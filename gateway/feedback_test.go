package gateway

import "testing"

// FuzzParseFeedback: any body gives an answer or a 400, never a panic;
// an accepted one has an id and exactly one of labels and values.
func FuzzParseFeedback(f *testing.F) {
	for _, s := range []string{`{"id":"a","label":1}`, `{"id":"a","value":[1.5,2]}`, `{"id":"a","label":[1,2,3]}`,
		`{"id":"","label":1}`, `{"id":"a","label":1,"value":2}`, `[1]`, `{"id":"a","label":1e400}`, `{"id":"a","value":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, a, err := parseFeedback(b)
		if err != nil {
			if status, _ := statusOf(err); status != 400 {
				t.Fatalf("%q: %v is not a 400", b, err)
			}
			return
		}
		if id == "" || (a.Labels == nil) == (a.Values == nil) || len(a.Labels)+len(a.Values) == 0 {
			t.Fatalf("%q: accepted as id %q, %+v", b, id, a)
		}
	})
}
