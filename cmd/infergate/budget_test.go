package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/infergate/infergate/runtime/runtimetest"
)

// TestInflightBodyBudget: a request whose body would take the memory of
// bodies in flight past http.max_inflight_body_bytes gets 503 with
// Retry-After before its body is read; the reservation of a body that is
// still arriving counts, and comes back when its connection ends (issue
// 11, defect 4).
func TestInflightBodyBudget(t *testing.T) {
	const limit = 1 << 20
	c := startServer(t, runtimetest.Models(t), func(c *Config) {
		c.HTTP.MaxRequestBodyBytes, c.HTTP.MaxInflightBodyBytes = limit, limit
	})
	addr := strings.TrimPrefix(c.BaseURL(), "http://")
	good := []byte(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}]}`)
	infer := func() (int, string, http.Header) {
		t.Helper()
		status, body, h, err := c.Do(context.Background(), http.MethodPost, "/v2/models/mlp/infer", good, nil)
		if err != nil {
			t.Fatal(err)
		}
		return status, string(body), h
	}

	// Sequential requests return what they reserve: far more than the
	// budget passes through.
	for range 3 * limit / len(good) / 100 {
		if status, body, _ := infer(); status != http.StatusOK {
			t.Fatalf("within the budget: %d %s", status, body)
		}
	}

	// A slow body of nearly the whole budget holds its reservation while
	// it arrives. (A probe that the server reads first refuses the slow
	// body instead: then dial again.)
	var slow net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for slow == nil {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{\"inputs\":", limit-50)
		for {
			time.Sleep(5 * time.Millisecond) // for its headers to be read
			status, body, h := infer()
			if status == http.StatusServiceUnavailable {
				want := "the server holds as many request bodies as it may (http.max_inflight_body_bytes, 1048576 bytes): a request body of 109 bytes refused, retry later"
				if got := errorBody(t, []byte(body)); got != want || h.Get("Retry-After") != "1" {
					t.Fatalf("got %q, Retry-After %q; want %q, 1", got, h.Get("Retry-After"), want)
				}
				slow = conn
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the slow body's reservation never counted: %d %s", status, body)
			}
			conn.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				conn.Close() // answered: the probe came first
				break
			}
		}
	}
	defer slow.Close()

	// Meanwhile, another body that does not fit gets its answer, and its
	// connection closes cleanly.
	big, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	fmt.Fprintf(big, "POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 200<<10)
	big.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(big), nil)
	if err != nil {
		t.Fatalf("a body that does not fit: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("a body that does not fit: got %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// The slow client goes away: its reservation comes back.
	slow.Close()
	deadline = time.Now().Add(10 * time.Second)
	for {
		status, body, _ := infer()
		if status == http.StatusOK {
			break
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the slow client left: %d %s", status, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
