package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infergate/infergate/runtime/runtimetest"
)

// TestShutdownAnswersAccepted: 8 clients, each opening a connection per
// request, load the server when it stops. Every request sent on a
// connection whose handshake completed gets a response; the others are
// refused at connect (issue 11, defect 6). INFERGATE_SHUTDOWN_RUNS sets
// the number of runs (default 1; the note's figure uses 5).
func TestShutdownAnswersAccepted(t *testing.T) {
	runs := 1
	if n, err := strconv.Atoi(os.Getenv("INFERGATE_SHUTDOWN_RUNS")); err == nil && n > 0 {
		runs = n
	}
	var totalSent, totalAnswered, totalDropped, totalRefused int64
	for run := range runs {
		sent, answered, dropped, refused := shutdownUnderLoad(t)
		t.Logf("run %d: %d requests sent on accepted connections, %d answered, %d dropped; %d connections refused after the stop", run+1, sent, answered, dropped, refused)
		totalSent, totalAnswered, totalDropped, totalRefused = totalSent+sent, totalAnswered+answered, totalDropped+dropped, totalRefused+refused
	}
	t.Logf("%d runs: %d sent, %d answered, %d dropped, %d refused", runs, totalSent, totalAnswered, totalDropped, totalRefused)
	if totalDropped != 0 {
		t.Errorf("%d requests on accepted connections got no response", totalDropped)
	}
}

func shutdownUnderLoad(t *testing.T) (sent, answered, dropped, refused int64) {
	c := testConfig()
	c.ModelRepository = runtimetest.Models(t)
	c.HTTP.Address, c.HTTP.Port = "127.0.0.1", 0
	c.ONNXRuntime.Library = runtimetest.Library(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelError}))
	go func() { done <- serve(ctx, c, log, func(a net.Addr) { addrs <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	}
	url := "http://" + addr.String() + "/v2/models/mlp/infer"
	body := []byte(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}`)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	var answers atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				var connected atomic.Bool
				trace := &httptrace.ClientTrace{ConnectDone: func(_, _ string, err error) { connected.Store(err == nil) }}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodPost, url, bytes.NewReader(body))
				resp, err := hc.Do(req)
				switch {
				case err == nil:
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					atomic.AddInt64(&sent, 1)
					if resp.StatusCode == http.StatusOK {
						atomic.AddInt64(&answered, 1)
						answers.Add(1)
					} else {
						t.Errorf("status %d while stopping", resp.StatusCode)
					}
				case connected.Load():
					atomic.AddInt64(&sent, 1)
					atomic.AddInt64(&dropped, 1)
					t.Logf("dropped: %v", err)
				default:
					atomic.AddInt64(&refused, 1)
					return // the listener is closed
				}
			}
		})
	}
	for answers.Load() < 200 { // under load
		time.Sleep(time.Millisecond)
	}
	cancel() // the signal
	if err := <-done; err != nil {
		t.Errorf("server stopped with %v", err)
	}
	wg.Wait()
	hc.CloseIdleConnections()
	return sent, answered, dropped, refused
}
