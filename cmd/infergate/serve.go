package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/infergate/infergate/audit"
	"github.com/infergate/infergate/batching"
	"github.com/infergate/infergate/gateway"
	infergrpc "github.com/infergate/infergate/grpc"
	"github.com/infergate/infergate/monitoring"
	"github.com/infergate/infergate/monitoring/feedback"
	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/router"
	"github.com/infergate/infergate/runtime"
)

// serve runs the gateway until ctx is done, then drains. onListen, when
// not nil, is told the address the server listens on.
func serve(ctx context.Context, c Config, log *slog.Logger, onListen func(net.Addr)) error {
	if os.Getenv("GOMAXPROCS") == "" {
		// ONNX Runtime runs inside cgo calls, each holding a Go P until the
		// runtime's monitor takes it back, which can take milliseconds.
		// With one P per core, executions on every core starve the HTTP
		// side of Ps, requests stop arriving in the batcher's queue and
		// batches stay small (benchmarked: 2.3k instead of 7.6k items/s on
		// the 512-2048-2048-10 MLP at concurrency 64 on 2 cores). Twice
		// as many Ps as cores leaves Go room while ONNX Runtime computes;
		// the OS shares the cores. GOMAXPROCS in the environment wins.
		prev := goruntime.GOMAXPROCS(2 * goruntime.NumCPU())
		defer goruntime.GOMAXPROCS(prev)
		log.Debug("GOMAXPROCS raised for cgo", "gomaxprocs", 2*goruntime.NumCPU())
	}
	lib := libraryPath(c.ONNXRuntime.Library)
	env, err := runtime.Open(runtime.Options{LibraryPath: lib, ExecutionNice: c.ONNXRuntime.ExecutionNice})
	if err != nil {
		return err
	}
	defer env.Close()
	log.Info("onnxruntime loaded", "version", env.Version(), "library", lib)

	var cache *batching.Cache
	if c.ResponseCache.MaxEntries > 0 {
		if cache, err = batching.NewCache(c.ResponseCache.MaxEntries); err != nil {
			return err
		}
	}
	var mon *monitoring.Monitor
	if c.Metrics.Allow {
		mon = monitoring.New(monitoring.Options{Logger: log, StateDir: c.Monitoring.StateDir, EvaluateEvery: c.driftEvaluateEvery})
	}
	ro := repository.Options{
		Root:                      c.ModelRepository,
		Runtime:                   env,
		Logger:                    log,
		Cache:                     cache,
		MaxResidentVersions:       c.MaxResidentVersions,
		MaxOnDemandLoadsPerMinute: c.Repository.MaxOnDemandLoadsPerMinute,
		MaxUploadBytes:            c.Repository.MaxUploadBytes,
		OverrideDir:               c.Repository.OverrideDir,
	}
	admin := c.adminAuth(os.Getenv)
	if err := admin.Validate(); err != nil {
		return fmt.Errorf("admin.tokens: %w", err)
	}
	if err := gateway.ValidateInferenceTokens(c.inferenceTokens()); err != nil {
		return fmt.Errorf("inference.tokens: %w", err)
	}
	if admin.AllowUnauthenticated {
		log.Warn("admin.allow_unauthenticated: the repository API is open to every client")
	}
	gopts := gateway.Options{
		Admin:                admin,
		InferenceTokens:      c.inferenceTokens(),
		Tenants:              c.tenants(),
		TenantHeader:         c.Tenants.Header,
		MaxRequestBodySize:   c.HTTP.MaxRequestBodyBytes,
		Version:              version,
		RuntimeVersion:       env.Version(),
		Logger:               log,
		IdleTimeout:          c.HTTP.IdleTimeout,
		ReadTimeout:          c.HTTP.ReadTimeout,
		WriteTimeout:         c.HTTP.WriteTimeout,
		MaxJSONSize:          c.HTTP.MaxJSONBytes,
		MaxInflightBodyBytes: c.HTTP.MaxInflightBodyBytes,
		AdmissionLimit:       c.HTTP.AdmissionLimit,
		RequestTimeout:       c.HTTP.RequestTimeout,
		StrictReadiness:      c.StrictReadiness,
		ModelControl:         c.ModelControl,
	}
	if c.TLS.CertFile != "" {
		certs, err := gateway.NewCertReloader(c.TLS.CertFile, c.TLS.KeyFile, log)
		if err != nil {
			return err
		}
		gopts.TLS = certs.Config()
	}
	if mon != nil {
		ro.Observer = mon
		gopts.Requests, gopts.Drift, gopts.Statistics = mon, mon, mon
		gopts.Metrics = fasthttpadaptor.NewFastHTTPHandler(mon.Handler())
		hist := monitoring.NewHistory(mon, monitoring.HistoryOptions{Interval: c.Console.HistoryInterval})
		gopts.History = hist
		hctx, stopHistory := context.WithCancel(ctx)
		var sampling sync.WaitGroup
		sampling.Go(func() { hist.Run(hctx) })
		defer func() {
			stopHistory()
			sampling.Wait()
		}()
	}
	switch c.ModelControl {
	case "poll":
		ro.PollInterval = time.Duration(c.RepositoryPollSecs) * time.Second
		if c.pollInterval > 0 {
			ro.PollInterval = c.pollInterval
		}
	case "explicit":
		ro.Models = append([]string{}, c.LoadModels...)
	}
	repo, err := repository.Open(ctx, ro)
	if err != nil {
		return err
	}
	defer repo.Close()
	ready := 0
	for _, m := range repo.Models() {
		if _, err := m.Version(0); err == nil {
			ready++
		}
	}
	log.Info("model repository loaded", "root", c.ModelRepository, "models", len(repo.Models()), "ready", ready)

	trail, err := audit.Open(audit.Options{File: c.Audit.File, MaxBytes: c.Audit.MaxBytes, MaxFiles: c.Audit.MaxFiles, Logger: log})
	if err != nil {
		return err
	}
	defer trail.Close()
	if c.Audit.File == "" {
		log.Info("audit.file is not set: the audit trail is kept in memory only", "entries", audit.MemoryEntries)
	}
	gopts.Audit = trail
	rto := router.Options{Persist: c.ModelControl != "none", PollInterval: ro.PollInterval, Logger: log, Audit: trail}
	var fb *feedback.Store
	if c.Feedback.Enabled {
		for _, p := range c.Feedback.Peers {
			if _, _, err := net.SplitHostPort(p); err != nil {
				return fmt.Errorf("feedback.peers: %q: want host:port", p)
			}
		}
		fb = feedback.New(feedback.Options{MaxIDs: c.Feedback.MaxIDs, MaxRows: c.Feedback.MaxRows, TTL: c.Feedback.TTL, Window: c.Feedback.Window})
		if mon != nil {
			mon.Registry().MustRegister(fb)
		}
		gopts.Feedback, gopts.FeedbackPeers, gopts.Advertise = fb, c.Feedback.Peers, c.Feedback.Advertise
		rto.Feedback = fb
	}
	if mon != nil {
		rto.Observer, rto.Drift = mon, mon
	}
	rt := router.New(repo, rto)
	defer rt.Close()
	gopts.Router = rt
	srv := gateway.New(repo, gopts)
	if mon != nil {
		mon.WatchAdmission(srv.Admission)
	}
	ln, err := gateway.Listen(ctx, net.JoinHostPort(c.HTTP.Address, strconv.Itoa(c.HTTP.Port)))
	if err != nil {
		return err
	}
	log.Info("serving KServe v2 over HTTP", "address", ln.Addr().String(), "tls", gopts.TLS != nil)
	var metricsSrv *http.Server
	metricsDone := make(chan error, 1)
	if mon != nil && c.Metrics.Port > 0 {
		mln, err := net.Listen("tcp", net.JoinHostPort(c.Metrics.Address, strconv.Itoa(c.Metrics.Port)))
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", mon.Handler())
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		if gopts.TLS != nil {
			mln = tls.NewListener(mln, gopts.TLS)
		}
		log.Info("serving Prometheus metrics", "address", mln.Addr().String(), "tls", gopts.TLS != nil)
		go func() { metricsDone <- metricsSrv.Serve(mln) }()
	}
	adminDone := make(chan error, 1)
	if c.Admin.Port > 0 {
		aln, err := gateway.Listen(ctx, net.JoinHostPort(c.Admin.Address, strconv.Itoa(c.Admin.Port)))
		if err != nil {
			ln.Close()
			if metricsSrv != nil {
				metricsSrv.Close()
				<-metricsDone
			}
			return fmt.Errorf("admin listener: %w", err)
		}
		log.Info("serving the repository API and pprof on the admin listener", "address", aln.Addr().String())
		if c.Admin.MutexProfileFraction > 0 {
			prev := goruntime.SetMutexProfileFraction(c.Admin.MutexProfileFraction)
			defer goruntime.SetMutexProfileFraction(prev)
		}
		if c.Admin.BlockProfileRate > 0 {
			goruntime.SetBlockProfileRate(c.Admin.BlockProfileRate)
			defer goruntime.SetBlockProfileRate(0)
		}
		go func() { adminDone <- srv.ServeAdmin(aln) }()
	} else {
		adminDone <- nil
	}
	defer func() {
		srv.ShutdownAdmin(context.WithoutCancel(ctx)) // done already after a Shutdown
		<-adminDone
	}()
	var grpcSrv *infergrpc.Server
	grpcDone := make(chan error, 1)
	if c.GRPC.Allow {
		gln, err := gateway.Listen(ctx, net.JoinHostPort(c.GRPC.Address, strconv.Itoa(c.GRPC.Port)))
		if err != nil {
			ln.Close()
			srv.ShutdownAdmin(context.WithoutCancel(ctx))
			if metricsSrv != nil {
				metricsSrv.Close()
				<-metricsDone
			}
			return fmt.Errorf("grpc listener: %w", err)
		}
		gopt := infergrpc.Options{
			Version: version, Logger: log, Router: rt, Access: srv, Audit: trail, Feedback: fb, Advertise: c.Feedback.Advertise,
			MaxMessageSize:    cmp.Or(c.GRPC.MaxMessageBytes, c.HTTP.MaxRequestBodyBytes),
			ModelControl:      c.ModelControl,
			StrictReadiness:   c.StrictReadiness,
			RequestTimeout:    c.HTTP.RequestTimeout,
			MaxConnectionIdle: c.GRPC.Keepalive.MaxConnectionIdle, KeepaliveTime: c.GRPC.Keepalive.Time,
			KeepaliveTimeout: c.GRPC.Keepalive.Timeout, MinPingInterval: c.GRPC.Keepalive.MinPingInterval,
			WindowBytes: c.GRPC.WindowBytes, ConnWindowBytes: c.GRPC.ConnWindowBytes,
			StreamWorkers: c.GRPC.StreamWorkers,
		}
		if mon != nil {
			gopt.Requests, gopt.Statistics = mon, mon
		}
		if gopts.TLS != nil {
			gopt.TLS = gopts.TLS.Clone()
			gopt.TLS.NextProtos = nil // grpc-go offers h2
		}
		grpcSrv = infergrpc.New(repo, gopt)
		log.Info("serving KServe v2 over gRPC", "address", gln.Addr().String(), "tls", gopt.TLS != nil)
		if c.onGRPCListen != nil {
			c.onGRPCListen(gln.Addr())
		}
		go func() { grpcDone <- grpcSrv.Serve(gln) }()
		defer func() {
			grpcSrv.Shutdown(context.WithoutCancel(ctx)) // done already after a graceful stop
			<-grpcDone
		}()
	}
	if onListen != nil {
		onListen(ln.Addr())
	}
	if c.path != "" {
		watchCtx, stopWatch := context.WithCancel(ctx)
		watched := make(chan struct{})
		cw := newConfigWatch(c.path, log)
		go func() {
			defer close(watched)
			watchConfig(watchCtx, c.path, cw, srv, log)
		}()
		defer func() {
			stopWatch()
			<-watched
		}()
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		if metricsSrv != nil {
			metricsSrv.Close()
			<-metricsDone
		}
		return fmt.Errorf("http server: %w", err)
	case err := <-metricsDone:
		srv.Shutdown(context.WithoutCancel(ctx))
		<-served
		return fmt.Errorf("metrics server: %w", err)
	case err := <-grpcDone:
		grpcDone <- err // for the deferred stop
		srv.Shutdown(context.WithoutCancel(ctx))
		<-served
		if metricsSrv != nil {
			metricsSrv.Close()
			<-metricsDone
		}
		return fmt.Errorf("grpc server: %w", err)
	case <-ctx.Done():
	}
	if metricsSrv != nil {
		// Scrapes are quick: no drain needed.
		metricsSrv.Close()
		<-metricsDone
	}
	srv.Drain()
	if grpcSrv != nil {
		grpcSrv.Drain()
	}
	if c.HTTP.DrainDelay > 0 {
		log.Info("draining: not ready, still serving", "drain_delay", c.HTTP.DrainDelay)
		time.Sleep(c.HTTP.DrainDelay)
	}
	log.Info("shutting down: finishing requests in flight", "timeout", c.ExitTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.ExitTimeout)
	defer cancel()
	grpcStopped := make(chan error, 1)
	if grpcSrv != nil {
		go func() { grpcStopped <- grpcSrv.Shutdown(shutdownCtx) }() // drains calls and streams beside HTTP's
	} else {
		grpcStopped <- nil
	}
	err = srv.Shutdown(shutdownCtx)
	if gerr := <-grpcStopped; err == nil {
		err = gerr
	}
	if err != nil {
		// The grace period is over: the executions still running are
		// terminated, so that repo.Close (deferred) does not wait for them.
		log.Warn("exit timeout reached: terminating the executions in flight", "timeout", c.ExitTimeout)
		repo.Terminate()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	log.Info("stopped")
	return nil
}
