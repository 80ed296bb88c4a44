package repository

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infergate/infergate/errdefs"
)

func TestConfigFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want string // error text; empty for a good fixture
	}{
		{"full.good.yaml", ""},
		{"empty.good.yaml", ""},
		{"specific.good.yaml", ""},
		{"unknown-field.bad.yaml", "line 2: field dynamic_batchin not found in type repository.Config"},
		{"latest-zero.bad.yaml", "version_policy: latest.num_versions: must be 1 or more, got 0"},
		{"two-policies.bad.yaml", "version_policy: give one of latest, all or specific"},
		{"bad-kind.bad.yaml", `instance_group[0].kind: unknown kind "KIND_TPU" (want KIND_CPU or KIND_GPU)`},
		{"bad-threads.bad.yaml", `parameters.intra_op_thread_count: want a positive integer, got "many"`},
		{"unknown-parameter.bad.yaml", "parameters.enable_turbo: unknown parameter"},
		{"accelerator-on-cpu.bad.yaml", "optimization.execution_accelerators.gpu_execution_accelerator[0]: needs an instance_group of kind KIND_GPU"},
		{"bad-datatype.bad.yaml", `input[0].data_type: unknown type "TYPE_FLOAT"`},
		{"bad-platform.bad.yaml", `platform: "tensorflow_savedmodel" is not supported (want onnxruntime_onnx)`},
		{"negative-batch.bad.yaml", "max_batch_size: must be 0 or more, got -1"},
		{"bad-parameter-form.bad.yaml", "line 2: a parameter is a scalar or {string_value: ...}"},
		{"dynamic.good.yaml", ""},
		{"bad-timeout-action.bad.yaml", `dynamic_batching.default_queue_policy.timeout_action: want REJECT or DELAY, got "DROP"`},
		{"bad-reject-status.bad.yaml", "dynamic_batching.reject_status: want 503 or 429, got 500"},
		{"bad-default-priority.bad.yaml", "dynamic_batching.default_priority_level: 3 is outside 1..2"},
		{"zero-dim.bad.yaml", "input[0].dims: [0 4] has a dimension that is not positive or -1"},
		{"drift.good.yaml", ""},
		{"drift-rate.bad.yaml", "monitoring.drift.sample_rate: must be in (0, 1], got 1.5"},
		{"drift-reference.bad.yaml", "monitoring.drift.reference: give one of first or file"},
		{"drift-file.bad.yaml", `monitoring.drift.reference.file: "../other/reference.json" must be a file name beside model.onnx, without a directory`},
		{"drift-unknown.bad.yaml", "line 3: field input not found in type repository.DriftConfig"},
		{"drift-too-big.bad.yaml", "monitoring.drift.reference.first: 100000 rows of 256 elements is more than 16777216 values to hold while the reference builds"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			_, err := LoadConfig(filepath.Join("testdata", "config", tt.file))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
	// Every fixture is in the table.
	files, _ := filepath.Glob(filepath.Join("testdata", "config", "*.yaml"))
	if len(files) != len(tests) {
		t.Errorf("%d fixtures on disk, %d in the table", len(files), len(tests))
	}
}

func TestConfigSessionOptions(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig(filepath.Join("testdata", "config", "full.good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	o := c.sessionOptions()
	if o.Instances != 2 || o.IntraOpThreads != 2 || o.InterOpThreads != 1 || o.GraphOptimization != "extended" {
		t.Errorf("got %+v", o)
	}
	if len(o.Providers) != 2 || o.Providers[0].Name != "tensorrt" || o.Providers[1].Name != "cuda" ||
		o.Providers[0].Options["trt_fp16_enable"] != "1" || o.Providers[1].Options["device_id"] != "0" {
		t.Errorf("got providers %+v, want tensorrt then cuda on device 0", o.Providers)
	}
}

func TestBatchingOptions(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig(filepath.Join("testdata", "config", "dynamic.good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	o := c.DynamicBatching.batchingOptions(64, 2)
	if o.MaxBatchSize != 64 || o.Instances != 2 || len(o.PreferredBatchSizes) != 2 || o.MaxQueueDelay.Microseconds() != 500 ||
		!o.DelayOnTimeout || o.DefaultTimeout.Milliseconds() != 100 || !o.AllowTimeoutOverride || o.MaxQueueSize != 256 ||
		o.PriorityLevels != 2 || o.DefaultPriority != 2 || o.RejectKind != errdefs.Throttled {
		t.Errorf("got %+v", o)
	}
	if !c.ResponseCache.Enable || !c.RequestCoalescing.Enable {
		t.Errorf("response_cache %v, request_coalescing %v", c.ResponseCache, c.RequestCoalescing)
	}
}

func TestVersionPolicy(t *testing.T) {
	t.Parallel()
	found := []int64{1, 2, 5, 7}
	tests := []struct {
		name string
		yaml string
		want []int64
	}{
		{"default is latest 1", "", []int64{7}},
		{"latest 2", "version_policy: {latest: {num_versions: 2}}", []int64{5, 7}},
		{"latest more than found", "version_policy: {latest: {num_versions: 9}}", []int64{1, 2, 5, 7}},
		{"all", "version_policy: {all: {}}", []int64{1, 2, 5, 7}},
		{"specific", "version_policy: {specific: {versions: [5, 1, 3]}}", []int64{1, 3, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseConfig([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			got := c.VersionPolicy.selectVersions(found)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestConfigBounds: every numeric field is bounded, so that one model's
// config fails its own load with a field-path error instead of taking the
// server down (issue 11, defect 11).
func TestConfigBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, want string
	}{
		{"threads", "parameters: {intra_op_thread_count: 100000}", "parameters.intra_op_thread_count: 100000 is more than the"},
		{"inter-op threads", "parameters: {inter_op_thread_count: 100000}", "parameters.inter_op_thread_count: 100000 is more than the"},
		{"instances", "instance_group: [{count: 100000}]", "instance_group[0].count: 100000 instances in all is more than the"},
		{"instances in all", fmt.Sprintf("instance_group: [{count: %d}, {count: 1}]", MaxInstances()), fmt.Sprintf("instance_group[1].count: %d instances in all", MaxInstances()+1)},
		{"priority levels", "dynamic_batching: {priority_levels: 100000000}", "dynamic_batching.priority_levels: must be in 0..256, got 100000000"},
		{"queue size", "dynamic_batching: {default_queue_policy: {max_queue_size: 100000000}}", "dynamic_batching.default_queue_policy.max_queue_size: must be in 0..1048576"},
		{"queue delay", "dynamic_batching: {max_queue_delay_microseconds: 100000000000}", "dynamic_batching.max_queue_delay_microseconds: must be at most"},
		{"batch size", "max_batch_size: 100000000", "max_batch_size: must be at most 65536"},
		{"warmup count", "model_warmup: [{name: w, count: 100000, inputs: {x: {data_type: TYPE_FP32, dims: [4], zero_data: true}}}]", "model_warmup[0].count: must be at most 1000"},
		{"warmup size", "model_warmup: [{name: w, batch_size: 64, inputs: {x: {data_type: TYPE_FP32, dims: [100000, 100000], zero_data: true}}}]", "model_warmup[0].inputs.x: batch_size 64 × dims [100000 100000] is more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseConfig([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
	// The largest allowed values load.
	ok := fmt.Sprintf("max_batch_size: 65536\nparameters: {intra_op_thread_count: %d}\ninstance_group: [{count: %d}]\ndynamic_batching: {priority_levels: 256}\n", MaxThreads(), MaxInstances())
	if _, err := ParseConfig([]byte(ok)); err != nil {
		t.Errorf("the largest allowed values: %v", err)
	}
}

// FuzzParseConfig: no config.yaml panics the decoder or the validation,
// and one that validates can be turned into batching options without an
// error and within the documented bounds (issue 11, defect 11).
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		"max_batch_size: 64\ndynamic_batching: {preferred_batch_size: [8, 16], max_queue_delay_microseconds: 500, priority_levels: 2, default_priority_level: 2, default_queue_policy: {max_queue_size: 256, timeout_action: DELAY, default_timeout_microseconds: 100000, allow_timeout_override: true}, reject_status: 429}\n",
		"instance_group: [{count: 2, kind: KIND_CPU}]\nparameters: {intra_op_thread_count: 2}\nversion_policy: {specific: {versions: [1, 3]}}\n",
		"response_cache: {enable: true}\nrequest_coalescing: {enable: true}\nmodel_warmup: [{name: w, batch_size: 4, inputs: {x: {data_type: TYPE_FP32, dims: [4], zero_data: true}}}]\n",
		"input: [{name: x, data_type: TYPE_FP32, dims: [4]}]\noutput: [{name: y, dims: [-1]}]\n",
		"parameters: {intra_op_thread_count: 100000}\n", "dynamic_batching: {priority_levels: 100000000}\n", "max_batch_size: -1\n", "[]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil || c.DynamicBatching == nil {
			return
		}
		maxBatch := 8
		if c.MaxBatchSize != nil && *c.MaxBatchSize > 0 {
			maxBatch = *c.MaxBatchSize
		}
		o := c.DynamicBatching.batchingOptions(maxBatch, 1)
		if o.PriorityLevels > 256 || o.MaxQueueSize > 1<<20 || o.MaxBatchSize > 1<<16 {
			t.Fatalf("out of bounds validated: %+v", o)
		}
	})
}
