package router

import (
	"github.com/google/renameio/v2"

	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"
)

// Routing is a model's routing as the API reads and writes it.
type Routing struct {
	Model string `json:"model"`
	// Source is where the document in effect came from: "api" (set
	// through the API, in memory), "routing.yaml", "config.yaml" or
	// "none".
	Source string `json:"source"`
	// Persisted says a document set through the API was written to
	// <repo>/<model>/routing.yaml; Reason says why not.
	Persisted bool   `json:"persisted"`
	Path      string `json:"path,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Routing is the effective document, defaults filled in; absent
	// without one.
	Routing *Document `json:"routing,omitempty"`
}

// Get returns a model's routing.
func (r *Router) Get(model string) (*Routing, error) {
	m, err := r.repo.Model(model)
	if err != nil {
		return nil, err
	}
	p := r.policy(m)
	return &Routing{Model: m.Name, Source: p.source, Persisted: p.source == File, Routing: p.doc}, nil
}

// Set validates doc whole and applies it atomically: nothing changes on a
// bad document. With Options.Persist it is also written to
// <repo>/<model>/routing.yaml (write, sync, rename), which takes
// precedence over config.yaml and which replicas polling the repository
// pick up; otherwise, or when the file cannot be written, it stays in
// memory and the answer says why.
func (r *Router) Set(model string, doc *Document) (*Routing, error) {
	m, err := r.repo.Model(model)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	st := r.state(m.Name)
	st.mu.Lock()
	defer st.mu.Unlock()
	doc = stampStart(doc, st.rollout)
	out := &Routing{Model: m.Name}
	if !r.opts.Persist {
		out.Reason = "model control mode is none: the document stays in memory until the server stops"
	} else {
		path := filepath.Join(r.repo.Root(), m.Name, File)
		if err := writeFile(path, doc); err != nil {
			out.Reason = fmt.Sprintf("the repository is not writable (%v): the document stays in memory until the server stops", err)
		} else {
			out.Persisted, out.Path = true, path
		}
	}
	st.api = nil
	if !out.Persisted {
		st.api = doc
	}
	r.compileLocked(m, st)
	p := st.pol.Load()
	out.Source, out.Routing = p.source, p.doc
	r.log.Info("routing document set", "model", m.Name, "source", p.source, "persisted", out.Persisted)
	return out, nil
}

// stampStart returns doc with its rollout's started_at set, when it has
// a rollout without one: the running rollout's start when doc carries
// the same rollout (a PUT of the same document changes nothing), else
// now. The caller's doc is not changed.
func stampStart(doc *Document, running *rollout) *Document {
	if doc.Rollout == nil || doc.Rollout.StartedAt != nil {
		return doc
	}
	cp, spec := *doc, *doc.Rollout
	cp.Rollout = &spec
	start := time.Now().UTC().Truncate(time.Millisecond)
	if running != nil && !running.ended() {
		prev := running.spec0
		prev.StartedAt = nil
		if sameRollout(prev, spec) {
			start = running.start.UTC()
		}
	}
	spec.StartedAt = &start
	return &cp
}

// Delete removes the document set through the API or routing.yaml;
// config.yaml's routing section, if any, applies again.
func (r *Router) Delete(model string) (*Routing, error) {
	m, err := r.repo.Model(model)
	if err != nil {
		return nil, err
	}
	st := r.state(m.Name)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.api = nil
	out := &Routing{Model: m.Name}
	if r.opts.Persist {
		path := filepath.Join(r.repo.Root(), m.Name, File)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove %s: %w", path, err)
		}
	}
	r.compileLocked(m, st)
	p := st.pol.Load()
	out.Source, out.Persisted, out.Routing = p.source, p.source == File, p.doc
	r.log.Info("routing document removed", "model", m.Name, "source", p.source)
	return out, nil
}

// writeFile writes doc as YAML atomically (renameio: a temporary file in
// the same directory, synced, then renamed over path), readable by the
// replicas that poll it.
func writeFile(path string, doc *Document) error {
	b, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	return renameio.WriteFile(path, b, 0o644)
}

// poll rereads the routing.yaml files that changed, every interval.
func (r *Router) poll(interval time.Duration) {
	defer r.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		for _, m := range r.repo.Models() {
			st := r.state(m.Name)
			fi, err := os.Stat(filepath.Join(r.repo.Root(), m.Name, File))
			stamp := fileStamp{}
			if err == nil {
				stamp = fileStamp{fi.Size(), fi.ModTime().UnixNano()}
			}
			st.mu.Lock()
			if st.api == nil && stamp != st.stamp {
				r.log.Info("routing.yaml changed: reloading the routing", "model", m.Name)
				r.compileLocked(m, st)
			}
			st.mu.Unlock()
		}
	}
}

// replace applies a document that a rollout's controller wrote when it
// ended, as Set does, without waiting for that controller (it is the
// caller).
func (r *Router) replace(model string, doc *Document, from *rollout) error {
	m, err := r.repo.Model(model)
	if err != nil {
		return err
	}
	st := r.state(m.Name)
	// Whoever holds the lock to replace this rollout stops it first: give
	// way then, instead of deadlocking on each other.
	for !st.mu.TryLock() {
		select {
		case <-from.stop:
			return nil
		case <-time.After(time.Millisecond):
		}
	}
	defer st.mu.Unlock()
	if st.rollout != from {
		return nil // replaced meanwhile by an operator
	}
	st.rollout = nil // ends with its goroutine
	persisted := false
	if r.opts.Persist {
		if err := writeFile(filepath.Join(r.repo.Root(), m.Name, File), doc); err == nil {
			persisted = true
		} else {
			r.log.Warn("rollout's final document not written: it stays in memory", "model", m.Name, "err", err)
		}
	}
	st.api = nil
	if !persisted {
		st.api = doc
	}
	r.compileLocked(m, st)
	return nil
}
