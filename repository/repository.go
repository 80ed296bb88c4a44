package repository

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/infergate/infergate/batching"
	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/runtime"
)

// ModelFile is the file name of a version's model.
const ModelFile = "model.onnx"

// ConfigFile is the file name of a model's optional configuration.
const ConfigFile = "config.yaml"

// DefaultMaxUploadBytes bounds an uploaded model file by default.
const DefaultMaxUploadBytes = 128 << 20

// RoutingFile is the file name of a model's routing document (package
// router reads and writes it); the repository only leaves it alone.
const RoutingFile = "routing.yaml"

// errorf returns a failure of kind k (package errdefs): the protocol
// layer chooses its status.
func errorf(k errdefs.Kind, format string, args ...any) *errdefs.Error {
	return errdefs.New(k, format, args...)
}

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

// Observer receives lifecycle events; the monitoring package counts them.
// Its methods are called off the request path, on the lifecycle's
// goroutines.
type Observer interface {
	// Loaded reports a version load (and warmup) and its outcome.
	Loaded(model string, version int64, took time.Duration, err error)
	// Unloaded reports a version released: "unload" (API, removed from
	// disk, or the server stopping), "replaced" (a reload swapped it),
	// "evicted" (LRU residency: it stays READY and loads again on demand).
	// It is reported after the VersionObserver of the released version is
	// closed, and also for an evicted version that is then unloaded or
	// replaced.
	Unloaded(model string, version int64, why string)
	// Resident reports the number of loaded versions after a change.
	Resident(n int)
	// Attach is called once per load of a version, after its warmup and
	// before it serves. The VersionObserver it returns receives the
	// version's request events (Version.Observer) until the version is
	// unloaded, when the repository closes it. An error fails the load
	// with that reason (a drift reference that cannot be read, say).
	Attach(info VersionInfo) (VersionObserver, error)
}

// VersionObserver receives the events of one loaded version: its
// executor's (batching.Observer) and, through Version.Observer, the
// protocol's. Close is called once, when the version has been released;
// evicted says the version stays known (READY, loaded again on demand),
// so its series stay.
type VersionObserver interface {
	batching.Observer
	Close(evicted bool)
}

// VersionInfo describes a version being loaded, for Observer.Attach.
type VersionInfo struct {
	Model   string
	Version int64
	// Path is the version's model file.
	Path string
	// Inputs and Outputs are the served signature; Batched says their
	// leading dimension is the batch.
	Inputs, Outputs []runtime.TensorInfo
	Batched         bool
	// QueueCapacity is the bound of the dynamic batcher's queue; 0
	// without dynamic batching.
	QueueCapacity int
	// Drift is the config's monitoring.drift section, nil when absent.
	Drift *DriftConfig
}

type nopObserver struct{}

func (nopObserver) Loaded(string, int64, time.Duration, error)  {}
func (nopObserver) Unloaded(string, int64, string)              {}
func (nopObserver) Resident(int)                                {}
func (nopObserver) Attach(VersionInfo) (VersionObserver, error) { return nil, nil }

// Options configure a Repository.
type Options struct {
	// Root is the model repository directory. Required.
	Root string
	// Runtime loads the models. Required.
	Runtime *runtime.Environment
	// Logger receives lifecycle events. Default: discard.
	Logger *slog.Logger
	// Cache is the response cache for the models that enable it. Nil:
	// such models fail to load, with the reason.
	Cache *batching.Cache
	// Models names the models Open loads (Triton's explicit mode with
	// --load-model). Nil loads every model found; "*" too.
	Models []string
	// PollInterval, when positive, rescans the repository that often and
	// loads, reloads or unloads what changed (Triton's poll mode).
	PollInterval time.Duration
	// MaxResidentVersions bounds the versions loaded at once across the
	// repository (ModelMesh-style residency). When a load goes past it, the
	// least recently used version that no request holds and no label
	// names is unloaded; a later request for it loads it again. 0: no
	// bound.
	MaxResidentVersions int
	// MaxOnDemandLoadsPerMinute bounds the loads of evicted versions that
	// requests cause, over any minute; a request past it gets 503 instead
	// of a load. Each load/evict cycle costs a whole model load (and leaks
	// about 126 KiB inside ONNX Runtime), so a client alternating versions
	// must not drive them without bound. 0: no bound.
	MaxOnDemandLoadsPerMinute int
	// MaxUploadBytes bounds a model file uploaded through UploadVersion,
	// and the files of a LoadModel together. Default
	// DefaultMaxUploadBytes.
	MaxUploadBytes int64
	// OverrideDir holds the override model directories that LoadModel's
	// files form (each removed when the next load replaces it, and at
	// Close). Default: os.TempDir().
	OverrideDir string
	// Observer receives lifecycle events. Default: none.
	Observer Observer
}

// Repository is the set of models found under a root directory, and the
// lifecycle of their versions.
type Repository struct {
	root  string
	env   *runtime.Environment
	log   *slog.Logger
	cache *batching.Cache
	obs   Observer
	opts  Options

	// onDemand holds the times of the latest on-demand loads, at most
	// MaxOnDemandLoadsPerMinute; guarded by lifecycle.
	onDemand []time.Time

	// lifecycle serializes loads, unloads, polls and evictions. It is a
	// channel of size one so that on-demand loads can wait with a context.
	lifecycle chan struct{}

	mu     sync.RWMutex
	models map[string]*Model

	resident *lru.Cache[*Version, struct{}] // loaded versions, least recent first; nil without a bound

	countMu sync.Mutex // orders the Resident reports with the count
	count   int        // loaded versions

	stop      chan struct{} // closed by Close, under the lifecycle lock
	closeOnce sync.Once
	wg        sync.WaitGroup // the poller and the closers of retired versions
}

// Model is one model: a directory of versions sharing a config. Its state
// is an immutable snapshot, replaced whole on every lifecycle change.
type Model struct {
	Name string
	snap atomic.Pointer[snapshot]
}

type snapshot struct {
	config   *Config
	override *Config // from the load API; kept for reloads
	// dir is the override model directory that the load API's files
	// formed, which replaces the model's directory in the repository
	// until the next load; "": the repository's.
	dir      string
	cfgStamp string
	stamp    string // the model's files when last loaded
	// reason says why the model has nothing to serve; lastError why the
	// last reload failed while older versions kept serving.
	reason    string
	lastError string
	unloaded  bool // unloaded through the API: the poller leaves it alone
	versions  []*Version
	labels    map[string]int64 // config's and the API's
	apiLabels map[string]int64
}

// Open scans root and loads the models (all, or opts.Models). Models that
// fail to load are kept as unavailable; Open fails only when root cannot
// be read. With opts.PollInterval it then polls until Close.
func Open(ctx context.Context, opts Options) (*Repository, error) {
	if opts.Runtime == nil {
		return nil, errors.New("repository: no runtime")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	obs := opts.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	root, err := filepath.Abs(opts.Root)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, fmt.Errorf("model repository %s: %w", opts.Root, err)
	}
	r := &Repository{
		root:      root,
		env:       opts.Runtime,
		log:       log,
		cache:     opts.Cache,
		obs:       obs,
		opts:      opts,
		lifecycle: make(chan struct{}, 1),
		models:    map[string]*Model{},
		stop:      make(chan struct{}),
	}
	if opts.MaxResidentVersions > 0 {
		r.resident, _ = lru.New[*Version, struct{}](1 << 30) // evicted by hand: see evictLocked
	}
	names, err := r.scan()
	if err != nil {
		return nil, fmt.Errorf("model repository %s: %w", opts.Root, err)
	}
	r.lock(context.Background())
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			r.unlock()
			r.Close()
			return nil, err
		}
		if opts.Models != nil && !slices.Contains(opts.Models, name) && !slices.Contains(opts.Models, "*") {
			r.addUnloaded(name)
			continue
		}
		r.loadLocked(ctx, name, loadHow{}) // failures stay in the model's state
	}
	r.unlock()
	if opts.PollInterval > 0 {
		r.wg.Add(1)
		go r.poll(opts.PollInterval)
	}
	return r, nil
}

// addResident changes the count of loaded versions and reports it.
func (r *Repository) addResident(delta int) {
	r.countMu.Lock()
	defer r.countMu.Unlock()
	r.count += delta
	r.obs.Resident(r.count)
}

func (r *Repository) lock(ctx context.Context) error {
	select {
	case r.lifecycle <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Repository) unlock() { <-r.lifecycle }

// lockOpen takes the lifecycle lock of an open repository.
func (r *Repository) lockOpen(ctx context.Context) error {
	if err := r.lock(ctx); err != nil {
		return err
	}
	select {
	case <-r.stop:
		r.unlock()
		return errorf(errdefs.Unavailable, "the model repository is closed: the server is stopping")
	default:
		return nil
	}
}

// Close stops polling, unloads every version once its requests are done,
// and waits for them.
func (r *Repository) Close() error {
	closing := false
	r.closeOnce.Do(func() { closing = true })
	if !closing {
		return nil
	}
	r.lock(context.Background())
	close(r.stop) // under the lock: lifecycle calls after it see it (lockOpen)
	var dirs []string
	for _, m := range r.Models() {
		old := m.snap.Load()
		m.snap.Store(&snapshot{config: old.config, reason: "unloaded: the server is stopping", unloaded: true})
		for _, v := range old.versions {
			r.retire(v, "unload")
		}
		if old.dir != "" {
			dirs = append(dirs, old.dir)
		}
	}
	r.unlock()
	r.wg.Wait()
	for _, d := range dirs {
		r.removeOverride(d)
	}
	return nil
}

// Terminate stops every execution in flight, of every loaded version,
// which fail at once: for a shutdown whose grace period is over. Close
// must still be called; versions loaded after it are not terminated.
func (r *Repository) Terminate() {
	for _, m := range r.Models() {
		for _, v := range m.snap.Load().versions {
			if v.Session != nil {
				v.Session.Terminate()
			}
		}
	}
}

// Root returns the repository's root directory, symbolic links resolved.
func (r *Repository) Root() string { return r.root }

// Model returns the named model, or an errdefs.NotFound error.
func (r *Repository) Model(name string) (*Model, error) {
	r.mu.RLock()
	m, ok := r.models[name]
	r.mu.RUnlock()
	if !ok {
		return nil, errorf(errdefs.NotFound, "unknown model %q", name)
	}
	return m, nil
}

// Models returns every known model, sorted by name.
func (r *Repository) Models() []*Model {
	r.mu.RLock()
	out := make([]*Model, 0, len(r.models))
	for _, m := range r.models {
		out = append(out, m)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Model) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Ready reports whether every model that is not unloaded can serve all
// its versions.
func (r *Repository) Ready() bool {
	for _, m := range r.Models() {
		s := m.snap.Load()
		if s.unloaded {
			continue
		}
		if s.reason != "" {
			return false
		}
		for _, v := range s.versions {
			if v.State != StateReady {
				return false
			}
		}
	}
	return true
}

// Acquire returns the version that serves a request, holding a reference
// that the caller gives back with Release. n == 0 and label == "" pick the
// default version (the highest that can serve); a label picks its
// version. A version evicted by residency is loaded first, waiting up to
// ctx. Acquire never returns a version that is being swapped out.
func (r *Repository) Acquire(ctx context.Context, model string, n int64, label string) (*Version, error) {
	m, err := r.Model(model)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		v, err := m.snap.Load().pick(m.Name, n, label)
		if err != nil {
			return nil, err
		}
		if v.evicted {
			held, err := r.loadOnDemand(ctx, m, v)
			if err != nil {
				return nil, err
			}
			if held != nil {
				return held, nil
			}
			continue // loaded by another request meanwhile: look again
		}
		if v.acquire() {
			if r.resident != nil {
				r.touch(v)
			}
			return v, nil
		}
		// Retired between the snapshot load and acquire: a newer snapshot
		// is published already.
		if attempt > 1000 { // bounded, though each retry means a newer snapshot
			return nil, errorf(errdefs.Unavailable, "model %q is changing too fast to serve", m.Name)
		}
	}
}

// touchEvery is the granularity of the residency order: a version in use
// moves to the front of the LRU at most this often, so that requests do
// not all take the LRU's exclusive lock. Versions used within the same
// millisecond are equally recent for eviction.
const touchEvery = time.Millisecond

// touch marks v as the most recently used resident version.
func (r *Repository) touch(v *Version) {
	now := time.Now().UnixNano()
	last := v.touched.Load()
	if now-last < int64(touchEvery) || !v.touched.CompareAndSwap(last, now) {
		return // touched a moment ago, or by another request right now
	}
	r.resident.Get(v)
}

// Release gives back a reference taken by Acquire.
func (v *Version) Release() { v.release() }

// Lookup returns a version like Acquire, without a reference and without
// loading: for metadata.
func (m *Model) Lookup(n int64, label string) (*Version, error) {
	return m.snap.Load().pick(m.Name, n, label)
}

// Version is Lookup without a label.
func (m *Model) Version(n int64) (*Version, error) { return m.Lookup(n, "") }

// Versions returns the versions the policy selected, ascending, whatever
// their state.
func (m *Model) Versions() []*Version { return m.snap.Load().versions }

// Labels returns the model's version labels.
func (m *Model) Labels() map[string]int64 { return m.snap.Load().labels }

// Config returns the configuration in effect, or nil.
func (m *Model) Config() *Config { return m.snap.Load().config }

// Reason says why the model has nothing to serve, or why its last reload
// failed while older versions kept serving; empty otherwise.
func (m *Model) Reason() string {
	s := m.snap.Load()
	if s.reason != "" {
		return s.reason
	}
	return s.lastError
}

func (s *snapshot) pick(model string, n int64, label string) (*Version, error) {
	if label != "" {
		ln, ok := s.labels[label]
		if !ok {
			return nil, errorf(errdefs.NotFound, "model %q has no label %q", model, label)
		}
		n = ln
	}
	if n == 0 {
		for i := len(s.versions) - 1; i >= 0; i-- {
			if v := s.versions[i]; v.State == StateReady {
				return v, nil
			}
		}
		reason := s.reason
		if reason == "" && len(s.versions) > 0 {
			reason = s.versions[len(s.versions)-1].Reason
		}
		return nil, errorf(errdefs.Unavailable, "model %q is not ready: %s", model, reason)
	}
	for _, v := range s.versions {
		if v.Number != n {
			continue
		}
		if v.State != StateReady {
			return nil, errorf(errdefs.Unavailable, "model %q version %d is not ready: %s", model, n, v.Reason)
		}
		return v, nil
	}
	return nil, errorf(errdefs.NotFound, "model %q has no version %d", model, n)
}

// IndexEntry is one row of Triton's repository index.
type IndexEntry struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	State   State  `json:"state"`
	Reason  string `json:"reason,omitempty"`
}

// Index lists every model version with its state, as Triton's repository
// index; readyOnly keeps the READY ones.
func (r *Repository) Index(readyOnly bool) []IndexEntry {
	out := []IndexEntry{}
	for _, m := range r.Models() {
		s := m.snap.Load()
		if len(s.versions) == 0 {
			if !readyOnly {
				out = append(out, IndexEntry{Name: m.Name, State: StateUnavailable, Reason: s.reason})
			}
			continue
		}
		for _, v := range s.versions {
			if readyOnly && v.State != StateReady {
				continue
			}
			e := IndexEntry{Name: m.Name, Version: strconv.FormatInt(v.Number, 10), State: v.State, Reason: v.Reason}
			if v.State == StateReady && s.lastError != "" {
				e.Reason = s.lastError
			}
			out = append(out, e)
		}
	}
	return out
}

// ModelSummary is a model as the console and the audit trail show it:
// its versions with their states, and its labels.
type ModelSummary struct {
	Name string `json:"name"`
	// Reason says why the model has nothing to serve, or why its last
	// reload failed while older versions kept serving.
	Reason   string           `json:"reason,omitempty"`
	Labels   map[string]int64 `json:"labels"`
	Versions []VersionSummary `json:"versions"`
}

// VersionSummary is one version in a ModelSummary.
type VersionSummary struct {
	Version int64  `json:"version"`
	State   State  `json:"state"`
	Reason  string `json:"reason,omitempty"`
	// FileBytes is the size of the model file it was loaded from (0:
	// never read).
	FileBytes int64 `json:"file_bytes"`
	// LoadSeconds is how long its load and warm-up took.
	LoadSeconds float64 `json:"load_seconds,omitempty"`
}

// Summary returns the model's versions and labels.
func (m *Model) Summary() ModelSummary {
	s := m.snap.Load()
	out := ModelSummary{Name: m.Name, Reason: s.reason, Labels: map[string]int64{}, Versions: []VersionSummary{}}
	if out.Reason == "" {
		out.Reason = s.lastError
	}
	for k, v := range s.labels {
		out.Labels[k] = v
	}
	for _, v := range s.versions {
		out.Versions = append(out.Versions, VersionSummary{Version: v.Number, State: v.State, Reason: v.Reason, FileBytes: v.stamp.size, LoadSeconds: v.LoadTime.Seconds()})
	}
	return out
}

// Summary returns the named model's Summary; nil for a model the
// repository does not know.
func (r *Repository) Summary(name string) *ModelSummary {
	m, err := r.Model(name)
	if err != nil {
		return nil
	}
	sum := m.Summary()
	return &sum
}

// Summaries returns every model's Summary, by name.
func (r *Repository) Summaries() []ModelSummary {
	out := []ModelSummary{}
	for _, m := range r.Models() {
		out = append(out, m.Summary())
	}
	return out
}

// ReadyVersions lists the numbers of the model's READY versions, as the
// metadata APIs report them.
func (m *Model) ReadyVersions() []string {
	out := []string{}
	for _, v := range m.Versions() {
		if v.State == StateReady {
			out = append(out, strconv.FormatInt(v.Number, 10))
		}
	}
	return out
}
