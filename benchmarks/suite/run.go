package suite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/infergate/infergate/benchmarks/load"
	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime"
)

// Options configure a suite run.
type Options struct {
	// Root is the folder that scenario model paths are relative to.
	// Default ".": the repository root, where make runs.
	Root string
	// Infergate is the infergate binary. Default "bin/infergate" under Root.
	Infergate string
	// Self is the infergate-bench binary, which serves the reference
	// servers (serve-transport, serve-handwritten). Default: this
	// process's executable.
	Self string
	// ONNXRuntimeLib is libonnxruntime.so, for the in-process runs and
	// every server. Required.
	ONNXRuntimeLib string
	// Work is where server logs and model repositories go. Required.
	Work string
	// External lists the base URLs of other KServe v2 servers, each
	// serving the scenarios' models under the same names. Default none.
	External []string
	// HandwrittenGOMAXPROCS is the hand-written server's GOMAXPROCS.
	// Default 0: Go's default, what a user's server gets.
	HandwrittenGOMAXPROCS int
	// Load holds the measurement settings of every run (windows,
	// stability); its Concurrency and Label are set per run. Defaults:
	// windows of 500ms, 3 stable ones, at most 6 after the warm-up.
	Load load.Options
	// Log gets one line per run as the suite goes. Default: discard.
	Log io.Writer
}

// Results is everything a suite run measured.
type Results struct {
	Date      time.Time         `json:"date"`
	Machine   Machine           `json:"machine"`
	Settings  Settings          `json:"settings"`
	Scenarios []*ScenarioResult `json:"scenarios"`
	// Elapsed is the suite's wall-clock time, in seconds.
	Elapsed float64 `json:"elapsed_s"`
}

// Settings records how the suite measured.
type Settings struct {
	WindowMS      int64   `json:"window_ms"`
	StableWindows int     `json:"stable_windows"`
	MaxWindows    int     `json:"max_windows"`
	Stability     float64 `json:"stability"`
	// GOMAXPROCS of each process, in words.
	GOMAXPROCS map[string]string `json:"gomaxprocs"`
}

// ScenarioResult is one scenario's results and targets.
type ScenarioResult struct {
	Scenario *Scenario      `json:"-"`
	Name     string         `json:"name"`
	Desc     string         `json:"description"`
	Results  []*load.Result `json:"results"`
	Targets  []Outcome      `json:"targets"`
	// Problems are servers that could not be measured, with the reason;
	// the other servers' figures stand.
	Problems []string `json:"problems,omitempty"`
}

type runner struct {
	opts Options
	env  *runtime.Environment
}

func (o Options) withDefaults() (Options, error) {
	if o.Root == "" {
		o.Root = "."
	}
	if o.Infergate == "" {
		o.Infergate = filepath.Join(o.Root, "bin", "infergate")
	}
	if o.Self == "" {
		self, err := os.Executable()
		if err != nil {
			return o, fmt.Errorf("find the infergate-bench binary: %w", err)
		}
		o.Self = self
	}
	if o.ONNXRuntimeLib == "" {
		return o, errors.New("the ONNX Runtime library is required")
	}
	if o.Work == "" {
		return o, errors.New("a work folder is required")
	}
	if o.Load.Window <= 0 {
		o.Load.Window = 500 * time.Millisecond
	}
	if o.Load.StableWindows <= 0 {
		o.Load.StableWindows = 3
	}
	if o.Load.MaxWindows <= 0 {
		o.Load.MaxWindows = 6
	}
	if o.Load.Stability <= 0 {
		o.Load.Stability = 0.1
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o, nil
}

// Run runs the scenarios one after the other and judges their targets. A
// server that cannot start or fails its runs is a Problem of its
// scenario, not an error: the suite goes on. Errors are for what stops
// the whole suite (no ONNX Runtime, a cancelled ctx).
func Run(ctx context.Context, opts Options, scenarios []*Scenario) (*Results, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Work, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	r := &runner{opts: opts}
	defer func() {
		if r.env != nil {
			r.env.Close()
		}
	}()
	hw := "Go's default (one per core)"
	if opts.HandwrittenGOMAXPROCS > 0 {
		hw = strconv.Itoa(opts.HandwrittenGOMAXPROCS)
	}
	res := &Results{
		Date:    start.UTC(),
		Machine: describeMachine(opts.Infergate, opts.ONNXRuntimeLib),
		Settings: Settings{
			WindowMS:      opts.Load.Window.Milliseconds(),
			StableWindows: opts.Load.StableWindows,
			MaxWindows:    opts.Load.MaxWindows,
			Stability:     opts.Load.Stability,
			GOMAXPROCS: map[string]string{
				ServerONNXRuntime:       "2 per core (raised for the in-process runs, as infergate serve does)",
				ServerTransport:         "Go's default (one per core): no cgo",
				ServerTransportGRPC:     "Go's default (one per core): no cgo",
				ServerInfergate:         "infergate's default: 2 per core",
				ServerHandwritten:       hw,
				"load generator":        "Go's default (one per core)",
				ServerInfergateBatching: "infergate's default: 2 per core",
				ServerInfergateGRPC:     "infergate-batching's process",
			},
		},
	}
	for _, sc := range scenarios {
		sr, err := r.runScenario(ctx, sc)
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		res.Scenarios = append(res.Scenarios, sr)
	}
	if r.env != nil {
		res.Machine.ONNXRuntime = r.env.Version()
	}
	res.Machine.LoadAfter = loadAverage()
	res.Elapsed = time.Since(start).Round(100 * time.Millisecond).Seconds()
	return res, nil
}

func (r *runner) loadOptions(sc *Scenario) load.Options {
	o := r.opts.Load
	if sc.Window > 0 {
		o.Window = sc.Window
	}
	return o
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.opts.Log, format+"\n", args...)
}

// endpoint is a server under test: one the suite started (proc) or an
// external one.
type endpoint struct {
	label string
	url   string // a gRPC endpoint's is host:port
	proc  *process
	grpc  bool // the KServe v2 gRPC protocol, raw contents
	// metrics is the HTTP base URL whose /metrics counts the endpoint's
	// batches: its own, or for a gRPC endpoint its process's.
	metrics string
}

// runScenario measures ONNX Runtime in-process first, on otherwise idle
// cores; then it starts every server of sc, each its own process, and runs
// the concurrency levels with the servers interleaved: level by level,
// each server in turn (the order reversed every other level), so that
// background load that comes and goes on a shared machine falls on every
// server alike instead of on whichever ran at the time. Idle servers wait
// in epoll and cost nothing.
func (r *runner) runScenario(ctx context.Context, sc *Scenario) (*ScenarioResult, error) {
	sr := &ScenarioResult{Scenario: sc, Name: sc.Name, Desc: sc.Description}
	modelPath := filepath.Join(r.opts.Root, sc.Model.Path)
	if _, err := os.Stat(modelPath); err != nil {
		hint := ""
		if sc.Model.Fetch != "" {
			hint = " (" + sc.Model.Fetch + ")"
		}
		return nil, fmt.Errorf("model %s%s: %w", modelPath, hint, err)
	}
	work := filepath.Join(r.opts.Work, sc.Name)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	problem := func(server string, err error) {
		if ctx.Err() == nil {
			sr.Problems = append(sr.Problems, fmt.Sprintf("%s: %v", server, err))
			r.logf("  %s: %v", server, err)
		}
	}
	want := func(server string) bool { return slices.Contains(sc.Servers, server) }

	if want(ServerONNXRuntime) {
		r.logf("%s: %s", sc.Name, ServerONNXRuntime)
		res, err := r.runONNXRuntime(ctx, sc, modelPath)
		if err != nil {
			problem(ServerONNXRuntime, err)
		}
		for _, x := range res {
			x.Scenario = sc.Name
			r.logf("  %-20s c%-3d batch %-3d %8s items/s  p50 %8s  p99 %8s", x.Label, x.Concurrency, x.Rows, load.SI(x.ItemsPerSec), load.Micros(x.Latency.P50), load.Micros(x.Latency.P99))
		}
		sr.Results = append(sr.Results, res...)
	}

	var servers []*endpoint
	defer func() {
		for _, e := range servers {
			if e.proc != nil {
				if err := e.proc.stop(); err != nil {
					problem(e.label, err)
				}
			}
		}
	}()
	start := func(label string, argv []string) *endpoint {
		p, err := startProcess(ctx, label, filepath.Join(work, label+".log"), argv, nil)
		if err != nil {
			problem(label, err)
			return nil
		}
		e := &endpoint{label: label, url: p.url, proc: p, metrics: p.url}
		servers = append(servers, e)
		return e
	}

	// infergate without batching starts first: its metadata shapes the
	// payload, and its answer becomes the transport server's fixed
	// answer, so that both send the same bytes.
	for _, mode := range []string{ServerInfergate, ServerInfergateBatching} {
		// As users run it: metrics on (the default), the router in the
		// path with no policy (always), drift watching every output at
		// the default sampling.
		config := sc.Model.Config + "\nmonitoring:\n  drift: {}\n"
		if mode == ServerInfergateBatching {
			config += "dynamic_batching: {}\n"
		}
		repo, err := writeRepository(filepath.Join(work, "repo-"+mode), sc.Model.Name, modelPath, config)
		if err != nil {
			return nil, err
		}
		grpcPort := 0
		if mode == ServerInfergateBatching && want(ServerInfergateGRPC) {
			if grpcPort, err = freePort(); err != nil {
				return nil, err
			}
		}
		e := start(mode, []string{r.opts.Infergate, "serve", "--model-repository", repo, "--http-address", "127.0.0.1", "--http-port", "0",
			"--grpc-address", "127.0.0.1", "--grpc-port", strconv.Itoa(grpcPort), "--onnxruntime-lib", r.opts.ONNXRuntimeLib})
		if e != nil && grpcPort != 0 {
			servers = append(servers, &endpoint{label: ServerInfergateGRPC, url: net.JoinHostPort("127.0.0.1", strconv.Itoa(grpcPort)), grpc: true, metrics: e.url})
		}
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("infergate could not serve %s, so the payload could not be built: %v", sc.Model.Name, sr.Problems)
	}
	payload, answer, answerHeaderLen, err := r.preparePayload(ctx, sc, servers[0].url)
	if err != nil {
		return nil, err
	}
	if want(ServerHandwritten) {
		start(ServerHandwritten, []string{r.opts.Self, "serve-handwritten", "--address", "127.0.0.1:0", "--model-name", sc.Model.Name, "--model", modelPath,
			"--onnxruntime-lib", r.opts.ONNXRuntimeLib, "--gomaxprocs", strconv.Itoa(r.opts.HandwrittenGOMAXPROCS)})
	}
	if want(ServerTransport) {
		answerPath := filepath.Join(work, "answer.bin")
		if err := os.WriteFile(answerPath, answer, 0o644); err != nil {
			return nil, err
		}
		start(ServerTransport, []string{r.opts.Self, "serve-transport", "--address", "127.0.0.1:0", "--answer", answerPath, "--header-length", strconv.Itoa(answerHeaderLen)})
	}
	if want(ServerTransportGRPC) {
		if err := r.startTransportGRPC(ctx, sc, servers, payload, filepath.Join(work, "answer.grpc"), start); err != nil {
			problem(ServerTransportGRPC, err)
		}
	}
	for i, u := range r.opts.External {
		label := ServerExternal
		if len(r.opts.External) > 1 {
			label = fmt.Sprintf("%s-%d", ServerExternal, i+1)
		}
		servers = append(servers, &endpoint{label: label, url: u})
	}

	failed := map[string]bool{}
	for i, c := range sc.Concurrency {
		r.logf("%s: concurrency %d", sc.Name, c)
		order := slices.Clone(servers)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, e := range order {
			if failed[e.label] || (!want(e.label) && (e.proc != nil || e.grpc)) {
				continue
			}
			res, err := r.measure(ctx, sc, e, c, payload)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				problem(e.label, fmt.Errorf("c%d: %w", c, err))
				failed[e.label] = true
				continue
			}
			sr.Results = append(sr.Results, res)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, e := range servers {
		if !slices.Contains(sc.OpenLoop.Servers, e.label) || failed[e.label] {
			continue
		}
		var capacity float64
		for _, x := range sr.Results {
			if x.Label == e.label && x.Mode == "closed" {
				capacity = max(capacity, x.Throughput)
			}
		}
		if capacity == 0 {
			continue
		}
		rate := sc.OpenLoop.Fraction * capacity
		r.logf("%s: open loop at %s req/s", sc.Name, load.SI(rate))
		res, err := r.measureOpen(ctx, sc, e, rate, payload)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			problem(e.label, fmt.Errorf("open loop: %w", err))
			continue
		}
		sr.Results = append(sr.Results, res)
	}
	sortResults(sr.Results)
	for _, t := range sc.Targets {
		sr.Targets = append(sr.Targets, Evaluate(sc.Name, t, sr.Results))
	}
	return sr, nil
}

// startTransportGRPC starts the gRPC transport-limit server with the
// answer infergate-grpc (one of servers, which it needs) gives to the
// payload's first request, written to answerPath.
func (r *runner) startTransportGRPC(ctx context.Context, sc *Scenario, servers []*endpoint, p *load.Payload, answerPath string, start func(string, []string) *endpoint) error {
	i := slices.IndexFunc(servers, func(e *endpoint) bool { return e.label == ServerInfergateGRPC })
	if i < 0 {
		return errors.New("needs infergate-grpc in the scenario's servers, for its answer")
	}
	answer, err := load.GRPCAnswer(ctx, load.Target{URL: servers[i].url, Model: sc.Model.Name}, p)
	if err != nil {
		return err
	}
	if err := os.WriteFile(answerPath, answer, 0o644); err != nil {
		return err
	}
	if e := start(ServerTransportGRPC, []string{r.opts.Self, "serve-transport", "--protocol", "grpc", "--address", "127.0.0.1:0", "--answer", answerPath}); e != nil {
		e.grpc = true
	}
	return nil
}

// measure runs one concurrency level against one server.
func (r *runner) measure(ctx context.Context, sc *Scenario, e *endpoint, c int, p *load.Payload) (*load.Result, error) {
	opts := r.loadOptions(sc)
	opts.Concurrency = c
	opts.Label = fmt.Sprintf("%s %s c%d", sc.Name, e.label, c)
	res, err := r.run(ctx, sc, e, p, opts)
	if err != nil {
		return nil, err
	}
	r.logf("  %-20s c%-3d %8s req/s  p50 %8s  p99 %8s  rows/run %5.1f  failed %d  stable %v", e.label, c, load.SI(res.Throughput), load.Micros(res.Latency.P50), load.Micros(res.Latency.P99), res.RowsPerExecution, res.Failed(), res.Stable)
	return res, nil
}

// measureOpen runs one server in an open loop of Poisson arrivals.
func (r *runner) measureOpen(ctx context.Context, sc *Scenario, e *endpoint, rate float64, p *load.Payload) (*load.Result, error) {
	opts := r.loadOptions(sc)
	opts.Rate, opts.Poisson = rate, true
	opts.Label = fmt.Sprintf("%s %s poisson %s/s", sc.Name, e.label, load.SI(rate))
	res, err := r.run(ctx, sc, e, p, opts)
	if err != nil {
		return nil, err
	}
	r.logf("  %-20s poisson %8s req/s  p50 %8s  p99 %8s  rows/run %5.1f  failed %d  stable %v", e.label, load.SI(res.Throughput), load.Micros(res.Latency.P50), load.Micros(res.Latency.P99), res.RowsPerExecution, res.Failed(), res.Stable)
	return res, nil
}

// run runs the load against e. For infergate it also reads the mean rows
// per ONNX Runtime execution over the run from its batch-size histogram.
func (r *runner) run(ctx context.Context, sc *Scenario, e *endpoint, p *load.Payload, opts load.Options) (*load.Result, error) {
	counted := e.label == ServerInfergate || e.label == ServerInfergateBatching || e.label == ServerInfergateGRPC
	var before batchCount
	if counted {
		before, _ = scrapeBatches(ctx, e.metrics)
	}
	run := load.Run
	if e.grpc {
		run = load.RunGRPC
	}
	res, err := run(ctx, load.Target{URL: e.url, Model: sc.Model.Name}, p, opts)
	if err != nil {
		return nil, err
	}
	res.Label, res.Scenario = e.label, sc.Name
	if counted {
		if after, err := scrapeBatches(ctx, e.metrics); err == nil && after.runs > before.runs {
			res.RowsPerExecution = (after.rows - before.rows) / (after.runs - before.runs)
		}
	}
	return res, nil
}

// batchCount is the sum and count of infergate_batch_size, every series.
type batchCount struct{ rows, runs float64 }

// scrapeBatches reads infergate_batch_size's sums and counts from the
// server's /metrics (the text format).
func scrapeBatches(ctx context.Context, url string) (batchCount, error) {
	var c batchCount
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return c, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return c, err
	}
	for line := range strings.Lines(string(body)) {
		var dst *float64
		switch {
		case strings.HasPrefix(line, "infergate_batch_size_sum"):
			dst = &c.rows
		case strings.HasPrefix(line, "infergate_batch_size_count"):
			dst = &c.runs
		default:
			continue
		}
		if i := strings.LastIndexByte(strings.TrimSpace(line), ' '); i >= 0 {
			if v, err := strconv.ParseFloat(strings.TrimSpace(line)[i+1:], 64); err == nil {
				*dst += v
			}
		}
	}
	return c, nil
}

// preparePayload builds the scenario's payload from the server's model
// metadata and returns it with the server's answer to its first body.
func (r *runner) preparePayload(ctx context.Context, sc *Scenario, url string) (*load.Payload, []byte, int, error) {
	c := client.New(url, nil)
	defer c.CloseIdleConnections()
	md, err := c.ModelMetadata(ctx, sc.Model.Name, "")
	if err != nil {
		return nil, nil, 0, fmt.Errorf("model metadata: %w", err)
	}
	shapes := map[string][]int64{}
	for name, s := range sc.Shapes {
		s = append([]int64{}, s...)
		s[0] = int64(sc.Rows)
		shapes[name] = s
	}
	p, err := load.RandomPayload(md, load.PayloadOptions{Binary: sc.Protocol == "binary", Rows: sc.Rows, Shapes: shapes})
	if err != nil {
		return nil, nil, 0, err
	}
	header := http.Header{"Content-Type": {"application/json"}}
	if p.HeaderLens[0] >= 0 {
		header.Set(client.HeaderInferenceHeaderLength, strconv.Itoa(p.HeaderLens[0]))
	}
	status, body, respHeader, err := c.Do(ctx, http.MethodPost, load.Target{Model: sc.Model.Name}.InferPath(), p.Bodies[0], header)
	if err != nil {
		return nil, nil, 0, err
	}
	if status != http.StatusOK {
		return nil, nil, 0, fmt.Errorf("infergate answers the payload with %d: %s", status, body)
	}
	headerLen := 0
	if h := respHeader.Get(client.HeaderInferenceHeaderLength); h != "" {
		headerLen, _ = strconv.Atoi(h)
	}
	return p, body, headerLen, nil
}

// writeRepository lays out a one-model repository under dir: the model is
// hard-linked (or copied: infergate refuses links that lead out of its
// repository) with config beside it.
func writeRepository(dir, model, modelPath, config string) (string, error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	vdir := filepath.Join(dir, model, "1")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(vdir, "model.onnx")
	if err := os.Link(modelPath, dst); err != nil {
		b, err := os.ReadFile(modelPath)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, model, "config.yaml"), []byte(config), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// sortResults orders results by server (report order) and load.
func sortResults(rs []*load.Result) {
	rank := func(label string) int {
		if i := slices.Index(Servers, label); i >= 0 {
			return i
		}
		return len(Servers)
	}
	slices.SortStableFunc(rs, func(a, b *load.Result) int {
		if d := rank(a.Label) - rank(b.Label); d != 0 {
			return d
		}
		if a.Label != b.Label {
			if a.Label < b.Label {
				return -1
			}
			return 1
		}
		if a.Rows != b.Rows {
			return a.Rows - b.Rows
		}
		return a.Concurrency - b.Concurrency
	})
}

// freePort returns a TCP port free on 127.0.0.1 now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
