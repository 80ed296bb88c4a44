// Command infergate serves ONNX models over the KServe v2 inference
// protocol.
//
//	infergate serve --model-repository DIR [--http-port 8000] [--config FILE]
//	infergate version
//	infergate reference build --model-repository DIR --model NAME --samples FILE
//	infergate validate [--config FILE] --model-repository DIR
//	infergate healthcheck [--url URL]
//
// main only parses flags and wires the packages together; see run.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "infergate:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  infergate serve --model-repository DIR [--http-port N] [--config FILE] [--onnxruntime-lib PATH]
  infergate version [--onnxruntime-lib PATH]
  infergate reference build --model-repository DIR --model NAME [--version N] --samples FILE [--out FILE]
  infergate validate [--config FILE] --model-repository DIR   (no ONNX Runtime needed)
  infergate healthcheck [--url http://127.0.0.1:8000/v2/health/ready] [--timeout 3s]   (exit 0 when it answers 200)

Run "infergate serve -h" for every flag.
`

// run runs the infergate command line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		cfg, err := parseServe(args[1:], stderr)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, newLogger(cfg, stderr), nil)
	case "version":
		return printVersion(args[1:], stdout, stderr)
	case "reference":
		return referenceBuild(ctx, args[1:], stdout, stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
