package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// healthcheck asks a server's health endpoint and fails unless it
// answers 200: the container image's HEALTHCHECK, which cannot rely on
// curl (the slim image has none).
//
//	infergate healthcheck [--url http://127.0.0.1:8000/v2/health/ready] [--timeout 3s] [--ca-file F | --insecure]
func healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("infergate healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8000/v2/health/ready", "health endpoint to ask (https:// for a server with tls)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	caFile := fs.String("ca-file", "", "PEM `file` of the CA that signed the server's certificate (https)")
	insecure := fs.Bool("insecure", false, "do not verify the server's certificate (https on 127.0.0.1, whose certificate names the service)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	tc := &tls.Config{InsecureSkipVerify: *insecure} // asked for: a probe of 127.0.0.1, whose certificate names the service
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca-file %s: no PEM certificate in it", *caFile)
		}
	}
	tr := &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("unhealthy: no answer from %s within %s", *url, *timeout)
		}
		return fmt.Errorf("unhealthy: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: %s answered %d %s", *url, resp.StatusCode, body)
	}
	fmt.Fprintf(stdout, "healthy: %s answered 200\n", *url)
	return nil
}
