package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/infergate/infergate/benchmarks/load"
	"github.com/infergate/infergate/gateway/client"
)

// shapesFlag collects repeated --shape name=d1,d2,... flags.
type shapesFlag map[string][]int64

func (s shapesFlag) String() string { return fmt.Sprint(map[string][]int64(s)) }

func (s shapesFlag) Set(v string) error {
	name, dims, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q: want NAME=D1,D2,...", v)
	}
	var shape []int64
	for _, d := range strings.Split(dims, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(d), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%q: dimension %q is not a non-negative integer", v, d)
		}
		shape = append(shape, n)
	}
	s[name] = shape
	return nil
}

// parseLevels reads "1,4,16" or perf_analyzer's "start:end[:step]".
func parseLevels(list, rng string) ([]float64, error) {
	if rng != "" {
		parts := strings.Split(rng, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, fmt.Errorf("range %q: want start:end[:step]", rng)
		}
		nums := []float64{0, 0, 1}
		for i, p := range parts {
			n, err := strconv.ParseFloat(p, 64)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("range %q: %q is not a positive number", rng, p)
			}
			nums[i] = n
		}
		if nums[1] < nums[0] {
			return nil, fmt.Errorf("range %q: end before start", rng)
		}
		var out []float64
		for x := nums[0]; x <= nums[1] && len(out) < 1000; x += nums[2] {
			out = append(out, x)
		}
		return out, nil
	}
	var out []float64
	for _, p := range strings.Split(list, ",") {
		n, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", p)
		}
		out = append(out, n)
	}
	return out, nil
}

// progressTo returns w when it is a terminal, else nil: progress lines
// would only clutter a log.
func progressTo(w io.Writer, quiet bool) io.Writer {
	if f, ok := w.(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) {
		return w
	}
	return nil
}

// runLoad is the load command: one closed-loop run per concurrency level,
// or one open-loop run per rate.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		target      load.Target
		popts       load.PayloadOptions
		opts        load.Options
		shapes      = shapesFlag{}
		sample      = fs.String("input-data", "", "a KServe v2 JSON request `file` to send (default: random data shaped by the model's metadata)")
		concurrency = fs.String("concurrency", "1", "closed-loop concurrency levels, comma-separated")
		concRange   = fs.String("concurrency-range", "", "closed-loop levels as perf_analyzer's `start:end[:step]` (overrides --concurrency)")
		rates       = fs.String("request-rate", "", "open-loop request rates per second, comma-separated (overrides the concurrency levels)")
		jsonOut     = fs.String("json", "", "write the results as JSON to `file` (- for stdout)")
		csvOut      = fs.String("csv", "", "write the results as CSV to `file` (- for stdout)")
		quiet       = fs.Bool("quiet", false, "no progress line, even on a terminal")
		protocol    = fs.String("protocol", "http", "http (JSON, or binary with --binary) or grpc (KServe v2 gRPC, raw contents; --url is then host:port)")
	)
	fs.StringVar(&target.URL, "url", "", "the server's base `URL`, e.g. http://127.0.0.1:8000, or its gRPC address 127.0.0.1:8001 with --protocol grpc (required)")
	fs.StringVar(&target.Model, "model", "", "model `name` (required)")
	fs.StringVar(&target.Version, "model-version", "", "model `version` (default: the server's choice)")
	fs.BoolVar(&popts.Binary, "binary", false, "send inputs and ask for outputs as binary tensors (Triton's extension)")
	fs.IntVar(&popts.Rows, "rows", 1, "batch size of each request (the variable leading dimension)")
	fs.Var(shapes, "shape", "full shape of an input, `NAME=D1,D2,...` (repeatable), for variable dimensions past the first")
	fs.BoolVar(&opts.Poisson, "poisson", false, "open loop: Poisson arrivals instead of evenly spaced ones")
	fs.IntVar(&opts.MaxInFlight, "max-in-flight", 256, "open loop: most requests in flight")
	fs.DurationVar(&opts.Window, "window", time.Second, "measurement window")
	fs.IntVar(&opts.StableWindows, "stable-windows", 3, "consecutive windows that must agree")
	fs.IntVar(&opts.MaxWindows, "max-windows", 10, "most windows after the warm-up")
	fs.Float64Var(&opts.Stability, "stability", 0.1, "how close (a fraction) the windows' throughput and p50 must be")
	fs.DurationVar(&opts.Timeout, "timeout", 30*time.Second, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if target.URL == "" || target.Model == "" {
		return errors.New("load: --url and --model are required")
	}
	if *protocol != "http" && *protocol != "grpc" {
		return fmt.Errorf("load: --protocol %q: want http or grpc", *protocol)
	}
	popts.Shapes = shapes
	var payload *load.Payload
	if *sample != "" {
		b, err := os.ReadFile(*sample)
		if err != nil {
			return err
		}
		if payload, err = load.SamplePayload(b, popts); err != nil {
			return err
		}
	} else {
		var md *client.ModelMetadata
		var err error
		if *protocol == "grpc" {
			md, err = load.GRPCMetadata(ctx, target.URL, target.Model, target.Version)
		} else {
			c := client.New(target.URL, nil)
			md, err = c.ModelMetadata(ctx, target.Model, target.Version)
			c.CloseIdleConnections()
		}
		if err != nil {
			return fmt.Errorf("model metadata: %w", err)
		}
		if payload, err = load.RandomPayload(md, popts); err != nil {
			return err
		}
	}
	open := *rates != ""
	levels, err := parseLevels(*concurrency, *concRange)
	if open {
		levels, err = parseLevels(*rates, "")
	}
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	opts.Progress = progressTo(stderr, *quiet)
	var results []*load.Result
	for _, x := range levels {
		o := opts
		if open {
			o.Rate = x
			o.Label = fmt.Sprintf("%s rate %s/s", target.Model, load.SI(x))
		} else {
			o.Concurrency = int(x)
			o.Label = fmt.Sprintf("%s c%d", target.Model, o.Concurrency)
		}
		run := load.Run
		if *protocol == "grpc" {
			run = load.RunGRPC
		}
		r, err := run(ctx, target, payload, o)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	if err := load.WriteTable(stdout, results); err != nil {
		return err
	}
	if err := writeFile(*jsonOut, stdout, func(w io.Writer) error { return load.WriteJSON(w, results) }); err != nil {
		return err
	}
	return writeFile(*csvOut, stdout, func(w io.Writer) error { return load.WriteCSV(w, results) })
}

// writeFile writes with write to path, to stdout for "-", nowhere for "".
func writeFile(path string, stdout io.Writer, write func(io.Writer) error) error {
	switch path {
	case "":
		return nil
	case "-":
		return write(stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
