package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/infergate/infergate/gateway"
)

// reloadSettle lets a file being written settle before it is read.
const reloadSettle = 100 * time.Millisecond

// configWatch is what watchConfig listens to: SIGHUP, and the config
// file's folder (nil watcher: SIGHUP only).
type configWatch struct {
	hup chan os.Signal
	w   *fsnotify.Watcher
}

// newConfigWatch starts listening for SIGHUP and for changes of the
// folder of path, before serve reports that it serves, so that no change
// made from then on is missed. The folder is watched, not the file, so
// that editors' and Kubernetes' atomic replacements are seen.
func newConfigWatch(path string, log *slog.Logger) *configWatch {
	cw := &configWatch{hup: make(chan os.Signal, 1)}
	signal.Notify(cw.hup, syscall.SIGHUP)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("config file changes will not be seen: reload with SIGHUP", "err", err)
		return cw
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		log.Warn("config file changes will not be seen: reload with SIGHUP", "err", err)
		w.Close()
		return cw
	}
	cw.w = w
	return cw
}

// watchConfig reloads the gateway config at path on SIGHUP and whenever
// the file changes, until ctx is done: the admin and inference tokens
// and the tenants' limits take effect at once; other fields need a
// restart. A reload that does not validate changes nothing and is
// logged. It closes cw when it returns.
func watchConfig(ctx context.Context, path string, cw *configWatch, srv *gateway.Server, log *slog.Logger) {
	defer signal.Stop(cw.hup)
	var events <-chan fsnotify.Event
	var errs <-chan error
	if cw.w != nil {
		defer cw.w.Close()
		events, errs = cw.w.Events, cw.w.Errors
	}
	hup := cw.hup
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			reloadConfig(path, srv, log, "SIGHUP")
		case e := <-events:
			if filepath.Base(e.Name) == filepath.Base(path) || filepath.Base(e.Name) == "..data" {
				settle.Reset(reloadSettle)
			}
		case err := <-errs:
			log.Warn("watching the config file", "err", err)
		case <-settle.C:
			reloadConfig(path, srv, log, "file changed")
		}
	}
}

func reloadConfig(path string, srv *gateway.Server, log *slog.Logger, why string) {
	c := defaultConfig()
	if err := loadConfigFile(path, &c); err != nil {
		log.Error("config reload refused: nothing changed", "why", why, "err", err)
		return
	}
	if err := srv.Reconfigure(c.access(os.Getenv)); err != nil {
		log.Error("config reload refused: nothing changed", "why", why, "err", err)
		return
	}
	log.Info("config reloaded: tokens and tenants applied; other fields take a restart", "why", why, "tenants", len(c.Tenants.Limits))
}
