package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infergate/infergate/runtime/runtimetest"
)

// TestBadRequests sends malformed and invalid requests over HTTP and checks
// the exact status and KServe error text of each, then that the server
// still serves.
func TestBadRequests(t *testing.T) {
	c := startServer(t, runtimetest.Models(t), func(c *Config) { c.HTTP.MaxRequestBodyBytes, c.HTTP.MaxJSONBytes = 1<<20, 64<<10 })
	const mlp = "/v2/models/mlp/infer"
	row := `[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]`
	good := `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":` + row + `}]}`
	bin := func(header string, data string) (string, map[string]string) {
		return header + data, map[string]string{"Inference-Header-Content-Length": itoa(len(header))}
	}
	binBody, binHeader := bin(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","parameters":{"binary_data_size":64}}]}`, strings.Repeat("\x00", 60))
	binBody2, binHeader2 := bin(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","parameters":{"binary_data_size":32}}]}`, strings.Repeat("\x00", 32))
	shortBody, _ := bin(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","parameters":{"binary_data_size":64}}]}`, strings.Repeat("\x00", 64))
	var bomb bytes.Buffer // 16 MiB of zeros in 16 KiB
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, 16<<20))
	zw.Close()
	nested := `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}]}`
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		header map[string]string
		status int
		want   string
	}{
		{"malformed JSON", "POST", mlp, `{"inputs": [`, nil, 400, `malformed JSON: cannot parse object: cannot parse object value: cannot parse array: missing ']'; unparsed tail: ""`},
		{"empty body", "POST", mlp, ``, nil, 400, `malformed JSON: empty request`},
		{"not an object", "POST", mlp, `[1,2]`, nil, 400, `request must be a JSON object, got array`},
		{"no inputs", "POST", mlp, `{"id":"1"}`, nil, 400, `missing "inputs"`},
		{"empty inputs", "POST", mlp, `{"inputs":[]}`, nil, 400, `"inputs" must not be empty`},
		{"unknown input", "POST", mlp, `{"inputs":[{"name":"img","shape":[1,16],"datatype":"FP32","data":` + row + `}]}`, nil, 400, `unknown input "img"`},
		{"missing input", "POST", "/v2/models/multi_io/infer", `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`, nil, 400, `missing input "b"`},
		{"wrong datatype", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP64","data":` + row + `}]}`, nil, 400, `input "input": expected datatype FP32, got FP64`},
		{"unknown datatype", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FLOAT","data":` + row + `}]}`, nil, 400, `input "input": unknown datatype "FLOAT", expected FP32`},
		{"wrong rank", "POST", mlp, `{"inputs":[{"name":"input","shape":[16],"datatype":"FP32","data":` + row + `}]}`, nil, 400, `input "input": expected shape [-1,16], got [16]`},
		{"wrong fixed dim", "POST", mlp, `{"inputs":[{"name":"input","shape":[2,8],"datatype":"FP32","data":` + row + `}]}`, nil, 400, `input "input": expected shape [-1,16], got [2,8]`},
		{"element count", "POST", mlp, `{"inputs":[{"name":"input","shape":[2,16],"datatype":"FP32","data":` + row + `}]}`, nil, 400, `input "input": shape [2,16] needs 32 elements, got 16`},
		{"string for number", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[0,1,"2",3,4,5,6,7,8,9,10,11,12,13,14,15]}]}`, nil, 400, `input "input": element 2 must be a number, got "2"`},
		{"integer out of range", "POST", "/v2/models/identity_int8/infer", `{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"INT8","data":[1,128,3,4]}]}`, nil, 400, `input "INPUT0": element 1 is out of range for INT8, got 128`},
		{"fraction for integer", "POST", "/v2/models/identity_int64/infer", `{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"INT64","data":[1,2.5,3,4]}]}`, nil, 400, `input "INPUT0": element 1 must be an integer, got 2.5`},
		{"number for BOOL", "POST", "/v2/models/identity_bool/infer", `{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"BOOL","data":[true,1,false,true]}]}`, nil, 400, `input "INPUT0": element 1 must be true or false, got 1`},
		{"NUL in BYTES", "POST", "/v2/models/strings/infer", `{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["a\u0000b"]}]}`, nil, 400, `model "strings" version 1: invalid input: input "text": BYTES element 0 contains a NUL byte, which ONNX Runtime's string tensors cannot take`},
		{"unknown output", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":` + row + `}],"outputs":[{"name":"probs"}]}`, nil, 400, `unknown output "probs"`},
		{"classification", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":` + row + `}],"outputs":[{"name":"output","parameters":{"classification":2}}]}`, nil, 400, `output "output": classification extension is not supported`},
		{"shared memory", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","parameters":{"shared_memory_region":"r0"}}]}`, nil, 400, `input "input": shared memory is not supported`},
		{"binary without header", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","parameters":{"binary_data_size":64}}]}`, nil, 400, `input "input": binary_data_size needs the Inference-Header-Content-Length header`},
		{"binary too short", "POST", mlp, binBody, binHeader, 400, `input "input": binary_data_size 64 exceeds the 60 bytes of binary data left`},
		{"bad header length", "POST", mlp, shortBody, map[string]string{"Inference-Header-Content-Length": "abc"}, 400, `invalid Inference-Header-Content-Length header "abc"`},
		{"header past body", "POST", mlp, good, map[string]string{"Inference-Header-Content-Length": "100000"}, 400, `header Inference-Header-Content-Length is 100000, outside the body of 109 bytes`},
		{"batch over max_batch_size", "POST", "/v2/models/pinned/infer", `{"inputs":[{"name":"x","shape":[9,4],"datatype":"FP32","data":[` + strings.Repeat("0,", 35) + `0]}]}`, nil, 400, `batch size 9 is larger than the model's max_batch_size 8`},
		{"different batch sizes", "POST", "/v2/models/multi_io/infer", `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]},{"name":"b","shape":[2,3],"datatype":"INT64","data":[1,2,3,4,5,6]}]}`, nil, 400, `inputs have different batch sizes: "a" has 1, "b" has 2`},
		{"id not a string", "POST", mlp, `{"id":7,"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":` + row + `}]}`, nil, 400, `"id" must be a string, got 7`},
		{"bad version", "POST", "/v2/models/mlp/versions/0/infer", good, nil, 400, `invalid model version "0": want a positive integer`},
		{"unknown model", "POST", "/v2/models/resnet/infer", good, nil, 404, `unknown model "resnet"`},
		{"unknown version", "POST", "/v2/models/mlp/versions/3/infer", good, nil, 404, `model "mlp" has no version 3`},
		{"wrong method", "PUT", mlp, good, nil, 405, `method PUT is not allowed on /v2/models/mlp/infer`},
		{"JSON part over its limit", "POST", mlp, `{"id":"` + strings.Repeat("x", 70000) + `","inputs":[]}`, nil, 413, `the JSON part of the request is 70021 bytes, over the limit of 65536: send large tensors as binary data (Inference-Header-Content-Length)`},
		{"unsupported encoding", "POST", mlp, good, map[string]string{"Content-Encoding": "br"}, 415, `Content-Encoding "br" is not supported (want gzip or deflate)`},
		{"corrupt gzip", "POST", mlp, good, map[string]string{"Content-Encoding": "gzip"}, 400, `gzip body: gzip: invalid header`},
		{"ONNX Runtime failure", "POST", "/v2/models/reshape3/infer", `{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[1,2,3,4]}]}`, nil, 500, `model "reshape3" version 1: Error running network: `},
		{"model failed to load", "POST", "/v2/models/corrupt/infer", good, nil, 503, `model "corrupt" is not ready: read model: `},
		{"trailing garbage", "POST", mlp, good + `xyz`, nil, 400, `malformed JSON: unexpected tail: "xyz"`},
		{"shape not an array", "POST", mlp, `{"inputs":[{"name":"input","shape":"1,16","datatype":"FP32","data":` + row + `}]}`, nil, 400, `input "input": "shape" must be an array, got "1,16"`},
		{"datatype not a string", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":5,"data":` + row + `}]}`, nil, 400, `input "input": "datatype" must be a string, got 5`},
		{"inputs an object", "POST", mlp, `{"inputs":{"name":"input"}}`, nil, 400, `"inputs" must be an array, got object`},
		{"shape overflows", "POST", mlp, `{"inputs":[{"name":"input","shape":[4611686018427387904,16],"datatype":"FP32","data":` + row + `}]}`, nil, 400, `input "input": shape [4611686018427387904,16] has too many elements for a request body of 127 bytes`},
		{"negative dimension", "POST", mlp, `{"inputs":[{"name":"input","shape":[-1,16],"datatype":"FP32","data":` + row + `}]}`, nil, 400, `input "input": shape dimension 0 must be a non-negative integer, got -1`},
		{"binary size disagrees with the shape", "POST", mlp, binBody2, binHeader2, 400, `input "input": shape [1,16] of FP32 needs 64 bytes, got binary_data_size 32`},
		{"negative header length", "POST", mlp, good, map[string]string{"Inference-Header-Content-Length": "-5"}, 400, `invalid Inference-Header-Content-Length header "-5"`},
		{"duplicate input", "POST", mlp, `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":` + row + `},{"name":"input","shape":[1,16],"datatype":"FP32","data":` + row + `}]}`, nil, 400, `input "input" given twice`},
		{"invalid UTF-8 in BYTES", "POST", "/v2/models/strings/infer", "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"a\xff\xfeb\"]}]}", nil, 400, `input "text": BYTES element 0 is not valid UTF-8, as JSON text must be: send arbitrary bytes as binary data (binary_data_size)`},
		{"deeply nested data", "POST", mlp, nested, nil, 400, `malformed JSON: ...: cannot parse array: cannot parse array value: `},
		{"gzip bomb", "POST", mlp, bomb.String(), map[string]string{"Content-Encoding": "gzip"}, 413, `decompressed JSON request is larger than the limit of 65536 bytes`},
	}
	if len(tests) < 40 {
		t.Fatalf("the catalogue has %d cases, want at least 40", len(tests))
	}
	// Raw connections: what an HTTP client library would not send.
	raw := []struct {
		name, request string
		status        int
		want          string
	}{
		{"declared body over the limit", "POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n", 413,
			"request body is larger than the limit of 1048576 bytes"},
		{"request line over the read buffer", "POST /v2/models/" + strings.Repeat("m", 5000) + "/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 431,
			"the request line and headers are larger than the server's limit of 4096 bytes: shorten the URL (model names, versions) or the headers"},
		{"a header with no colon", "POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nbroken\r\nContent-Length: 2\r\n\r\n{}", 400, "malformed HTTP request: "},
	}
	addr := strings.TrimPrefix(c.BaseURL(), "http://")
	pass := func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := http.Header{}
				for k, v := range tt.header {
					h.Set(k, v)
				}
				status, body, _, err := c.Do(context.Background(), tt.method, tt.path, []byte(tt.body), h)
				if err != nil {
					t.Fatal(err)
				}
				got := errorBody(t, body)
				exact := !strings.HasSuffix(tt.want, ": ")
				if status != tt.status || (exact && got != tt.want) || (!exact && !strings.HasPrefix(got, tt.want)) {
					t.Errorf("got %d %q, want %d %q", status, got, tt.status, tt.want)
				}
			})
		}
		for _, tt := range raw {
			t.Run(tt.name, func(t *testing.T) {
				status, body := rawRequest(t, addr, []byte(tt.request), 0)
				got := errorBody(t, body)
				exact := !strings.HasSuffix(tt.want, ": ")
				if status != tt.status || (exact && got != tt.want) || (!exact && !strings.HasPrefix(got, tt.want)) {
					t.Errorf("got %d %q, want %d %q", status, got, tt.status, tt.want)
				}
			})
		}
		t.Run("a slow client sends its headers byte by byte", func(t *testing.T) {
			req := "POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: " + itoa(len(good)) + "\r\n\r\n" + good
			if status, body := rawRequest(t, addr, []byte(req), time.Millisecond); status != http.StatusOK {
				t.Errorf("got %d %s", status, body)
			}
		})
	}

	// A first pass warms the server up (pools, parsers, ONNX Runtime's
	// arenas); leaks then show as growth over the passes that follow.
	pass(t)
	c.CloseIdleConnections()
	goroutines, rss := settledGoroutines(t, -1), settledRSS(t)
	for range 5 {
		pass(t)
	}
	c.CloseIdleConnections()
	afterG, afterRSS := settledGoroutines(t, goroutines), settledRSS(t)
	t.Logf("after 5 more passes (%d requests): goroutines %d -> %d, RSS %d -> %d KiB", 5*(len(tests)+len(raw)+1), goroutines, afterG, rss>>10, afterRSS>>10)
	if afterG > goroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines grew from %d to %d:\n%s", goroutines, afterG, buf[:goruntime.Stack(buf, true)])
	}
	if float64(afterRSS) > 1.1*float64(rss) {
		t.Errorf("RSS grew from %d to %d KiB, more than 10%%", rss>>10, afterRSS>>10)
	}
	// Nothing above took the server down.
	status, _, _, err := c.Do(context.Background(), "POST", mlp, []byte(good), nil)
	if err != nil || status != 200 {
		t.Fatalf("after the bad requests: %d %v", status, err)
	}
}

// rawRequest writes req on a new connection, a byte at a time with gap
// between bytes when gap > 0, and reads the response.
func rawRequest(t *testing.T, addr string, req []byte, gap time.Duration) (int, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if gap > 0 {
		for i := range req {
			if _, err := conn.Write(req[i : i+1]); err != nil {
				t.Fatal(err)
			}
			if req[i] == '\n' {
				time.Sleep(gap) // per line: a byte per write, and slow
			}
		}
	} else if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// settledGoroutines returns the goroutine count once it is at most want
// (or, with want < 0, once it stops changing), within 15 s: fasthttp
// keeps an idle worker goroutine for up to 10 s.
func settledGoroutines(t *testing.T, want int) int {
	t.Helper()
	n := goruntime.NumGoroutine()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		m := goruntime.NumGoroutine()
		if (want >= 0 && m <= want) || (want < 0 && m == n) {
			return m
		}
		n = m
	}
	return n
}

// settledRSS returns the process's resident memory after a GC that
// returns freed memory to the system.
func settledRSS(t *testing.T) int64 {
	t.Helper()
	goruntime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestReadTimeoutNoAnswer: a connection that sends nothing, or part of a
// request, within http.read_timeout is closed without an answer, as Go's
// net/http and nginx close it. An answer would be unsolicited: Go's HTTP
// client opens connections for later and reads a stray 400 there as the
// answer to its next request (seen in make soak as "Unsolicited response
// received on idle HTTP channel"). The server serves on afterwards.
func TestReadTimeoutNoAnswer(t *testing.T) {
	admin := freePort(t)
	c := startServer(t, runtimetest.Models(t), func(c *Config) {
		c.HTTP.ReadTimeout = 300 * time.Millisecond
		c.Admin.Port = admin
	})
	addr := strings.TrimPrefix(c.BaseURL(), "http://")
	for _, tt := range []struct{ name, addr, sent string }{
		{"nothing sent", addr, ""},
		{"part of the headers", addr, "POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\n"},
		{"part of the body", addr, "POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inputs\":"},
		{"nothing sent to the admin listener", "127.0.0.1:" + strconv.Itoa(admin), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write([]byte(tt.sent)); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // far past the read timeout
			got, err := io.ReadAll(conn)
			if err != nil || len(got) > 0 {
				t.Errorf("the server answered %q (%v); want the connection closed without an answer", got, err)
			}
		})
	}
	good := `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}]}`
	if status, body, _, err := c.Do(context.Background(), "POST", "/v2/models/mlp/infer", []byte(good), nil); err != nil || status != 200 {
		t.Fatalf("afterwards: %d %v %s", status, err, body)
	}
}
