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

// watchConfig reloads the gateway config at path on SIGHUP and whenever
// the file changes, until ctx is done: the admin and inference tokens
// and the tenants' limits take effect at once; other fields need a restart. A reload that
// does not validate changes nothing and is logged. The folder is
// watched, not the file, so that editors' and Kubernetes' atomic
// replacements are seen.
func watchConfig(ctx context.Context, path string, srv *gateway.Server, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("config file changes will not be seen: reload with SIGHUP", "err", err)
	} else {
		defer w.Close()
		if err := w.Add(filepath.Dir(path)); err != nil {
			log.Warn("config file changes will not be seen: reload with SIGHUP", "err", err)
		}
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}
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
