package repository

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/infergate/infergate/batching"
	"github.com/infergate/infergate/runtime"
)

// ModelFile is the file name of a version's model.
const ModelFile = "model.onnx"

// ConfigFile is the file name of a model's optional configuration.
const ConfigFile = "config.yaml"

// Error is a lookup error with the HTTP status the protocol layer answers:
// 404 for an unknown model or version, 503 for one that is not ready.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// State is a version's lifecycle state, named as in Triton's repository
// index.
type State string

// The states of a version.
const (
	StateReady       State = "READY"
	StateUnavailable State = "UNAVAILABLE"
)

// modelName is what a model directory may be called.
var modelName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// Options configure a Repository.
type Options struct {
	// Root is the model repository directory. Required.
	Root string
	// Runtime loads the models. Required.
	Runtime *runtime.Environment
	// Logger receives load and skip events. Default: discard.
	Logger *slog.Logger
	// Cache is the response cache for the models that enable it. Nil:
	// such models fail to load, with the reason.
	Cache *batching.Cache
}

// Repository is the set of models found under a root directory.
type Repository struct {
	root  string
	env   *runtime.Environment
	log   *slog.Logger
	cache *batching.Cache

	mu     sync.RWMutex
	models map[string]*Model
}

// Model is one model: a directory of versions sharing a config.
type Model struct {
	Name string
	// Config is the model's config.yaml, or nil when it has none.
	Config *Config
	// Reason says why the whole model is unavailable (bad config, no
	// versions); empty otherwise.
	Reason string
	// versions are those the version policy selected, ascending.
	versions []*Version
}

// Version is one loaded (or failed) version of a model.
type Version struct {
	Model  string
	Number int64
	State  State
	// Reason says why the version is unavailable.
	Reason string
	// Session runs the version; nil unless READY.
	Session *runtime.Session
	// Executor takes the version's requests: response cache, coalescing,
	// dynamic batching, as its config asks. Nil unless READY.
	Executor *batching.Executor
	// Inputs and Outputs are the tensors as served: the model's own,
	// with the batch dimension (-1) first when Batched and dims pinned by
	// the config.
	Inputs  []runtime.TensorInfo
	Outputs []runtime.TensorInfo
	// Batched says the leading dimension of every input and output is the
	// batch. MaxBatchSize bounds it; 0 means no bound.
	Batched      bool
	MaxBatchSize int
	// LoadTime is how long the load took.
	LoadTime time.Duration
}

// Open scans root and loads every model it finds. Models that fail to load
// are kept as unavailable; Open fails only when root cannot be read.
func Open(ctx context.Context, opts Options) (*Repository, error) {
	if opts.Runtime == nil {
		return nil, errors.New("repository: no runtime")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root, err := filepath.Abs(opts.Root)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, fmt.Errorf("model repository %s: %w", opts.Root, err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("model repository %s: %w", opts.Root, err)
	}
	r := &Repository{root: root, env: opts.Runtime, log: log, cache: opts.Cache, models: map[string]*Model{}}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			r.Close()
			return nil, err
		}
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if !modelName.MatchString(name) {
			log.Warn("skipping entry: not a valid model name", "entry", name)
			continue
		}
		dir, err := r.inside(filepath.Join(root, name))
		if err != nil {
			log.Warn("skipping entry", "entry", name, "err", err)
			continue
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			log.Warn("skipping entry: not a directory", "entry", name)
			continue
		}
		r.models[name] = r.loadModel(ctx, name, dir)
	}
	return r, nil
}

// inside resolves symbolic links in path and fails if the result is
// outside the repository root.
func (r *Repository) inside(path string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(r.root, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s points outside the model repository", path)
	}
	return real, nil
}

func (r *Repository) loadModel(ctx context.Context, name, dir string) *Model {
	m := &Model{Name: name}
	cfgPath := filepath.Join(dir, ConfigFile)
	if _, err := os.Lstat(cfgPath); err == nil {
		real, err := r.inside(cfgPath)
		if err == nil {
			m.Config, err = LoadConfig(real)
		}
		if err == nil && m.Config.Name != "" && m.Config.Name != name {
			err = fmt.Errorf("name: %q does not match the directory name", m.Config.Name)
		}
		if err != nil {
			m.Reason = fmt.Sprintf("%s: %v", ConfigFile, err)
			r.log.Error("model unavailable", "model", name, "reason", m.Reason)
			return m
		}
	}
	found := r.scanVersions(name, dir)
	policy := VersionPolicy{}
	if m.Config != nil {
		policy = m.Config.VersionPolicy
	}
	selected := policy.selectVersions(found)
	if len(selected) == 0 {
		m.Reason = "no versions: expected <model>/<version>/" + ModelFile
		r.log.Error("model unavailable", "model", name, "reason", m.Reason)
		return m
	}
	for _, n := range selected {
		m.versions = append(m.versions, r.loadVersion(ctx, m, dir, n, slices.Contains(found, n)))
	}
	return m
}

// scanVersions returns the version numbers found in a model directory,
// ascending. Other entries are skipped with a log line.
func (r *Repository) scanVersions(model, dir string) []int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		r.log.Error("cannot read model directory", "model", model, "err", err)
		return nil
	}
	var out []int64
	for _, e := range entries {
		name := e.Name()
		if name == ConfigFile || strings.HasPrefix(name, ".") {
			continue
		}
		n, err := strconv.ParseInt(name, 10, 64)
		if err != nil || n < 1 || strconv.FormatInt(n, 10) != name {
			r.log.Warn("skipping entry: not a positive version number", "model", model, "entry", name)
			continue
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (r *Repository) loadVersion(ctx context.Context, m *Model, dir string, n int64, exists bool) *Version {
	v := &Version{Model: m.Name, Number: n, State: StateUnavailable}
	start := time.Now()
	err := func() error {
		if !exists {
			return errors.New("version directory not found")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		path, err := r.inside(filepath.Join(dir, strconv.FormatInt(n, 10), ModelFile))
		if err != nil {
			return err
		}
		s, err := r.env.NewSession(path, m.Config.sessionOptions())
		if err != nil {
			return err
		}
		if err := v.resolve(m.Config, s); err != nil {
			s.Close()
			return err
		}
		e, err := r.executor(m.Config, v, s)
		if err != nil {
			s.Close()
			return err
		}
		v.Session, v.Executor = s, e
		return nil
	}()
	v.LoadTime = time.Since(start)
	if err != nil {
		v.Reason = err.Error()
		r.log.Error("version unavailable", "model", m.Name, "version", n, "reason", v.Reason)
		return v
	}
	v.State = StateReady
	r.log.Info("loaded", "model", m.Name, "version", n, "providers", v.Session.Providers(),
		"batched", v.Batched, "dynamic_batching", v.Executor.Batching(), "duration", v.LoadTime.Round(time.Millisecond))
	return v
}

// executor builds the version's request path from its config.
func (r *Repository) executor(c *Config, v *Version, s *runtime.Session) (*batching.Executor, error) {
	opts := batching.ExecutorOptions{Model: v.Model, Version: v.Number}
	if c != nil {
		opts.Coalesce = c.RequestCoalescing.Enable
		if c.ResponseCache.Enable {
			if r.cache == nil {
				return nil, errors.New("response_cache is enabled, but the gateway has no response cache: set response_cache.max_entries in its configuration (--response-cache-entries)")
			}
			opts.Cache = r.cache
		}
		if c.DynamicBatching != nil {
			if !v.Batched || v.MaxBatchSize == 0 {
				return nil, errors.New("dynamic_batching needs max_batch_size > 0")
			}
			opts.Batching = c.DynamicBatching.batchingOptions(v.MaxBatchSize, s.Instances())
		}
	}
	return batching.NewExecutor(s, opts)
}

// resolve sets the version's served signature from the model's own and
// its config.
func (v *Version) resolve(c *Config, s *runtime.Session) error {
	v.Inputs = cloneInfos(s.Inputs())
	v.Outputs = cloneInfos(s.Outputs())
	leadingVariable := true
	for _, t := range append(append([]runtime.TensorInfo{}, v.Inputs...), v.Outputs...) {
		if len(t.Shape) == 0 || t.Shape[0] != -1 {
			leadingVariable = false
		}
	}
	switch {
	case c == nil || c.MaxBatchSize == nil:
		v.Batched = leadingVariable
	case *c.MaxBatchSize > 0:
		if !leadingVariable {
			return fmt.Errorf("max_batch_size is %d, but not every input and output has a variable leading dimension", *c.MaxBatchSize)
		}
		v.Batched, v.MaxBatchSize = true, *c.MaxBatchSize
	}
	if c == nil {
		return nil
	}
	for kind, pins := range map[string][]TensorConfig{"input": c.Input, "output": c.Output} {
		infos := v.Inputs
		if kind == "output" {
			infos = v.Outputs
		}
		for _, pin := range pins {
			i := slices.IndexFunc(infos, func(t runtime.TensorInfo) bool { return t.Name == pin.Name })
			if i < 0 {
				return fmt.Errorf("%s %q in %s is not a %s of the model", kind, pin.Name, ConfigFile, kind)
			}
			if err := pinTensor(&infos[i], pin, v.Batched); err != nil {
				return fmt.Errorf("%s %q: %w", kind, pin.Name, err)
			}
		}
	}
	return nil
}

func pinTensor(t *runtime.TensorInfo, pin TensorConfig, batched bool) error {
	if pin.DataType != "" {
		if dt := runtime.ParseConfigDataType(pin.DataType); dt != t.DataType {
			return fmt.Errorf("%s gives data_type %s, the model has %s", ConfigFile, pin.DataType, t.DataType.ConfigName())
		}
	}
	if pin.Dims == nil {
		return nil
	}
	model := t.Shape
	if batched {
		model = model[1:]
	}
	if len(pin.Dims) != len(model) {
		return fmt.Errorf("%s gives dims %v, the model has %d dimensions%s", ConfigFile, pin.Dims, len(model), map[bool]string{true: " besides the batch", false: ""}[batched])
	}
	for i, d := range pin.Dims {
		if model[i] != -1 && d != model[i] {
			return fmt.Errorf("%s gives dims %v, the model has %v", ConfigFile, pin.Dims, model)
		}
	}
	if batched {
		t.Shape = append([]int64{-1}, pin.Dims...)
	} else {
		t.Shape = append([]int64{}, pin.Dims...)
	}
	return nil
}

func cloneInfos(in []runtime.TensorInfo) []runtime.TensorInfo {
	out := make([]runtime.TensorInfo, len(in))
	for i, t := range in {
		out[i] = t
		out[i].Shape = append([]int64{}, t.Shape...)
	}
	return out
}

// Model returns the named model, or a 404 *Error.
func (r *Repository) Model(name string) (*Model, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.models[name]
	if !ok {
		return nil, &Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("unknown model %q", name)}
	}
	return m, nil
}

// Models returns every model, sorted by name.
func (r *Repository) Models() []*Model {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Model, 0, len(r.models))
	for _, m := range r.models {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *Model) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Ready reports whether every version of every model is ready.
func (r *Repository) Ready() bool {
	for _, m := range r.Models() {
		if m.Reason != "" {
			return false
		}
		for _, v := range m.versions {
			if v.State != StateReady {
				return false
			}
		}
	}
	return true
}

// Close releases every version's session, waiting for the runs in flight.
func (r *Repository) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, m := range r.models {
		for _, v := range m.versions {
			if v.Executor != nil {
				v.Executor.Close()
			}
			if v.Session != nil {
				errs = append(errs, v.Session.Close())
			}
		}
	}
	r.models = map[string]*Model{}
	return errors.Join(errs...)
}

// Versions returns the versions the policy selected, ascending, whatever
// their state.
func (m *Model) Versions() []*Version { return m.versions }

// Version returns version n, or with n == 0 the default version: the
// highest ready one. It fails with an *Error: 404 for a version the model
// does not serve, 503 for one that is not ready.
func (m *Model) Version(n int64) (*Version, error) {
	if n == 0 {
		for i := len(m.versions) - 1; i >= 0; i-- {
			if m.versions[i].State == StateReady {
				return m.versions[i], nil
			}
		}
		return nil, m.notReady()
	}
	for _, v := range m.versions {
		if v.Number != n {
			continue
		}
		if v.State != StateReady {
			return nil, &Error{Status: http.StatusServiceUnavailable, Msg: fmt.Sprintf("model %q version %d is not ready: %s", m.Name, n, v.Reason)}
		}
		return v, nil
	}
	return nil, &Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("model %q has no version %d", m.Name, n)}
}

func (m *Model) notReady() error {
	reason := m.Reason
	if reason == "" && len(m.versions) > 0 {
		reason = m.versions[len(m.versions)-1].Reason
	}
	return &Error{Status: http.StatusServiceUnavailable, Msg: fmt.Sprintf("model %q is not ready: %s", m.Name, reason)}
}
