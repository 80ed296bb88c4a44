package packaging

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// dockerfile parses the repository's Dockerfile with BuildKit's parser.
func dockerfile(t *testing.T) ([]instructions.Stage, map[string]string) {
	t.Helper()
	f, err := os.Open(filepath.Join(root(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile: %s", w.Short)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]string{}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			args[kv.Key] = kv.ValueString()
		}
	}
	return stages, args
}

// TestDockerfile checks the Dockerfile without a Docker engine (none
// runs here): the stages line up for every VARIANT, every COPY source is
// in the build context (and not excluded by .dockerignore), COPY --from
// names an earlier stage, and the image runs as a numeric non-root user,
// exposes the HTTP port, checks its health through infergate healthcheck
// and serves by default (issue 13).
func TestDockerfile(t *testing.T) {
	stages, args := dockerfile(t)
	if args["VARIANT"] != "cpu" {
		t.Errorf("ARG VARIANT defaults to %q, want cpu", args["VARIANT"])
	}
	names := map[string]int{}
	for i, s := range stages {
		if s.Name != "" {
			names[strings.ToLower(s.Name)] = i
		}
	}
	final := stages[len(stages)-1]
	for _, variant := range []string{"cpu", "gpu"} {
		base := strings.ReplaceAll(final.BaseName, "${VARIANT}", variant)
		if i, ok := names[base]; !ok || i >= len(stages)-1 {
			t.Errorf("VARIANT=%s: the final stage is FROM %q, not an earlier stage", variant, base)
		}
	}

	ignore := dockerignore(t)
	var user string
	var exposed []string
	var health, entrypoint, cmd []string
	for i, s := range stages {
		for _, c := range s.Commands {
			switch c := c.(type) {
			case *instructions.CopyCommand:
				if c.From != "" {
					if j, ok := names[strings.ToLower(c.From)]; !ok || j >= i {
						t.Errorf("stage %d: COPY --from=%s does not name an earlier stage", i, c.From)
					}
					continue
				}
				for _, src := range c.SourcePaths {
					checkContext(t, ignore, src)
				}
			case *instructions.UserCommand:
				if i == len(stages)-1 {
					user = c.User
				}
			case *instructions.ExposeCommand:
				exposed = append(exposed, c.Ports...)
			case *instructions.HealthCheckCommand:
				health = c.Health.Test
			case *instructions.EntrypointCommand:
				entrypoint = c.CmdLine
			case *instructions.CmdCommand:
				cmd = c.CmdLine
			}
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if uid == "" || uid == "0" || uid == "root" || strings.Trim(uid, "0123456789") != "" {
		t.Errorf("the image's USER is %q: want a numeric user that is not root (Kubernetes' runAsNonRoot checks it)", user)
	}
	if uid != "10001" {
		t.Errorf("USER %s, but the manifests run as 10001", uid)
	}
	if !slices.Contains(exposed, "8000") {
		t.Errorf("EXPOSE %v lacks the HTTP port 8000", exposed)
	}
	if len(health) < 3 || health[0] != "CMD" || health[1] != "infergate" || health[2] != "healthcheck" {
		t.Errorf("HEALTHCHECK %v: want CMD infergate healthcheck (the slim image has no curl)", health)
	}
	if !slices.Equal(entrypoint, []string{"infergate", "serve"}) {
		t.Errorf("ENTRYPOINT %v, want [infergate serve]", entrypoint)
	}

	// The image's command line and its health check work, on the real
	// binary: the paths the image has are mapped onto this checkout.
	port := freePort(t)
	argv := slices.Clone(cmd)
	for i, a := range argv {
		switch a {
		case "/models":
			argv[i] = filepath.Join(root(t), "configs", "example-repository")
		case "8000":
			argv[i] = itoa(port)
		}
	}
	s := startBinary(t, port, append([]string{"serve"}, argv...)...)
	check := slices.Clone(health[2:])
	for i, a := range check {
		check[i] = strings.ReplaceAll(a, "127.0.0.1:8000", strings.TrimPrefix(s.base, "http://"))
	}
	if out, err := run(t, check...); err != nil {
		t.Errorf("the HEALTHCHECK (infergate %v) failed: %v\n%s", check, err, out)
	}
}

// dockerignore reads .dockerignore as BuildKit does.
func dockerignore(t *testing.T) *patternmatcher.PatternMatcher {
	t.Helper()
	f, err := os.Open(filepath.Join(root(t), ".dockerignore"))
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{".git", ".cache/onnxruntime/1.29.0/libonnxruntime.so", "bin/infergate"} {
		if ok, _ := pm.MatchesOrParentMatches(must); !ok {
			t.Errorf(".dockerignore lets %s into the build context", must)
		}
	}
	return pm
}

// checkContext fails unless src (a COPY source) is in the repository
// and in the build context.
func checkContext(t *testing.T, ignore *patternmatcher.PatternMatcher, src string) {
	t.Helper()
	if src == "." {
		return
	}
	if _, err := os.Stat(filepath.Join(root(t), src)); err != nil {
		t.Errorf("COPY %s: not in the repository (%v)", src, err)
		return
	}
	if ok, _ := ignore.MatchesOrParentMatches(strings.TrimSuffix(src, "/")); ok {
		t.Errorf("COPY %s: excluded from the build context by .dockerignore", src)
	}
}
