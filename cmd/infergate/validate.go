package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/infergate/infergate/gateway"
	"github.com/infergate/infergate/repository"
	"github.com/infergate/infergate/router"
)

// validate checks a gateway config and every model's config.yaml and
// routing document without loading ONNX Runtime, printing each problem
// as "file: field path: message". It fails when there is one.
//
//	infergate validate [--config FILE] --model-repository DIR
func validate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("infergate validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "gateway configuration `file` to check")
	repo := fs.String("model-repository", "", "model repository `dir` to check (default: the config's model_repository)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	problems := validateAll(*configFile, *repo)
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d problems", len(problems))
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// validateAll returns every problem of the gateway config at configFile
// (none: the defaults) and of the repository at repo (empty: the
// config's).
func validateAll(configFile, repo string) []string {
	var problems []string
	c := defaultConfig()
	if configFile != "" {
		if err := loadConfigFile(configFile, &c); err != nil {
			return append(problems, err.Error())
		}
	}
	if repo != "" {
		c.ModelRepository = repo
	}
	name := configFile
	if name == "" {
		name = "gateway config"
	}
	if err := c.validate(); err != nil {
		problems = append(problems, fmt.Sprintf("%s: %v", name, err))
	}
	if err := c.adminAuth(os.Getenv).Validate(); err != nil {
		problems = append(problems, fmt.Sprintf("%s: admin.tokens: %v", name, err))
	}
	if err := gateway.ValidateInferenceTokens(c.inferenceTokens()); err != nil {
		problems = append(problems, fmt.Sprintf("%s: inference.tokens: %v", name, err))
	}
	if c.TLS.CertFile != "" && c.TLS.KeyFile != "" {
		if _, err := gateway.NewCertReloader(c.TLS.CertFile, c.TLS.KeyFile, nil); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
		}
	}
	if c.ModelRepository == "" {
		return problems
	}
	entries, err := os.ReadDir(c.ModelRepository)
	if err != nil {
		return append(problems, fmt.Sprintf("model repository: %v", err))
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name()[0] == '.' {
			continue
		}
		problems = append(problems, validateModel(filepath.Join(c.ModelRepository, e.Name()))...)
	}
	slices.Sort(problems)
	return problems
}

// validateModel checks a model's config.yaml, its routing section and
// its routing.yaml.
func validateModel(dir string) []string {
	var problems []string
	path := filepath.Join(dir, repository.ConfigFile)
	cfg, err := repository.LoadConfig(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		problems = append(problems, fmt.Sprintf("%s: %v", path, err))
	case cfg.Routing.Kind != 0:
		b, err := yaml.Marshal(&cfg.Routing)
		if err == nil {
			_, err = router.ParseYAML(b)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: routing: %v", path, err))
		}
	}
	path = filepath.Join(dir, repository.RoutingFile)
	if b, err := os.ReadFile(path); err == nil {
		if _, err := router.ParseYAML(b); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", path, err))
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		problems = append(problems, fmt.Sprintf("%s: %v", path, err))
	}
	return problems
}
