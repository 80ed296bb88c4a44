package gateway

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestErrorLogRate: failed requests are logged at a bounded rate, with
// the request id, and the next line counts those it dropped; under
// overload the log does not grow with the load.
func TestErrorLogRate(t *testing.T) {
	var out bytes.Buffer
	l := newErrorLog(slog.New(slog.NewJSONHandler(&out, nil)))
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/v2/models/m/infer")
	ctx.Request.Header.Set(HeaderRequestID, "req-42")
	const requests = 10_000
	for range requests {
		l.write(&ctx, slog.LevelWarn, "request refused", 503, "queue is full")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// One second's lines, or two when the loop crosses a second.
	if len(lines) < errorLogRate || len(lines) > 2*errorLogRate {
		t.Fatalf("got %d lines for %d failures, want %d to %d", len(lines), requests, errorLogRate, 2*errorLogRate)
	}
	if !strings.Contains(lines[0], `"request_id":"req-42"`) || !strings.Contains(lines[0], `"status":503`) {
		t.Errorf("got line %s, want the request id and status", lines[0])
	}
	if got := l.suppressed.Load(); got != requests-int64(len(lines)) {
		t.Errorf("got %d suppressed, want %d", got, requests-len(lines))
	}
	// Debug lines are skipped at once when debug is off, and not counted.
	l.write(&ctx, slog.LevelDebug, "request rejected", 400, "bad")
	if strings.Count(out.String(), "\n") != len(lines) {
		t.Errorf("a debug line was written at the info level")
	}
}

func TestLineLimit(t *testing.T) {
	l := lineLimit{limit: 3}
	at := time.Unix(1000, 0)
	var got []bool
	for i := range 5 {
		got = append(got, l.allow(at.Add(time.Duration(i)*time.Millisecond)))
	}
	got = append(got, l.allow(at.Add(time.Second)))
	if want := []bool{true, true, true, false, false, true}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestRequestID: a client's id is echoed; a missing or unfit one is
// replaced by a generated one, which the logs then see on the request.
func TestRequestID(t *testing.T) {
	for _, tc := range []struct {
		name, sent string
		kept       bool
	}{
		{"kept", "req-42", true},
		{"missing", "", false},
		{"with a space", "a b", false},
		{"too long", strings.Repeat("x", 129), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			if tc.sent != "" {
				ctx.Request.Header.Set(HeaderRequestID, tc.sent)
			}
			setRequestID(&ctx, "")
			got := string(ctx.Response.Header.Peek(HeaderRequestID))
			if string(ctx.Request.Header.Peek(HeaderRequestID)) != got {
				t.Fatalf("request %q, response %q", ctx.Request.Header.Peek(HeaderRequestID), got)
			}
			switch {
			case tc.kept && got != tc.sent:
				t.Fatalf("got %q, want %q kept", got, tc.sent)
			case !tc.kept && (len(got) != 16 || strings.Trim(got, "0123456789abcdef") != ""):
				t.Fatalf("generated %q, want 16 hex digits", got)
			}
			if !tc.kept {
				// With feedback.advertise, the replica's address ends it.
				var ctx fasthttp.RequestCtx
				setRequestID(&ctx, "@10.0.0.5:8000")
				if got := string(ctx.Response.Header.Peek(HeaderRequestID)); len(got) != 30 || !strings.HasSuffix(got, "@10.0.0.5:8000") {
					t.Fatalf("generated %q with a replica", got)
				}
			}
		})
	}
}
