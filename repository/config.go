package repository

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/infergate/infergate/batching"
	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/runtime"
)

// Platform is the platform name reported for every model, as Triton names
// ONNX Runtime models.
const Platform = "onnxruntime_onnx"

// Config is a model's config.yaml. Field names follow Triton's model
// configuration so that Triton users recognise them; every field is
// optional.
type Config struct {
	// Name, when given, must equal the model's directory name.
	Name string `yaml:"name"`
	// Platform, when given, must be "onnxruntime_onnx".
	Platform string `yaml:"platform"`
	// Backend, when given, must be "onnxruntime".
	Backend string `yaml:"backend"`
	// MaxBatchSize is the largest batch the model takes along its leading
	// dimension; 0 means the model has no batch axis. Absent: inferred from
	// the model, which has a batch axis (of unlimited size) when every
	// input and output has a variable leading dimension.
	MaxBatchSize *int `yaml:"max_batch_size"`
	// VersionPolicy selects the versions to load. Default: latest 1.
	VersionPolicy VersionPolicy `yaml:"version_policy"`
	// InstanceGroup sets how many executions run at once and where.
	// Default: one CPU group with one instance per CPU.
	InstanceGroup []InstanceGroup `yaml:"instance_group"`
	// Parameters tune ONNX Runtime: intra_op_thread_count (default 1),
	// inter_op_thread_count (default 1) and graph_optimization_level
	// (disable, basic, extended, all; default all). A value is a scalar or
	// Triton's {string_value: "..."}.
	Parameters map[string]Parameter `yaml:"parameters"`
	// Optimization selects GPU execution accelerators.
	Optimization Optimization `yaml:"optimization"`
	// DynamicBatching, when present, merges concurrent requests into
	// batches (see package batching for the scheduling rule). Needs
	// max_batch_size > 0.
	DynamicBatching *DynamicBatching `yaml:"dynamic_batching"`
	// ResponseCache answers repeated identical requests from the gateway's
	// response cache (its size is in the gateway configuration).
	ResponseCache Enable `yaml:"response_cache"`
	// RequestCoalescing (infergate's) runs identical concurrent requests
	// once.
	RequestCoalescing Enable `yaml:"request_coalescing"`
	// VersionLabels name versions, as TF Serving's labels:
	// {stable: 3, canary: 4}. A label points at a loaded version; a label
	// at any other fails the load. POST /v2/models/{m}/labels/{l}/infer
	// serves the labelled version, and labelled versions are never
	// evicted. Labels set through the API live until the model unloads.
	VersionLabels map[string]int64 `yaml:"version_labels"`
	// ModelWarmup runs samples through each version before it is ready,
	// as Triton's model_warmup. A failing sample fails the load.
	ModelWarmup []WarmupSample `yaml:"model_warmup"`
	// Monitoring configures the version's drift monitoring.
	Monitoring Monitoring `yaml:"monitoring"`
	// Routing is the model's routing document (package router decodes
	// and validates it); <model>/routing.yaml takes precedence.
	Routing yaml.Node `yaml:"routing"`
	// Input and Output pin the shapes of tensors whose model shape has
	// variable dimensions. Dims exclude the batch dimension when
	// MaxBatchSize > 0, as in Triton.
	Input  []TensorConfig `yaml:"input"`
	Output []TensorConfig `yaml:"output"`
}

// Monitoring is infergate's monitoring section of a model's config.
type Monitoring struct {
	// Drift, when present, watches the inputs and outputs of every loaded
	// version of the model for drift (see package monitoring).
	Drift *DriftConfig `yaml:"drift"`
}

// DriftConfig is the monitoring.drift section. Its key names are an
// interface: users write them.
type DriftConfig struct {
	// Inputs names the inputs to watch. Default: none.
	Inputs []string `yaml:"inputs"`
	// Outputs names the outputs to watch. Absent: every output; [] none.
	Outputs *[]string `yaml:"outputs"`
	// Reference is what the live window is compared with. Default
	// {first: DefaultDriftReferenceRows}.
	Reference DriftReference `yaml:"reference"`
	// MaxElements bounds the elements tracked per tensor, the first ones
	// along its last axis. Default DefaultDriftMaxElements.
	MaxElements int `yaml:"max_elements"`
	// Window is the size of the live window, in sampled rows. Default
	// DefaultDriftWindow.
	Window int `yaml:"window"`
	// WindowSeconds also drops rows older than this from the window.
	// Default 0: no time bound.
	WindowSeconds float64 `yaml:"window_seconds"`
	// SampleRate is the share of rows sampled, in (0, 1]. Default 1.
	SampleRate *float64 `yaml:"sample_rate"`
}

// DriftReference is the reference of drift monitoring: one of its fields.
type DriftReference struct {
	// First takes the first N sampled rows after the version is ready.
	First int `yaml:"first"`
	// File names a reference file beside model.onnx (reference.json,
	// written by "infergate reference build").
	File string `yaml:"file"`
}

// The bounds of a model's numeric config fields: one model's config must
// not take the whole server down (a config of 100,000 intra-op threads
// made the process spawn 21 k threads; 100 million priority levels took
// 2.4 GB on the first request). Thread and instance counts are bounded by
// the machine's cores.
const (
	MaxMaxBatchSize      = 1 << 16
	MaxPriorityLevels    = 256
	MaxQueueSize         = 1 << 20
	MaxQueueDelay        = 60_000_000 // µs: a minute
	MaxWarmupCount       = 1000
	MaxWarmupElements    = 1 << 24 // elements of one warmup input, batch included
	maxThreadsPerCore    = 4
	maxInstancesPerCore  = 4
	minThreadOrInstances = 4
)

// MaxThreads bounds intra_op_thread_count and inter_op_thread_count, and
// MaxInstances the instances of a model: 4 a core, at least 4.
func MaxThreads() int { return max(minThreadOrInstances, maxThreadsPerCore*goruntime.NumCPU()) }

// MaxInstances bounds the instance count of a model, all groups together.
func MaxInstances() int { return max(minThreadOrInstances, maxInstancesPerCore*goruntime.NumCPU()) }

// The defaults and bounds of the monitoring.drift section. A reference
// taken from the first rows holds them until it is built (4 bytes an
// element): MaxDriftReferenceValues bounds first × max_elements, 64 MiB.
const (
	DefaultDriftReferenceRows = 1000
	DefaultDriftMaxElements   = 256
	DefaultDriftWindow        = 1000
	MaxDriftMaxElements       = 4096
	MaxDriftReferenceValues   = 16 << 20
)

// WithDefaults returns the section with its defaults filled in.
func (d DriftConfig) WithDefaults() DriftConfig {
	if d.Reference.First == 0 && d.Reference.File == "" {
		d.Reference.First = DefaultDriftReferenceRows
	}
	if d.MaxElements == 0 {
		d.MaxElements = DefaultDriftMaxElements
	}
	if d.Window == 0 {
		d.Window = DefaultDriftWindow
	}
	if d.SampleRate == nil {
		one := 1.0
		d.SampleRate = &one
	}
	return d
}

func (d *DriftConfig) validate() error {
	if d == nil {
		return nil
	}
	switch {
	case d.Reference.First < 0:
		return fmt.Errorf("reference.first: must be positive, got %d", d.Reference.First)
	case d.Reference.First > 0 && d.Reference.File != "":
		return errors.New("reference: give one of first or file")
	case d.Reference.File != "" && (filepath.Base(d.Reference.File) != d.Reference.File || strings.HasPrefix(d.Reference.File, ".")):
		return fmt.Errorf("reference.file: %q must be a file name beside %s, without a directory", d.Reference.File, ModelFile)
	case d.MaxElements < 0 || d.MaxElements > MaxDriftMaxElements:
		return fmt.Errorf("max_elements: must be in 1..%d, got %d", MaxDriftMaxElements, d.MaxElements)
	case d.Window < 0:
		return fmt.Errorf("window: must be positive, got %d", d.Window)
	case d.WindowSeconds < 0 || math.IsNaN(d.WindowSeconds) || math.IsInf(d.WindowSeconds, 0):
		return fmt.Errorf("window_seconds: must be 0 or more, got %v", d.WindowSeconds)
	case d.SampleRate != nil && !(*d.SampleRate > 0 && *d.SampleRate <= 1):
		return fmt.Errorf("sample_rate: must be in (0, 1], got %v", *d.SampleRate)
	}
	if w := d.WithDefaults(); w.Reference.File == "" && int64(w.Reference.First)*int64(w.MaxElements) > MaxDriftReferenceValues {
		return fmt.Errorf("reference.first: %d rows of %d elements is more than %d values to hold while the reference builds: take fewer rows, or build a reference file", w.Reference.First, w.MaxElements, MaxDriftReferenceValues)
	}
	for field, names := range map[string][]string{"inputs": d.Inputs, "outputs": derefStrings(d.Outputs)} {
		seen := map[string]bool{}
		for i, n := range names {
			if n == "" || seen[n] {
				return fmt.Errorf("%s[%d]: %q is empty or given twice", field, i, n)
			}
			seen[n] = true
		}
	}
	return nil
}

func derefStrings(p *[]string) []string {
	if p == nil {
		return nil
	}
	return *p
}

// VersionPolicy is Triton's version_policy: at most one of its fields.
type VersionPolicy struct {
	Latest *struct {
		NumVersions int `yaml:"num_versions"`
	} `yaml:"latest"`
	All      *struct{} `yaml:"all"`
	Specific *struct {
		Versions []int64 `yaml:"versions"`
	} `yaml:"specific"`
}

// InstanceGroup is one of Triton's instance groups.
type InstanceGroup struct {
	// Count is the number of executions that may run at once. Default 1
	// when the group is given.
	Count int `yaml:"count"`
	// Kind is KIND_CPU (default) or KIND_GPU.
	Kind string `yaml:"kind"`
	// GPUs lists the device of a KIND_GPU group (one device per model).
	GPUs []int `yaml:"gpus"`
}

// Optimization is the part of Triton's optimization section infergate uses.
type Optimization struct {
	ExecutionAccelerators struct {
		// GPUExecutionAccelerator lists "tensorrt" and/or "cuda", most
		// preferred first, each with ONNX Runtime provider options.
		GPUExecutionAccelerator []Accelerator `yaml:"gpu_execution_accelerator"`
	} `yaml:"execution_accelerators"`
	// AllowCPUFallback (infergate's) loads the model on the CPU when a GPU
	// provider cannot be added. Default false: the load fails instead.
	AllowCPUFallback bool `yaml:"allow_cpu_fallback"`
}

// WarmupSample is one of Triton's model_warmup entries.
type WarmupSample struct {
	Name string `yaml:"name"`
	// BatchSize is the batch of the sample's inputs when the model has a
	// batch axis. Default 1.
	BatchSize int `yaml:"batch_size"`
	// Count is how many times the sample runs. Default 1.
	Count int `yaml:"count"`
	// Inputs give every model input, by name.
	Inputs map[string]WarmupInput `yaml:"inputs"`
}

// WarmupInput is the data of one warmup input: zeros or random values of
// the given type and dims (without the batch dimension).
type WarmupInput struct {
	DataType   string  `yaml:"data_type"`
	Dims       []int64 `yaml:"dims"`
	ZeroData   bool    `yaml:"zero_data"`
	RandomData bool    `yaml:"random_data"`
}

// Enable is a section that only switches a feature on.
type Enable struct {
	Enable bool `yaml:"enable"`
}

// DynamicBatching is Triton's dynamic_batching section.
type DynamicBatching struct {
	// PreferredBatchSize lists batch sizes worth holding requests back
	// for, up to MaxQueueDelayMicroseconds. Default none: never hold back.
	PreferredBatchSize []int `yaml:"preferred_batch_size"`
	// MaxQueueDelayMicroseconds bounds the hold-back for a preferred size.
	MaxQueueDelayMicroseconds int64 `yaml:"max_queue_delay_microseconds"`
	// DefaultQueuePolicy bounds the queue and its timeouts.
	DefaultQueuePolicy QueuePolicy `yaml:"default_queue_policy"`
	// PriorityLevels is the number of priority levels, 1 the highest.
	// Default 0: one level, request priorities ignored.
	PriorityLevels int `yaml:"priority_levels"`
	// DefaultPriorityLevel is the level of requests that give none.
	// Default: the lowest.
	DefaultPriorityLevel int `yaml:"default_priority_level"`
	// RejectStatus (infergate's) is the status of a full-queue rejection:
	// 503 (default) or 429. Both carry Retry-After.
	RejectStatus int `yaml:"reject_status"`
}

// QueuePolicy is Triton's default_queue_policy.
type QueuePolicy struct {
	// TimeoutAction is REJECT (default) or DELAY.
	TimeoutAction string `yaml:"timeout_action"`
	// DefaultTimeoutMicroseconds is the queue timeout of requests that
	// give none. Default 0: none.
	DefaultTimeoutMicroseconds int64 `yaml:"default_timeout_microseconds"`
	// AllowTimeoutOverride lets a request's "timeout" parameter set a
	// shorter queue timeout.
	AllowTimeoutOverride bool `yaml:"allow_timeout_override"`
	// MaxQueueSize bounds the queued requests. Default 0 means
	// batching.DefaultMaxQueueSize (1024): unlike Triton, never unbounded.
	MaxQueueSize int `yaml:"max_queue_size"`
}

// Accelerator is an execution provider and its ONNX Runtime options.
type Accelerator struct {
	Name       string            `yaml:"name"`
	Parameters map[string]string `yaml:"parameters"`
}

// TensorConfig pins an input or output.
type TensorConfig struct {
	Name     string  `yaml:"name"`
	DataType string  `yaml:"data_type"`
	Dims     []int64 `yaml:"dims"`
}

// Parameter is a parameter value: a YAML scalar, or Triton's
// {string_value: "..."} form.
type Parameter string

// UnmarshalYAML accepts both forms of a parameter value.
func (p *Parameter) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*p = Parameter(n.Value)
		return nil
	case yaml.MappingNode:
		var v struct {
			StringValue *string `yaml:"string_value"`
		}
		dec := n.Decode
		if err := dec(&v); err != nil {
			return err
		}
		if v.StringValue == nil || len(n.Content) != 2 {
			return fmt.Errorf("line %d: a parameter is a scalar or {string_value: ...}", n.Line)
		}
		*p = Parameter(*v.StringValue)
		return nil
	}
	return fmt.Errorf("line %d: a parameter is a scalar or {string_value: ...}", n.Line)
}

// LoadConfig reads and validates a config.yaml. Unknown fields are errors.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(b)
}

// ParseConfig decodes and validates a config.yaml document.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

var knownParameters = map[string]bool{
	"intra_op_thread_count":    true,
	"inter_op_thread_count":    true,
	"graph_optimization_level": true,
}

func (c *Config) validate() error {
	if c.Platform != "" && c.Platform != Platform {
		return fmt.Errorf("platform: %q is not supported (want %s)", c.Platform, Platform)
	}
	if c.Backend != "" && c.Backend != "onnxruntime" {
		return fmt.Errorf("backend: %q is not supported (want onnxruntime)", c.Backend)
	}
	if c.MaxBatchSize != nil && *c.MaxBatchSize < 0 {
		return fmt.Errorf("max_batch_size: must be 0 or more, got %d", *c.MaxBatchSize)
	}
	if c.MaxBatchSize != nil && *c.MaxBatchSize > MaxMaxBatchSize {
		return fmt.Errorf("max_batch_size: must be at most %d, got %d", MaxMaxBatchSize, *c.MaxBatchSize)
	}
	if err := c.VersionPolicy.validate(); err != nil {
		return fmt.Errorf("version_policy: %w", err)
	}
	gpu, instances := false, 0
	for i, g := range c.InstanceGroup {
		switch g.Kind {
		case "", "KIND_CPU", "KIND_AUTO":
			if len(g.GPUs) > 0 {
				return fmt.Errorf("instance_group[%d].gpus: only a KIND_GPU group takes gpus", i)
			}
		case "KIND_GPU":
			gpu = true
			if len(g.GPUs) > 1 {
				return fmt.Errorf("instance_group[%d].gpus: one GPU per model is supported, got %v", i, g.GPUs)
			}
		default:
			return fmt.Errorf("instance_group[%d].kind: unknown kind %q (want KIND_CPU or KIND_GPU)", i, g.Kind)
		}
		if g.Count < 0 {
			return fmt.Errorf("instance_group[%d].count: must be 1 or more, got %d", i, g.Count)
		}
		if instances += g.Count; g.Count > MaxInstances() || instances > MaxInstances() {
			return fmt.Errorf("instance_group[%d].count: %d instances in all is more than the %d this machine allows (%d a core)", i, instances, MaxInstances(), maxInstancesPerCore)
		}
	}
	for k, v := range c.Parameters {
		if !knownParameters[k] {
			return fmt.Errorf("parameters.%s: unknown parameter (want intra_op_thread_count, inter_op_thread_count or graph_optimization_level)", k)
		}
		if k != "graph_optimization_level" {
			if n, err := strconv.Atoi(string(v)); err != nil || n < 1 {
				return fmt.Errorf("parameters.%s: want a positive integer, got %q", k, v)
			} else if n > MaxThreads() {
				return fmt.Errorf("parameters.%s: %d is more than the %d threads this machine allows (%d a core)", k, n, MaxThreads(), maxThreadsPerCore)
			}
		}
	}
	for i, a := range c.Optimization.ExecutionAccelerators.GPUExecutionAccelerator {
		if a.Name != "tensorrt" && a.Name != "cuda" {
			return fmt.Errorf("optimization.execution_accelerators.gpu_execution_accelerator[%d].name: unknown accelerator %q (want tensorrt or cuda)", i, a.Name)
		}
		if !gpu {
			return fmt.Errorf("optimization.execution_accelerators.gpu_execution_accelerator[%d]: needs an instance_group of kind KIND_GPU", i)
		}
	}
	for label, v := range c.VersionLabels {
		if !labelName.MatchString(label) {
			return fmt.Errorf("version_labels.%s: a label is letters, digits, '_', '.' and '-'", label)
		}
		if v < 1 {
			return fmt.Errorf("version_labels.%s: %d is not a positive version", label, v)
		}
	}
	for i, w := range c.ModelWarmup {
		if w.BatchSize < 0 || w.Count < 0 {
			return fmt.Errorf("model_warmup[%d]: batch_size and count must not be negative", i)
		}
		if w.Count > MaxWarmupCount {
			return fmt.Errorf("model_warmup[%d].count: must be at most %d, got %d", i, MaxWarmupCount, w.Count)
		}
		if len(w.Inputs) == 0 {
			return fmt.Errorf("model_warmup[%d].inputs: give every model input", i)
		}
		for name, in := range w.Inputs {
			if runtime.ParseConfigDataType(in.DataType) == runtime.Invalid {
				return fmt.Errorf("model_warmup[%d].inputs.%s.data_type: unknown type %q", i, name, in.DataType)
			}
			if in.ZeroData == in.RandomData {
				return fmt.Errorf("model_warmup[%d].inputs.%s: give one of zero_data or random_data", i, name)
			}
			n := int64(max(w.BatchSize, 1))
			for _, d := range in.Dims {
				if d < 1 {
					return fmt.Errorf("model_warmup[%d].inputs.%s.dims: %v has a dimension that is not positive", i, name, in.Dims)
				}
				if n *= min(d, MaxWarmupElements+1); n > MaxWarmupElements {
					return fmt.Errorf("model_warmup[%d].inputs.%s: batch_size %d × dims %v is more than %d elements", i, name, w.BatchSize, in.Dims, MaxWarmupElements)
				}
			}
		}
	}
	if err := c.DynamicBatching.validate(); err != nil {
		return fmt.Errorf("dynamic_batching.%w", err)
	}
	if err := c.Monitoring.Drift.validate(); err != nil {
		return fmt.Errorf("monitoring.drift.%w", err)
	}
	for field, list := range map[string][]TensorConfig{"input": c.Input, "output": c.Output} {
		seen := map[string]bool{}
		for i, t := range list {
			switch {
			case t.Name == "":
				return fmt.Errorf("%s[%d].name: required", field, i)
			case seen[t.Name]:
				return fmt.Errorf("%s[%d].name: %q given twice", field, i, t.Name)
			case t.DataType != "" && runtime.ParseConfigDataType(t.DataType) == runtime.Invalid:
				return fmt.Errorf("%s[%d].data_type: unknown type %q (want TYPE_FP32, TYPE_INT64, ...)", field, i, t.DataType)
			}
			seen[t.Name] = true
			for _, d := range t.Dims {
				if d < -1 || d == 0 {
					return fmt.Errorf("%s[%d].dims: %v has a dimension that is not positive or -1", field, i, t.Dims)
				}
			}
		}
	}
	return nil
}

func (d *DynamicBatching) validate() error {
	if d == nil {
		return nil
	}
	for _, p := range d.PreferredBatchSize {
		if p < 1 {
			return fmt.Errorf("preferred_batch_size: %d is not positive", p)
		}
	}
	switch {
	case d.MaxQueueDelayMicroseconds < 0:
		return fmt.Errorf("max_queue_delay_microseconds: must not be negative, got %d", d.MaxQueueDelayMicroseconds)
	case d.MaxQueueDelayMicroseconds > MaxQueueDelay:
		return fmt.Errorf("max_queue_delay_microseconds: must be at most %d (a minute), got %d", MaxQueueDelay, d.MaxQueueDelayMicroseconds)
	case d.PriorityLevels < 0 || d.PriorityLevels > MaxPriorityLevels:
		return fmt.Errorf("priority_levels: must be in 0..%d, got %d", MaxPriorityLevels, d.PriorityLevels)
	case d.DefaultPriorityLevel < 0 || d.DefaultPriorityLevel > max(d.PriorityLevels, 1):
		return fmt.Errorf("default_priority_level: %d is outside 1..%d", d.DefaultPriorityLevel, max(d.PriorityLevels, 1))
	case d.RejectStatus != 0 && d.RejectStatus != 503 && d.RejectStatus != 429:
		return fmt.Errorf("reject_status: want 503 or 429, got %d", d.RejectStatus)
	case d.DefaultQueuePolicy.TimeoutAction != "" && d.DefaultQueuePolicy.TimeoutAction != "REJECT" && d.DefaultQueuePolicy.TimeoutAction != "DELAY":
		return fmt.Errorf("default_queue_policy.timeout_action: want REJECT or DELAY, got %q", d.DefaultQueuePolicy.TimeoutAction)
	case d.DefaultQueuePolicy.DefaultTimeoutMicroseconds < 0:
		return fmt.Errorf("default_queue_policy.default_timeout_microseconds: must not be negative, got %d", d.DefaultQueuePolicy.DefaultTimeoutMicroseconds)
	case d.DefaultQueuePolicy.MaxQueueSize < 0 || d.DefaultQueuePolicy.MaxQueueSize > MaxQueueSize:
		return fmt.Errorf("default_queue_policy.max_queue_size: must be in 0..%d, got %d", MaxQueueSize, d.DefaultQueuePolicy.MaxQueueSize)
	}
	for _, p := range d.PreferredBatchSize {
		if p > MaxMaxBatchSize {
			return fmt.Errorf("preferred_batch_size: %d is more than %d", p, MaxMaxBatchSize)
		}
	}
	return nil
}

// batchingOptions maps the section onto the scheduler's options.
func (d *DynamicBatching) batchingOptions(maxBatch, instances int) *batching.Options {
	q := d.DefaultQueuePolicy
	return &batching.Options{
		MaxBatchSize:         maxBatch,
		Instances:            instances,
		PreferredBatchSizes:  d.PreferredBatchSize,
		MaxQueueDelay:        time.Duration(d.MaxQueueDelayMicroseconds) * time.Microsecond,
		MaxQueueSize:         q.MaxQueueSize,
		DefaultTimeout:       time.Duration(q.DefaultTimeoutMicroseconds) * time.Microsecond,
		AllowTimeoutOverride: q.AllowTimeoutOverride,
		DelayOnTimeout:       q.TimeoutAction == "DELAY",
		PriorityLevels:       d.PriorityLevels,
		DefaultPriority:      d.DefaultPriorityLevel,
		RejectKind:           rejectKind(d.RejectStatus),
	}
}

// rejectKind is the failure kind of reject_status (validated: 0, 503 or
// 429).
func rejectKind(status int) errdefs.Kind {
	if status == 429 {
		return errdefs.Throttled
	}
	return errdefs.Overloaded
}

func (p *VersionPolicy) validate() error {
	n := 0
	if p.Latest != nil {
		n++
		if p.Latest.NumVersions < 1 {
			return fmt.Errorf("latest.num_versions: must be 1 or more, got %d", p.Latest.NumVersions)
		}
	}
	if p.All != nil {
		n++
	}
	if p.Specific != nil {
		n++
		if len(p.Specific.Versions) == 0 {
			return errors.New("specific.versions: list at least one version")
		}
		for _, v := range p.Specific.Versions {
			if v < 1 {
				return fmt.Errorf("specific.versions: %d is not a positive version", v)
			}
		}
	}
	if n > 1 {
		return errors.New("give one of latest, all or specific")
	}
	return nil
}

// selectVersions applies the policy to the versions found on disk, sorted
// ascending, and returns the versions to load, ascending.
func (p *VersionPolicy) selectVersions(found []int64) []int64 {
	switch {
	case p.All != nil:
		return found
	case p.Specific != nil:
		out := append([]int64{}, p.Specific.Versions...)
		slices.Sort(out)
		return out
	}
	n := 1
	if p.Latest != nil {
		n = p.Latest.NumVersions
	}
	if len(found) <= n {
		return found
	}
	return found[len(found)-n:]
}

// labelName is what a version label may be called.
var labelName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)

// ParseConfigJSON decodes a configuration given as JSON (the repository
// API's parameters.config), with the same field names and checks.
func ParseConfigJSON(b []byte) (*Config, error) {
	return ParseConfig(b) // JSON is YAML
}

// SessionOptions maps the config (nil: none) onto ONNX Runtime's session
// options.
func (c *Config) SessionOptions() runtime.SessionOptions { return c.sessionOptions() }

// sessionOptions maps the config onto ONNX Runtime's session options.
func (c *Config) sessionOptions() runtime.SessionOptions {
	var o runtime.SessionOptions
	if c == nil {
		return o
	}
	if v, ok := c.Parameters["intra_op_thread_count"]; ok {
		o.IntraOpThreads, _ = strconv.Atoi(string(v))
	}
	if v, ok := c.Parameters["inter_op_thread_count"]; ok {
		o.InterOpThreads, _ = strconv.Atoi(string(v))
	}
	o.GraphOptimization = string(c.Parameters["graph_optimization_level"])
	gpu := -1
	for _, g := range c.InstanceGroup {
		count := g.Count
		if count == 0 {
			count = 1
		}
		o.Instances += count
		if g.Kind == "KIND_GPU" {
			gpu = 0
			if len(g.GPUs) == 1 {
				gpu = g.GPUs[0]
			}
		}
	}
	if gpu < 0 {
		return o
	}
	device := strconv.Itoa(gpu)
	hasCUDA := false
	for _, a := range c.Optimization.ExecutionAccelerators.GPUExecutionAccelerator {
		opts := map[string]string{"device_id": device}
		for k, v := range a.Parameters {
			opts[k] = v
		}
		o.Providers = append(o.Providers, runtime.Provider{Name: a.Name, Options: opts})
		hasCUDA = hasCUDA || a.Name == "cuda"
	}
	if !hasCUDA {
		// A KIND_GPU instance runs on CUDA, as in Triton, after any
		// accelerator listed above it.
		o.Providers = append(o.Providers, runtime.Provider{Name: "cuda", Options: map[string]string{"device_id": device}})
	}
	o.AllowCPUFallback = c.Optimization.AllowCPUFallback
	return o
}
