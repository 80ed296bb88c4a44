// Command infergate-bench load tests KServe v2 servers and runs
// infergate's benchmark suite.
//
//	infergate-bench load --url URL --model NAME [--concurrency 1,4,16,64 | --request-rate R [--poisson]] [--binary]
//	infergate-bench suite [--out DIR] [--url URL]... SCENARIO.yaml...
//	infergate-bench serve-transport | serve-handwritten ...   (the suite's reference servers)
//
// main only parses flags and calls run; the work is in benchmarks/.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "infergate-bench:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  infergate-bench load --url URL --model NAME [flags]    load test any KServe v2 server
  infergate-bench suite [flags] SCENARIO.yaml...         the standard suite, with report and plots
  infergate-bench serve-transport [flags]                reference server: fixed answer (transport limit)
  infergate-bench serve-handwritten [flags]              reference server: net/http + encoding/json + ONNX Runtime

Run "infergate-bench COMMAND -h" for its flags.
`

// run runs the command line args.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "load":
		return runLoad(ctx, args[1:], stdout, stderr)
	case "suite":
		return runSuite(ctx, args[1:], stdout, stderr)
	case "serve-transport":
		return runServeTransport(ctx, args[1:], stderr)
	case "serve-handwritten":
		return runServeHandwritten(ctx, args[1:], stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
