package gateway

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certRecheck is how often, at most, a handshake looks at the
// certificate files for a change.
const certRecheck = time.Second

// CertReloader serves the TLS certificate of a pair of PEM files, read
// again when either changes (looked at by a handshake, once per
// certRecheck at most), so that a certificate rotates without a restart
// (cert-manager, a Kubernetes secret). A change that does not load (a
// certificate written before its key) keeps the certificate served
// until the pair loads, with a log line.
type CertReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileVersion
	checked time.Time
	failed  [2]fileVersion // the pair that last failed to load, logged once
}

// fileVersion tells a file's content apart cheaply.
type fileVersion struct {
	size  int64
	mtime time.Time
}

// NewCertReloader loads the pair, failing if it does not load. log
// (nil: discard) hears of rotations.
func NewCertReloader(certFile, keyFile string, log *slog.Logger) (*CertReloader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, log: log}
	stamp, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	r.cert, r.stamp, r.checked = &cert, stamp, time.Now()
	return r, nil
}

func (r *CertReloader) stat() ([2]fileVersion, error) {
	var v [2]fileVersion
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return v, fmt.Errorf("tls: %w", err)
		}
		v[i] = fileVersion{fi.Size(), fi.ModTime()}
	}
	return v, nil
}

// GetCertificate is tls.Config's: the current certificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= certRecheck {
		r.checked = now
		r.reload()
	}
	return r.cert, nil
}

// reload loads the pair if its files changed; with r.mu held.
func (r *CertReloader) reload() {
	stamp, err := r.stat()
	if err != nil {
		if stamp != r.failed {
			r.failed = stamp
			r.log.Error("TLS certificate files unreadable: the loaded certificate is still served", "err", err)
		}
		return
	}
	if stamp == r.stamp {
		return
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if stamp != r.failed {
			r.failed = stamp
			r.log.Error("TLS certificate changed but does not load: the loaded certificate is still served", "cert_file", r.certFile, "err", err)
		}
		return
	}
	r.cert, r.stamp = &cert, stamp
	r.log.Info("TLS certificate reloaded", "cert_file", r.certFile, "not_after", cert.Leaf.NotAfter)
}

// Config returns a server tls.Config serving r's certificate: TLS 1.2
// at least, HTTP/1.1 (fasthttp speaks no HTTP/2).
func (r *CertReloader) Config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate, NextProtos: []string{"http/1.1"}}
}
