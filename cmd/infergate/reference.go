package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/infergate/infergate/gateway"
	"github.com/infergate/infergate/monitoring"
	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/runtime"
)

// referenceBuild runs "infergate reference build": it runs a version on a
// file of sample requests and writes the drift reference of its
// monitoring.drift section.
func referenceBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "build" {
		return errors.New(`usage: infergate reference build --model-repository DIR --model NAME [--version N] --samples FILE [--out FILE]`)
	}
	fs := flag.NewFlagSet("infergate reference build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("model-repository", "", "model repository `dir`")
	model := fs.String("model", "", "model `name`")
	versionN := fs.Int64("version", 0, "version (default: the highest on disk)")
	samples := fs.String("samples", "", "`file` of KServe v2 inference requests in JSON, one a line (or one request)")
	out := fs.String("out", "", "reference `file` to write (default: <repo>/<model>/<version>/reference.json)")
	lib := fs.String("onnxruntime-lib", "", "path of libonnxruntime.so")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *repo == "" || *model == "" || *samples == "" {
		return errors.New("reference build: --model-repository, --model and --samples are required")
	}
	dir := filepath.Join(*repo, *model)
	var cfg *repository.Config
	if _, err := os.Stat(filepath.Join(dir, repository.ConfigFile)); err == nil {
		c, err := repository.LoadConfig(filepath.Join(dir, repository.ConfigFile))
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, repository.ConfigFile), err)
		}
		cfg = c
	}
	if cfg == nil || cfg.Monitoring.Drift == nil {
		return fmt.Errorf("model %q has no monitoring.drift section in its %s: it says what the reference holds", *model, repository.ConfigFile)
	}
	n := *versionN
	if n == 0 {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if v, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && v > n {
				n = v
			}
		}
		if n == 0 {
			return fmt.Errorf("model %q has no version directory", *model)
		}
	}
	path := filepath.Join(dir, strconv.FormatInt(n, 10), repository.ModelFile)
	env, err := runtime.Open(runtime.Options{LibraryPath: libraryPath(*lib)})
	if err != nil {
		return err
	}
	defer env.Close()
	s, err := env.NewSession(path, cfg.SessionOptions())
	if err != nil {
		return err
	}
	defer s.Close()
	inputs, outputs, batched, err := repository.ServedSignature(cfg, s)
	if err != nil {
		return fmt.Errorf("%s: %w", repository.ConfigFile, err)
	}
	info := repository.VersionInfo{Model: *model, Version: n, Path: path, Inputs: inputs, Outputs: outputs, Batched: batched, Drift: cfg.Monitoring.Drift}

	// Decode every request first: the builder takes the whole file.
	f, err := os.Open(*samples)
	if err != nil {
		return err
	}
	defer f.Close()
	var requests [][]runtime.Tensor
	rows := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, gateway.DefaultMaxJSONSize)
	for line := 1; sc.Scan(); line++ {
		body := bytes.TrimSpace(sc.Bytes())
		if len(body) == 0 {
			continue
		}
		inputs, err := gateway.DecodeInputs(bytes.Clone(body), -1, info.Inputs, info.Outputs)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", *samples, line, err)
		}
		requests = append(requests, inputs)
		if batched && len(inputs) > 0 && len(inputs[0].Shape) > 0 {
			rows += int(inputs[0].Shape[0])
		} else {
			rows++
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", *samples, err)
	}
	if rows == 0 {
		return fmt.Errorf("%s: no requests", *samples)
	}
	b, err := monitoring.NewReferenceBuilder(info, rows)
	if err != nil {
		return err
	}
	for _, inputs := range requests {
		outputs, err := s.Run(ctx, inputs)
		if err != nil {
			return err
		}
		b.Add(inputs, outputs)
	}
	ref := b.Build(fmt.Sprintf("infergate reference build from %s (%d requests)", filepath.Base(*samples), len(requests)))
	if *out == "" {
		*out = filepath.Join(dir, strconv.FormatInt(n, 10), "reference.json")
	}
	if err := ref.WriteFile(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d samples of %d tensors from %d requests\n", *out, ref.Samples, len(ref.Tensors), len(requests))
	return nil
}
