package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/infergate/infergate/benchmarks/report"
	"github.com/infergate/infergate/benchmarks/suite"
)

// urlsFlag collects repeated --url flags.
type urlsFlag []string

func (u *urlsFlag) String() string { return strings.Join(*u, ",") }

func (u *urlsFlag) Set(v string) error {
	if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
		return fmt.Errorf("%q: want an http:// or https:// URL", v)
	}
	*u = append(*u, strings.TrimRight(v, "/"))
	return nil
}

// runSuite is the suite command: run the scenario files, write the report.
func runSuite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts  suite.Options
		urls  urlsFlag
		out   = fs.String("out", filepath.Join("benchmarks", "results", time.Now().Format("2006-01-02")), "results `folder`: report.md, plots/, results.json, results.csv")
		quiet = fs.Bool("quiet", false, "no progress line, even on a terminal")
	)
	fs.StringVar(&opts.Root, "root", ".", "the `folder` scenario model paths are relative to")
	fs.StringVar(&opts.Infergate, "infergate", filepath.Join("bin", "infergate"), "the infergate `binary`")
	fs.StringVar(&opts.ONNXRuntimeLib, "onnxruntime-lib", defaultLib(), "libonnxruntime.so `path`")
	fs.StringVar(&opts.Work, "work", "", "`folder` for server logs and model repositories (default OUT/raw, not committed)")
	fs.Var(&urls, "url", "base `URL` of another KServe v2 server serving the scenarios' models (repeatable)")
	fs.IntVar(&opts.HandwrittenGOMAXPROCS, "handwritten-gomaxprocs", 0, "GOMAXPROCS of the hand-written server (0: Go's default)")
	fs.DurationVar(&opts.Load.Window, "window", 500*time.Millisecond, "measurement window")
	fs.IntVar(&opts.Load.StableWindows, "stable-windows", 3, "consecutive windows that must agree")
	fs.IntVar(&opts.Load.MaxWindows, "max-windows", 6, "most windows after the warm-up")
	fs.Float64Var(&opts.Load.Stability, "stability", 0.1, "how close (a fraction) the windows' throughput and p50 must be")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("suite: name at least one scenario file")
	}
	var scenarios []*suite.Scenario
	for _, path := range fs.Args() {
		sc, err := suite.LoadScenario(path)
		if err != nil {
			return err
		}
		scenarios = append(scenarios, sc)
	}
	opts.External = urls
	if opts.Work == "" {
		opts.Work = filepath.Join(*out, "raw")
	}
	opts.Load.Progress = progressTo(stderr, *quiet)
	opts.Log = stdout
	res, err := suite.Run(ctx, opts, scenarios)
	if err != nil {
		return err
	}
	if err := report.Write(*out, res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nreport: %s (%.0fs)\n", filepath.Join(*out, report.MarkdownFile), res.Elapsed)
	for _, sr := range res.Scenarios {
		for _, o := range sr.Targets {
			verdict := "holds "
			switch {
			case o.Missing != "":
				verdict = "unjudged"
			case !o.Held:
				verdict = "MISSED"
			}
			fmt.Fprintf(stdout, "  %-8s %s: %s (%.2f×)\n", verdict, sr.Name, o.Name, o.Ratio)
		}
	}
	return nil
}

// defaultLib is $ONNXRUNTIME_LIB, else where scripts/fetch-onnxruntime.sh
// puts the library.
func defaultLib() string {
	if p := os.Getenv("ONNXRUNTIME_LIB"); p != "" {
		return p
	}
	p, _ := filepath.Abs(filepath.Join(".cache", "onnxruntime", "1.29.0", "libonnxruntime.so"))
	return p
}
