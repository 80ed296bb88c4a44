package repository

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"github.com/infergate/infergate/batching"
	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/runtime"
)

// fileStamp identifies a model file's content cheaply: a file rewritten
// or replaced (write, then rename, is the safe way) gets a new stamp.
type fileStamp struct {
	size  int64
	mtime int64
}

// scan lists the model directories under the root. Other entries are
// skipped with a log line.
func (r *Repository) scan() ([]string, error) {
	entries, err := os.ReadDir(r.root)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if !modelName.MatchString(name) {
			r.log.Warn("skipping entry: not a valid model name", "entry", name)
			continue
		}
		dir, err := r.inside(filepath.Join(r.root, name))
		if err != nil {
			r.log.Warn("skipping entry", "entry", name, "err", err)
			continue
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		names = append(names, name)
	}
	return names, nil
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

func (r *Repository) model(name string) *Model {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.models[name]
	if !ok {
		m = &Model{Name: name}
		m.snap.Store(&snapshot{reason: "not loaded", unloaded: true})
		r.models[name] = m
	}
	return m
}

// addUnloaded records a model found on disk but not loaded (explicit
// mode).
func (r *Repository) addUnloaded(name string) {
	m := r.model(name)
	m.snap.Store(&snapshot{reason: "not loaded: load it through the repository API", unloaded: true})
}

// diskState reads what a model's directory holds now.
type diskState struct {
	config   *Config
	cfgErr   error
	cfgStamp string
	versions map[int64]fileStamp // every version directory, with its model file
	stamp    string              // all of the above, for the poller
}

// readDisk reads a model directory: the repository's, or the override
// directory from (its config is override's); quiet skips the log lines
// about entries that are not versions (the poller reads every few
// seconds).
func (r *Repository) readDisk(name, from string, override *Config, overrideStamp string, quiet bool) (*diskState, error) {
	dir, err := r.modelDir(name, from)
	if err != nil {
		return nil, err
	}
	d := &diskState{versions: map[int64]fileStamp{}}
	if override != nil {
		d.config, d.cfgStamp = override, "api:"+overrideStamp
	} else if b, err := os.ReadFile(filepath.Join(dir, ConfigFile)); err == nil {
		sum := sha256.Sum256(b)
		d.cfgStamp = hex.EncodeToString(sum[:8])
		if _, err := r.inside(filepath.Join(dir, ConfigFile)); err != nil {
			d.cfgErr = err
		} else {
			d.config, d.cfgErr = ParseConfig(b)
		}
		if d.cfgErr == nil && d.config.Name != "" && d.config.Name != name {
			d.cfgErr = fmt.Errorf("name: %q does not match the directory name", d.config.Name)
		}
		if d.cfgErr != nil {
			d.cfgErr = fmt.Errorf("%s: %w", ConfigFile, d.cfgErr)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		d.cfgErr = fmt.Errorf("%s: %w", ConfigFile, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var stamp strings.Builder
	stamp.WriteString(d.cfgStamp)
	for _, e := range entries {
		n, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || n < 1 || strconv.FormatInt(n, 10) != e.Name() {
			if !quiet && e.Name() != ConfigFile && e.Name() != RoutingFile && !strings.HasPrefix(e.Name(), ".") {
				r.log.Warn("skipping entry: not a positive version number", "model", name, "entry", e.Name())
			}
			continue
		}
		var fs fileStamp
		if fi, err := os.Stat(filepath.Join(dir, e.Name(), ModelFile)); err == nil && fi.Mode().IsRegular() {
			fs = fileStamp{fi.Size(), fi.ModTime().UnixNano()}
		}
		d.versions[n] = fs
		fmt.Fprintf(&stamp, ";%d:%d:%d", n, fs.size, fs.mtime)
	}
	d.stamp = stamp.String()
	return d, nil
}

// modelDir is the directory a model loads from: from, an override
// directory, or else its directory in the repository (which must not
// lead outside it).
func (r *Repository) modelDir(name, from string) (string, error) {
	if from != "" {
		return from, nil
	}
	return r.inside(filepath.Join(r.root, name))
}

// loadHow says where a load reads a model from and how it treats
// failures.
type loadHow struct {
	// override is the load API's config (nil: config.yaml, or the
	// config of the API's last load, which a reload keeps).
	override *Config
	// dir is an override model directory ("": the repository's).
	dir string
	// retryFailed loads versions that failed before even if their files
	// did not change.
	retryFailed bool
	// strict makes any version's failure fail the whole load, which then
	// changes nothing.
	strict bool
}

// loadLocked loads or reloads a model from disk (or from override, the
// load API's config) with zero downtime: versions whose file and config
// are unchanged are kept as they are; changed and new ones are loaded and
// warmed before the new snapshot is published; the versions it replaces
// drain their requests before they close. A version that fails to load
// leaves the version it would replace serving (unless how.strict, when
// the load changes nothing). It returns the failures.
func (r *Repository) loadLocked(ctx context.Context, name string, how loadHow) error {
	m := r.model(name)
	old := m.snap.Load()
	override, dir := how.override, how.dir
	overrideStamp := ""
	if override == nil && old.override != nil && !old.unloaded {
		override = old.override // a reload keeps the API's config
	}
	if override != nil {
		overrideStamp = fmt.Sprintf("%p", override)
	}
	fail := func(stamp, reason string) error {
		if how.strict { // nothing changes: the state stays old's
			return r.failLocked(m, old, old.override, old.dir, old.stamp, reason)
		}
		return r.failLocked(m, old, override, dir, stamp, reason)
	}
	d, err := r.readDisk(name, dir, override, overrideStamp, false)
	if err != nil {
		return fail("", fmt.Sprintf("read model directory: %v", err))
	}
	if d.cfgErr != nil {
		return fail(d.stamp, d.cfgErr.Error())
	}
	found := slices.Sorted(maps.Keys(d.versions))
	policy := VersionPolicy{}
	if d.config != nil {
		policy = d.config.VersionPolicy
	}
	selected := policy.selectVersions(found)
	if len(selected) == 0 {
		return fail(d.stamp, "no versions: expected <model>/<version>/"+ModelFile)
	}

	next := &snapshot{config: d.config, override: override, dir: dir, cfgStamp: d.cfgStamp, stamp: d.stamp}
	var loaded []*Version // new this time: closed again if the load is abandoned
	var failures []string
	for _, n := range selected {
		prev := old.version(n)
		fs, exists := d.versions[n]
		failed := prev != nil && prev.State != StateReady
		if prev != nil && !old.unloaded && old.dir == dir && old.cfgStamp == d.cfgStamp && prev.stamp == fs && (!failed || (!how.retryFailed && !prev.transient)) {
			next.versions = append(next.versions, prev) // unchanged: keep it, failed or not
			continue
		}
		v := r.loadVersion(ctx, m.Name, dir, d.config, n, exists, fs)
		if v.State != StateReady {
			failures = append(failures, fmt.Sprintf("version %d: %s", n, v.Reason))
			if prev != nil && prev.State == StateReady && !old.unloaded {
				next.versions = append(next.versions, prev) // the old one keeps serving
				next.lastError = fmt.Sprintf("reload of version %d failed, the loaded one keeps serving: %s", n, v.Reason)
				continue
			}
		} else {
			loaded = append(loaded, v)
		}
		next.versions = append(next.versions, v)
	}
	err = next.setLabels(d.config, old.apiLabels)
	if err == nil && ((!next.serves() && old.serves() && !old.unloaded) || (how.strict && len(failures) > 0)) {
		// The new versions all failed (a half-written file, say) and the
		// policy would drop the ones that serve: keep serving those.
		err = errors.New(strings.Join(failures, "; "))
	}
	if err != nil {
		for _, v := range loaded {
			v.close(false)
			r.addResident(-1)
		}
		return fail(d.stamp, err.Error())
	}
	r.publish(m, old, next, "replaced")
	if old.dir != "" && old.dir != dir {
		r.removeOverride(old.dir) // its sessions have read their files
	}
	for _, v := range loaded {
		if r.resident != nil {
			r.resident.Add(v, struct{}{})
		}
	}
	r.evictLocked()
	if len(failures) > 0 {
		return errorf(errdefs.Invalid, "load %s: %s", name, strings.Join(failures, "; "))
	}
	return nil
}

// failLocked records a failed load. A model that serves keeps serving,
// with the failure as its lastError; one that does not becomes
// unavailable with the reason.
func (r *Repository) failLocked(m *Model, old *snapshot, override *Config, dir, stamp, reason string) error {
	r.log.Error("model load failed", "model", m.Name, "reason", reason)
	next := *old
	next.stamp = stamp
	if len(old.versions) > 0 && !old.unloaded {
		next.lastError = "reload failed, the loaded versions keep serving: " + reason
	} else {
		// The config that failed stays, so that the poller (which compares
		// stamps made with it) does not load the disk's instead.
		next = snapshot{stamp: stamp, reason: reason, apiLabels: old.apiLabels, override: override, dir: dir}
	}
	m.snap.Store(&next)
	return errorf(errdefs.Invalid, "load %s: %s", m.Name, reason)
}

// publish makes next the model's state and retires the versions of old
// that next does not keep, for the given reason.
func (r *Repository) publish(m *Model, old, next *snapshot, why string) {
	m.snap.Store(next)
	for _, v := range old.versions {
		if !slices.Contains(next.versions, v) {
			r.retire(v, why)
		}
	}
}

// retire stops new requests to v and closes it, on a goroutine the
// repository waits for, once its requests in flight are done.
func (r *Repository) retire(v *Version, why string) {
	drained := v.retire()
	if v.Session == nil {
		// Failed or evicted: nothing loaded. An evicted version kept its
		// series; now it is gone for good, once the loaded one it stands
		// for has closed (reported after it, as for any unload).
		if v.evicted && why != "evicted" {
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				if v.unloadedAfter != nil {
					<-v.unloadedAfter
				}
				r.obs.Unloaded(v.Model, v.Number, why)
			}()
		}
		return
	}
	if r.resident != nil {
		r.resident.Remove(v)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		<-drained
		if err := v.close(why == "evicted"); err != nil {
			r.log.Error("closing version", "model", v.Model, "version", v.Number, "err", err)
		}
		close(v.closed)
		r.obs.Unloaded(v.Model, v.Number, why)
		r.addResident(-1)
		r.log.Info("unloaded", "model", v.Model, "version", v.Number, "why", why)
	}()
}

// serves reports whether any version can serve.
func (s *snapshot) serves() bool {
	return slices.ContainsFunc(s.versions, func(v *Version) bool { return v.State == StateReady })
}

func (s *snapshot) version(n int64) *Version {
	for _, v := range s.versions {
		if v.Number == n {
			return v
		}
	}
	return nil
}

// setLabels sets the labels from the config and the API; every label
// must name a version that can serve. API labels whose version is gone
// are dropped.
func (s *snapshot) setLabels(c *Config, api map[string]int64) error {
	s.labels, s.apiLabels = map[string]int64{}, map[string]int64{}
	servable := func(n int64) bool {
		v := s.version(n)
		return v != nil && v.State == StateReady
	}
	if c != nil {
		for label, n := range c.VersionLabels {
			if !servable(n) {
				return fmt.Errorf("version_labels.%s: version %d is not loaded", label, n)
			}
			s.labels[label] = n
		}
	}
	for label, n := range api {
		if servable(n) {
			s.labels[label], s.apiLabels[label] = n, n
		}
	}
	return nil
}

// loadVersion loads and warms one version. It never returns nil: a
// failed version carries its reason.
func (r *Repository) loadVersion(ctx context.Context, model, dir string, c *Config, n int64, exists bool, fs fileStamp) *Version {
	v := newVersion(model, n)
	v.stamp = fs
	start := time.Now()
	err := func() error {
		if !exists {
			return errors.New("version directory not found")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		path := filepath.Join(dir, strconv.FormatInt(n, 10), ModelFile)
		var err error
		if dir == "" {
			path, err = r.inside(filepath.Join(r.root, model, strconv.FormatInt(n, 10), ModelFile))
			if err != nil {
				return err
			}
		}
		s, err := r.env.NewSession(path, c.sessionOptions())
		if err != nil {
			return err
		}
		if err := v.resolve(c, s); err != nil {
			s.Close()
			return err
		}
		s.SetBatchedOutputs(v.Batched)
		if err := v.warmup(ctx, c, s); err != nil {
			s.Close()
			return err
		}
		opts, err := r.executorOptions(c, v, s)
		if err != nil {
			s.Close()
			return err
		}
		info := VersionInfo{Model: model, Version: n, Path: path, Inputs: v.Inputs, Outputs: v.Outputs, Batched: v.Batched}
		if opts.Batching != nil {
			info.QueueCapacity = opts.Batching.MaxQueueSize
			if info.QueueCapacity <= 0 {
				info.QueueCapacity = batching.DefaultMaxQueueSize
			}
		}
		if c != nil {
			info.Drift = c.Monitoring.Drift
		}
		obs, err := r.obs.Attach(info)
		if err != nil {
			s.Close()
			return err
		}
		if obs != nil {
			opts.Observer = obs
		}
		e, err := batching.NewExecutor(s, opts)
		if err != nil {
			if obs != nil {
				obs.Close(false)
			}
			s.Close()
			return err
		}
		v.Session, v.Executor, v.Observer = s, e, obs
		return nil
	}()
	v.LoadTime = time.Since(start)
	r.obs.Loaded(model, n, v.LoadTime, err)
	if err != nil {
		v.Reason = err.Error()
		v.transient = errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
		r.log.Error("version unavailable", "model", model, "version", n, "reason", v.Reason)
		return v
	}
	v.State = StateReady
	r.addResident(1)
	r.log.Info("loaded", "model", model, "version", n, "providers", v.Session.Providers(),
		"batched", v.Batched, "dynamic_batching", v.Executor.Batching(), "duration", v.LoadTime.Round(time.Millisecond))
	return v
}

// executorOptions builds the options of the version's request path from
// its config.
func (r *Repository) executorOptions(c *Config, v *Version, s *runtime.Session) (batching.ExecutorOptions, error) {
	opts := batching.ExecutorOptions{Model: v.Model, Version: v.Number, Batched: v.Batched}
	if c != nil {
		opts.Coalesce = c.RequestCoalescing.Enable
		if c.ResponseCache.Enable {
			if r.cache == nil {
				return opts, errors.New("response_cache is enabled, but the gateway has no response cache: set response_cache.max_entries in its configuration (--response-cache-entries)")
			}
			opts.Cache = r.cache
		}
		if c.DynamicBatching != nil {
			if !v.Batched || v.MaxBatchSize == 0 {
				return opts, errors.New("dynamic_batching needs max_batch_size > 0")
			}
			opts.Batching = c.DynamicBatching.batchingOptions(v.MaxBatchSize, s.Instances())
		}
	}
	return opts, nil
}

// LoadOptions are the parameters of Triton's repository load API.
type LoadOptions struct {
	// Config, when not nil, replaces config.yaml, for the poller's
	// reloads too, until the next LoadModel without one.
	Config *Config
	// Files, when not empty, form an override model directory that
	// replaces the model's directory in the repository until the next
	// load, as in Triton: each key is a path in the model's directory,
	// "<version>/model.onnx" (or another file of a version's directory),
	// and each value its content. Config is then required: the
	// repository's config.yaml is not used. The model need not exist in
	// the repository. A load with files is all or nothing: if any version
	// fails, the serving versions and the disk stay as they were.
	Files map[string][]byte
}

// LoadModel loads or reloads a model (Triton's repository load API).
func (r *Repository) LoadModel(ctx context.Context, name string, opts LoadOptions) error {
	if !modelName.MatchString(name) {
		return errorf(errdefs.Invalid, "invalid model name %q", name)
	}
	if len(opts.Files) > 0 {
		if err := r.checkFiles(opts); err != nil {
			return err
		}
	}
	if err := r.lockOpen(ctx); err != nil {
		return err
	}
	defer r.unlock()
	if len(opts.Files) > 0 {
		return r.loadFilesLocked(ctx, name, opts)
	}
	if _, err := os.Stat(filepath.Join(r.root, name)); err != nil {
		return errorf(errdefs.NotFound, "no model %q in the repository", name)
	}
	if opts.Config == nil {
		// A load without a config reads config.yaml again.
		m := r.model(name)
		if s := m.snap.Load(); s.override != nil {
			cp := *s
			cp.override = nil
			m.snap.Store(&cp)
		}
	}
	return r.loadLocked(ctx, name, loadHow{override: opts.Config, retryFailed: true})
}

// checkFiles validates a load's files before anything is written.
func (r *Repository) checkFiles(opts LoadOptions) error {
	if opts.Config == nil {
		return errorf(errdefs.Invalid, "a load with files needs the model's config too: the files form a new model directory, "+
			"and the repository's %s is not used (parameters.config, as in Triton)", ConfigFile)
	}
	limit := r.opts.MaxUploadBytes
	if limit <= 0 {
		limit = DefaultMaxUploadBytes
	}
	var total int64
	versions := 0
	for _, p := range slices.Sorted(maps.Keys(opts.Files)) {
		total += int64(len(opts.Files[p]))
		first, rest, _ := strings.Cut(p, "/")
		n, err := strconv.ParseInt(first, 10, 64)
		switch {
		case p == ConfigFile:
			return errorf(errdefs.Invalid, "file %q: send the model's config as the config parameter, not as a file", p)
		case err != nil || n < 1 || strconv.FormatInt(n, 10) != first || rest == "":
			return errorf(errdefs.Invalid, "file %q: a file's path must be <version>/<file>, such as 1/%s, with a positive version number", p, ModelFile)
		case filepath.IsAbs(p) || filepath.Clean(p) != p || slices.ContainsFunc(strings.Split(rest, "/"), func(c string) bool { return c == "" || c == "." || c == ".." || strings.HasPrefix(c, ".") }):
			return errorf(errdefs.Invalid, "file %q: a path must stay inside the version's directory, with no empty, hidden, . or .. parts", p)
		}
		if rest == ModelFile {
			versions++
		}
	}
	switch {
	case versions == 0:
		return errorf(errdefs.Invalid, "the files hold no <version>/%s", ModelFile)
	case total > limit:
		return errorf(errdefs.Invalid, "the files hold %d bytes, over repository.max_upload_bytes (%d)", total, limit)
	}
	return nil
}

// loadFilesLocked writes a load's files into a new override directory
// and loads the model from it, all or nothing.
func (r *Repository) loadFilesLocked(ctx context.Context, name string, opts LoadOptions) error {
	dir, err := os.MkdirTemp(r.opts.OverrideDir, "infergate-override-"+name+"-")
	if err != nil {
		return errorf(errdefs.Unavailable, "create the override model directory: %v", err)
	}
	for p, b := range opts.Files {
		path := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err == nil {
			err = os.WriteFile(path, b, 0o600)
		}
		if err != nil {
			r.removeOverride(dir)
			return errorf(errdefs.Unavailable, "write file %q of the override model directory: %v", p, err)
		}
	}
	if err := r.loadLocked(ctx, name, loadHow{override: opts.Config, dir: dir, retryFailed: true, strict: true}); err != nil {
		r.removeOverride(dir)
		return err
	}
	r.log.Info("model loaded from the load API's files: they replace its directory until the next load", "model", name, "files", len(opts.Files))
	return nil
}

// removeOverride removes an override model directory. The sessions
// made from its files have read them.
func (r *Repository) removeOverride(dir string) {
	if err := os.RemoveAll(dir); err != nil {
		r.log.Warn("removing an override model directory", "dir", dir, "err", err)
	}
}

// UploadVersion writes data as <root>/<name>/<version>/model.onnx, written
// beside and renamed into place, then loads the model (its config.yaml's
// version policy must select the version) and warms it up. A failure
// removes what it wrote and loads the model as it was, so the serving
// versions and the disk stay as before. An existing version is refused:
// upload under a new number.
func (r *Repository) UploadVersion(ctx context.Context, name string, version int64, data []byte) error {
	limit := r.opts.MaxUploadBytes
	if limit <= 0 {
		limit = DefaultMaxUploadBytes
	}
	switch {
	case !modelName.MatchString(name):
		return errorf(errdefs.Invalid, "invalid model name %q", name)
	case version < 1:
		return errorf(errdefs.Invalid, "invalid version %d: want a positive integer", version)
	case len(data) == 0:
		return errorf(errdefs.Invalid, "empty upload: send the model.onnx bytes as the body")
	case int64(len(data)) > limit:
		return errorf(errdefs.Invalid, "upload of %d bytes is over repository.max_upload_bytes (%d)", len(data), limit)
	}
	if err := r.lockOpen(ctx); err != nil {
		return err
	}
	defer r.unlock()
	if s := r.model(name).snap.Load(); s.dir != "" && !s.unloaded {
		return errorf(errdefs.Invalid, "model %q serves the files of a load through the API, which replace its directory until the next load: load it without files first", name)
	}
	modelDir := filepath.Join(r.root, name)
	versionDir := filepath.Join(modelDir, strconv.FormatInt(version, 10))
	if _, err := os.Stat(filepath.Join(versionDir, ModelFile)); err == nil {
		return errorf(errdefs.Invalid, "model %q already has a version %d on disk: upload under a new version number", name, version)
	}
	var created []string // to remove on failure, innermost last
	for _, d := range []string{modelDir, versionDir} {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			if err := os.Mkdir(d, 0o755); err != nil {
				return errorf(errdefs.Unavailable, "the repository is not writable: %v", err)
			}
			created = append(created, d)
		}
	}
	undo := func() {
		os.Remove(filepath.Join(versionDir, ModelFile))
		for _, d := range slices.Backward(created) {
			os.Remove(d)
		}
	}
	if err := renameio.WriteFile(filepath.Join(versionDir, ModelFile), data, 0o644); err != nil {
		undo()
		return errorf(errdefs.Unavailable, "write %s: %v", filepath.Join(name, strconv.FormatInt(version, 10), ModelFile), err)
	}
	err := r.loadLocked(ctx, name, loadHow{retryFailed: true})
	var v *Version
	if err == nil {
		v, err = r.model(name).Version(version)
	}
	if err == nil && v.State != StateReady {
		err = errorf(errdefs.Invalid, "version %d did not load: %s", version, v.Reason)
	}
	if err != nil {
		undo()
		if len(created) == 0 || created[0] != modelDir {
			r.loadLocked(ctx, name, loadHow{retryFailed: true}) // as it was
		}
		if k := errdefs.KindOf(err); k == errdefs.NotFound || k == errdefs.Unavailable {
			err = errorf(errdefs.Invalid, "upload of model %q version %d: %v (its config.yaml's version_policy must select it)", name, version, err)
		}
		return err
	}
	return nil
}

// UnloadModel unloads every version of a model once its requests are done
// (Triton's repository unload API). The poller leaves an unloaded model
// alone until LoadModel.
func (r *Repository) UnloadModel(ctx context.Context, name string) error {
	if err := r.lockOpen(ctx); err != nil {
		return err
	}
	defer r.unlock()
	m, err := r.Model(name)
	if err != nil {
		return err
	}
	r.unloadLocked(m, "unloaded")
	return nil
}

func (r *Repository) unloadLocked(m *Model, reason string) {
	old := m.snap.Load()
	m.snap.Store(&snapshot{config: old.config, stamp: old.stamp, reason: reason, unloaded: true})
	for _, v := range old.versions {
		r.retire(v, "unload")
	}
	if old.dir != "" {
		r.removeOverride(old.dir) // the next load reads the repository
	}
}

// SetLabel points a label at a version that can serve.
func (r *Repository) SetLabel(ctx context.Context, model, label string, n int64) error {
	if !labelName.MatchString(label) {
		return errorf(errdefs.Invalid, "invalid label %q", label)
	}
	return r.editLabels(ctx, model, func(old *snapshot, labels, api map[string]int64) error {
		if v := old.version(n); v == nil || v.State != StateReady {
			return errorf(errdefs.Invalid, "model %q version %d is not loaded: a label can only point at a loaded version", model, n)
		}
		labels[label], api[label] = n, n
		r.log.Info("label set", "model", model, "label", label, "version", n)
		return nil
	})
}

// DeleteLabel removes a label set through the API or the config (until
// the next reload, for the config's).
func (r *Repository) DeleteLabel(ctx context.Context, model, label string) error {
	return r.editLabels(ctx, model, func(old *snapshot, labels, api map[string]int64) error {
		if _, ok := labels[label]; !ok {
			return errorf(errdefs.NotFound, "model %q has no label %q", model, label)
		}
		delete(labels, label)
		delete(api, label)
		return nil
	})
}

// editLabels publishes a copy of the model's snapshot whose label maps
// edit has changed.
func (r *Repository) editLabels(ctx context.Context, model string, edit func(old *snapshot, labels, api map[string]int64) error) error {
	if err := r.lockOpen(ctx); err != nil {
		return err
	}
	defer r.unlock()
	m, err := r.Model(model)
	if err != nil {
		return err
	}
	old := m.snap.Load()
	next := *old
	next.labels, next.apiLabels = maps.Clone(old.labels), maps.Clone(old.apiLabels)
	if next.labels == nil {
		next.labels = map[string]int64{}
	}
	if next.apiLabels == nil {
		next.apiLabels = map[string]int64{}
	}
	if err := edit(old, next.labels, next.apiLabels); err != nil {
		return err
	}
	m.snap.Store(&next)
	return nil
}

// poll rescans the repository every interval until Close.
func (r *Repository) poll(interval time.Duration) {
	defer r.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		if err := r.lock(context.Background()); err != nil {
			return
		}
		select {
		case <-r.stop:
			r.unlock()
			return
		default:
		}
		r.pollLocked()
		r.unlock()
	}
}

// pollLocked loads new models, reloads changed ones and unloads removed
// ones. Models unloaded through the API are left alone.
func (r *Repository) pollLocked() {
	names, err := r.scan()
	if err != nil {
		r.log.Error("poll: cannot read the model repository", "err", err)
		return
	}
	for _, m := range r.Models() {
		if slices.Contains(names, m.Name) || m.snap.Load().dir != "" {
			continue // an override directory is not the repository's
		}
		if !m.snap.Load().unloaded {
			r.log.Info("model removed from the repository", "model", m.Name)
			r.unloadLocked(m, "removed from the repository")
		}
		r.mu.Lock()
		delete(r.models, m.Name)
		r.mu.Unlock()
	}
	for _, name := range names {
		r.mu.RLock()
		m, known := r.models[name]
		r.mu.RUnlock()
		if known {
			s := m.snap.Load()
			if s.unloaded || s.dir != "" {
				continue // the API unloaded it, or its files replace the repository's
			}
			override, overrideStamp := s.override, ""
			if override != nil {
				overrideStamp = fmt.Sprintf("%p", override)
			}
			d, err := r.readDisk(name, "", override, overrideStamp, true)
			if err == nil && d.stamp == s.stamp {
				continue
			}
		} else if r.opts.Models != nil && !slices.Contains(r.opts.Models, "*") {
			r.addUnloaded(name) // explicit mode: known, not loaded
			continue
		}
		r.log.Info("model changed on disk: loading", "model", name)
		r.loadLocked(context.Background(), name, loadHow{})
	}
}

// evictLocked unloads least recently used versions while more than
// MaxResidentVersions are loaded. Versions in use, labelled or in keep
// (just loaded for a request) stay.
func (r *Repository) evictLocked(keep ...*Version) {
	if r.resident == nil {
		return
	}
	for r.resident.Len() > r.opts.MaxResidentVersions {
		victim := (*Version)(nil)
		for _, v := range r.resident.Keys() { // least recent first
			if !v.idle() || slices.Contains(keep, v) {
				continue
			}
			m, err := r.Model(v.Model)
			if err != nil || slices.Contains(slices.Collect(maps.Values(m.snap.Load().labels)), v.Number) {
				continue
			}
			victim = v
			break
		}
		if victim == nil {
			r.log.Warn("over max resident versions: every loaded version is in use or labelled", "resident", r.resident.Len(), "max", r.opts.MaxResidentVersions)
			return
		}
		m, _ := r.Model(victim.Model)
		old := m.snap.Load()
		next := *old
		next.versions = slices.Clone(old.versions)
		for i, v := range next.versions {
			if v == victim {
				p := newVersion(v.Model, v.Number)
				// READY: it serves, loading first (Acquire); the reason
				// tells the index it is not resident.
				p.State, p.evicted, p.stamp, p.Reason = StateReady, true, v.stamp, errEvicted.Error()
				p.unloadedAfter = v.closed
				p.Inputs, p.Outputs, p.Batched, p.MaxBatchSize = v.Inputs, v.Outputs, v.Batched, v.MaxBatchSize
				next.versions[i] = p
			}
		}
		r.resident.Remove(victim)
		r.log.Info("evicting least recently used version", "model", victim.Model, "version", victim.Number)
		r.publish(m, old, &next, "evicted")
	}
}

// loadOnDemand loads an evicted version, waiting up to ctx, and returns
// it holding a reference for the request (taken before any eviction can
// see it idle). It returns nil, nil when another request loaded it first.
func (r *Repository) loadOnDemand(ctx context.Context, m *Model, placeholder *Version) (*Version, error) {
	if err := r.lockOpen(ctx); err != nil {
		if _, ok := err.(*errdefs.Error); ok {
			return nil, err
		}
		return nil, errorf(errdefs.Unavailable, "model %q version %d is not resident and its load did not finish in time: %v", m.Name, placeholder.Number, err)
	}
	defer r.unlock()
	old := m.snap.Load()
	i := slices.Index(old.versions, placeholder)
	if i < 0 {
		return nil, nil // another request loaded it, or the model changed: look again
	}
	if limit := r.opts.MaxOnDemandLoadsPerMinute; limit > 0 {
		now := time.Now()
		if len(r.onDemand) == limit && now.Sub(r.onDemand[0]) < time.Minute {
			e := errorf(errdefs.Overloaded, "model %q version %d is not resident, and %d versions were loaded on demand in the last minute, the limit (repository.max_on_demand_loads_per_minute): retry later", m.Name, placeholder.Number, limit)
			e.RetryAfter = time.Minute - now.Sub(r.onDemand[0]) // when the oldest load leaves the window
			return nil, e
		}
		if len(r.onDemand) == limit {
			r.onDemand = append(r.onDemand[:0], r.onDemand[1:]...)
		}
		r.onDemand = append(r.onDemand, now)
	}
	v := r.loadVersion(ctx, m.Name, old.dir, old.config, placeholder.Number, true, placeholder.stamp)
	if v.State != StateReady {
		return nil, errorf(errdefs.Unavailable, "model %q version %d: load on demand failed: %s", m.Name, v.Number, v.Reason)
	}
	v.acquire() // fresh, never retired: cannot fail
	next := *old
	next.versions = slices.Clone(old.versions)
	next.versions[i] = v
	m.snap.Store(&next)
	if r.resident != nil {
		r.resident.Add(v, struct{}{})
	}
	r.evictLocked()
	return v, nil
}
