package suite

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"gopkg.in/yaml.v3"
)

// The servers a scenario can compare, in report order. External servers
// (Options.External) come after them.
const (
	ServerONNXRuntime = "onnxruntime"
	ServerTransport   = "transport"
	// ServerTransportGRPC is the transport limit of the KServe v2 gRPC
	// protocol: grpc-go answering a fixed message.
	ServerTransportGRPC     = "transport-grpc"
	ServerInfergate         = "infergate"
	ServerInfergateBatching = "infergate-batching"
	// ServerInfergateGRPC is infergate-batching's gRPC listener, raw
	// contents (the same process).
	ServerInfergateGRPC = "infergate-grpc"
	ServerHandwritten   = "handwritten"
	ServerExternal      = "external"
)

// Servers lists the built-in servers in report order.
var Servers = []string{ServerONNXRuntime, ServerTransport, ServerTransportGRPC, ServerInfergate, ServerInfergateBatching, ServerInfergateGRPC, ServerHandwritten}

// The metrics a target compares.
const (
	MetricThroughput = "throughput" // requests/s answered 2xx
	MetricItems      = "items"      // items (batch rows)/s
	MetricP50        = "p50"        // µs
	MetricP99        = "p99"        // µs
)

// Scenario is one scenario file.
type Scenario struct {
	// Name names the scenario in the report and in file names. Required.
	Name string `yaml:"name"`
	// Description is one line for the report.
	Description string `yaml:"description"`
	Model       struct {
		// Name is the model's name in URLs. Required.
		Name string `yaml:"name"`
		// Path is the model.onnx file, relative to Options.Root. Required.
		Path string `yaml:"path"`
		// Config is infergate's config.yaml for the model without
		// batching; infergate-batching gets it plus dynamic_batching: {}.
		// Default "max_batch_size: 64".
		Config string `yaml:"config"`
		// Fetch tells how to get a missing model ("make bench-models").
		Fetch string `yaml:"fetch"`
	} `yaml:"model"`
	// Protocol is json (default) or binary.
	Protocol string `yaml:"protocol"`
	// Rows is the batch size of each request. Default 1.
	Rows int `yaml:"rows"`
	// Shapes gives full input shapes (batch dimension included) for
	// variable dimensions past the first; the batch dimension is replaced
	// by Rows, or by the batch of an in-process run.
	Shapes map[string][]int64 `yaml:"shapes"`
	// Concurrency lists the closed-loop levels. Default [1, 4, 16, 64].
	Concurrency []int `yaml:"concurrency"`
	// ONNXRuntime configures the in-process runs.
	ONNXRuntime struct {
		// Batches lists the rows of each in-process run; each runs from
		// one goroutine and from as many as there are cores. Default
		// [Rows].
		Batches []int `yaml:"batches"`
	} `yaml:"onnxruntime"`
	// Servers lists the built-in servers to run. Default: all of them but
	// transport-grpc, which only the gRPC scenario needs.
	Servers []string `yaml:"servers"`
	// CDFConcurrency is the level whose latency CDF is plotted. Default:
	// the highest level.
	CDFConcurrency int `yaml:"cdf_concurrency"`
	// Targets are the scenario's performance targets.
	Targets []Target `yaml:"targets"`
	// Window overrides Options.Load.Window for this scenario (slow models
	// need longer windows to count enough requests).
	Window time.Duration `yaml:"window"`
	// OpenLoop, when it lists servers, also runs each of them in an open
	// loop of Poisson arrivals at Fraction of the most req/s it answered
	// in the closed loops. Default: no open-loop runs.
	OpenLoop OpenLoop `yaml:"open_loop"`
}

// OpenLoop configures a scenario's open-loop runs.
type OpenLoop struct {
	// Servers lists the servers to run in open loop.
	Servers []string `yaml:"servers"`
	// Fraction of the server's closed-loop capacity to offer, in (0, 1].
	// Default 0.8.
	Fraction float64 `yaml:"fraction"`
}

// The ways a target combines its reference points.
const (
	// CombineSum adds them: a latency budget, or one reference.
	CombineSum = "sum"
	// CombineComposite is the throughput bound of doing the references'
	// work one after the other on the same cores: 1/(1/a + 1/b + ...),
	// as a server must both transport a request and compute it.
	CombineComposite = "composite"
)

// Target is a comparison between measured points:
//
//	measure OP factor × combine(of) + plus
//
// where combine is the sum of the references or, for throughputs, their
// composite 1/(1/a + 1/b + ...),
// where each point's value is its metric (the measure's metric unless it
// names its own).
type Target struct {
	// Name says the target in words. Required.
	Name    string `yaml:"name"`
	Measure Point  `yaml:"measure"`
	// Op is ">=" or "<=". Required.
	Op string `yaml:"op"`
	// Factor multiplies the sum of Of. Default 1.
	Factor float64 `yaml:"factor"`
	// Of are the reference points. Required.
	Of []Point `yaml:"of"`
	// Combine is sum or composite. Default sum.
	Combine string `yaml:"combine"`
	// Plus is added to the bound, in the measure's unit (µs for
	// latencies). Default 0.
	Plus float64 `yaml:"plus"`
}

// Point is one measured figure.
type Point struct {
	// Server is a server name (see Servers, or external). Required.
	Server string `yaml:"server"`
	// Concurrency is the level. For onnxruntime, 1 is the single
	// goroutine and 0 (default) the run with the most items/s.
	Concurrency int `yaml:"concurrency"`
	// Rows selects an onnxruntime run by its batch. Default: any.
	Rows int `yaml:"rows"`
	// Metric is throughput, items, p50 or p99. Required on a measure;
	// a reference defaults to its measure's.
	Metric string `yaml:"metric"`
	// Mode is closed or poisson (the open-loop run). Default closed.
	Mode string `yaml:"mode"`
}

// LoadScenario reads and validates a scenario file. Unknown fields are
// errors.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ParseScenario(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseScenario decodes a scenario strictly, fills its defaults and
// validates it.
func ParseScenario(b []byte) (*Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode scenario: %w", err)
	}
	if s.Model.Config == "" {
		s.Model.Config = "max_batch_size: 64\n"
	}
	if s.Protocol == "" {
		s.Protocol = "json"
	}
	if s.Rows == 0 {
		s.Rows = 1
	}
	if len(s.Concurrency) == 0 {
		s.Concurrency = []int{1, 4, 16, 64}
	}
	if len(s.ONNXRuntime.Batches) == 0 {
		s.ONNXRuntime.Batches = []int{s.Rows}
	}
	if len(s.Servers) == 0 {
		s.Servers = slices.DeleteFunc(slices.Clone(Servers), func(x string) bool { return x == ServerTransportGRPC })
	}
	if s.CDFConcurrency == 0 {
		s.CDFConcurrency = slices.Max(s.Concurrency)
	}
	if s.OpenLoop.Fraction == 0 {
		s.OpenLoop.Fraction = 0.8
	}
	for i := range s.Targets {
		t := &s.Targets[i]
		if t.Factor == 0 {
			t.Factor = 1
		}
		if t.Combine == "" {
			t.Combine = CombineSum
		}
		if t.Measure.Mode == "" {
			t.Measure.Mode = "closed"
		}
		for j := range t.Of {
			if t.Of[j].Metric == "" {
				t.Of[j].Metric = t.Measure.Metric
			}
			if t.Of[j].Mode == "" {
				t.Of[j].Mode = "closed"
			}
		}
	}
	return &s, s.validate()
}

func (s *Scenario) validate() error {
	switch {
	case s.Name == "":
		return errors.New("name: required")
	case s.Model.Name == "":
		return errors.New("model.name: required")
	case s.Model.Path == "":
		return errors.New("model.path: required")
	case s.Protocol != "json" && s.Protocol != "binary":
		return fmt.Errorf("protocol: %q is neither json nor binary", s.Protocol)
	case s.Rows < 0:
		return fmt.Errorf("rows: %d is negative", s.Rows)
	case s.Window < 0:
		return fmt.Errorf("window: %v is negative", s.Window)
	}
	for i, c := range s.Concurrency {
		if c <= 0 {
			return fmt.Errorf("concurrency[%d]: %d is not positive", i, c)
		}
	}
	for i, b := range s.ONNXRuntime.Batches {
		if b <= 0 {
			return fmt.Errorf("onnxruntime.batches[%d]: %d is not positive", i, b)
		}
	}
	for i, name := range s.Servers {
		if !slices.Contains(Servers, name) {
			return fmt.Errorf("servers[%d]: unknown server %q (want one of %v)", i, name, Servers)
		}
	}
	if f := s.OpenLoop.Fraction; !(f > 0 && f <= 1) {
		return fmt.Errorf("open_loop.fraction: %v is not in (0, 1]", f)
	}
	for i, name := range s.OpenLoop.Servers {
		if !slices.Contains(Servers, name) || name == ServerONNXRuntime {
			return fmt.Errorf("open_loop.servers[%d]: %q is not a server the suite starts", i, name)
		}
	}
	for name, shape := range s.Shapes {
		for _, d := range shape {
			if d <= 0 {
				return fmt.Errorf("shapes.%s: %v has a dimension that is not positive", name, shape)
			}
		}
	}
	for i, t := range s.Targets {
		if err := t.validate(); err != nil {
			return fmt.Errorf("targets[%d]: %w", i, err)
		}
	}
	return nil
}

func (t *Target) validate() error {
	switch {
	case t.Name == "":
		return errors.New("name: required")
	case t.Op != ">=" && t.Op != "<=":
		return fmt.Errorf("op: %q is neither >= nor <=", t.Op)
	case len(t.Of) == 0:
		return errors.New("of: at least one reference point is required")
	case t.Factor < 0:
		return fmt.Errorf("factor: %v is negative", t.Factor)
	case t.Combine != CombineSum && t.Combine != CombineComposite:
		return fmt.Errorf("combine: %q is neither sum nor composite", t.Combine)
	}
	if err := t.Measure.validate(); err != nil {
		return fmt.Errorf("measure: %w", err)
	}
	for i, p := range t.Of {
		if err := p.validate(); err != nil {
			return fmt.Errorf("of[%d]: %w", i, err)
		}
	}
	return nil
}

func (p *Point) validate() error {
	switch {
	case p.Server == "":
		return errors.New("server: required")
	case p.Server != ServerExternal && !slices.Contains(Servers, p.Server):
		return fmt.Errorf("server: unknown server %q", p.Server)
	case p.Metric != MetricThroughput && p.Metric != MetricItems && p.Metric != MetricP50 && p.Metric != MetricP99:
		return fmt.Errorf("metric: %q is not throughput, items, p50 or p99", p.Metric)
	case p.Concurrency < 0 || p.Rows < 0:
		return errors.New("concurrency and rows must not be negative")
	case p.Mode != "closed" && p.Mode != "poisson":
		return fmt.Errorf("mode: %q is neither closed nor poisson", p.Mode)
	}
	return nil
}
