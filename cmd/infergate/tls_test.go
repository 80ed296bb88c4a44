package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	grpclib "google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/infergate/infergate/grpc/inference"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// testCA signs server certificates for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "infergate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a certificate for 127.0.0.1 with serial, and its key, to
// certFile and keyFile, each written beside and renamed into place.
func (ca *testCA) issue(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "infergate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	writeAtomic(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func writeAtomic(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// servedSerial connects afresh to addr and returns the serial number of
// the certificate the server presents, verified against ca.
func servedSerial(t *testing.T, ca *testCA, addr string) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestTLS: with tls.cert_file and key_file, every listener speaks HTTPS
// (the KServe API over HTTP and gRPC, the admin listener, the metrics
// listener); a plain
// HTTP request is refused; a rotated certificate is served to new
// connections without a restart, and a broken rotation keeps the
// served one (issue 12).
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca := newTestCA(t)
	ca.issue(t, 100, certFile, keyFile)
	c := testConfig()
	c.ModelRepository = runtimetest.Models(t)
	c.HTTP.Address, c.HTTP.Port = "127.0.0.1", 0
	c.ONNXRuntime.Library = runtimetest.Library(t)
	c.TLS.CertFile, c.TLS.KeyFile = certFile, keyFile
	c.Admin.Port, c.Metrics.Port, c.Metrics.Address = freePort(t), freePort(t), "127.0.0.1"
	grpcAddrs := make(chan net.Addr, 1)
	c.onGRPCListen = func(a net.Addr) { grpcAddrs <- a }
	c.GRPC.Address = "127.0.0.1"
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	cl := serveConfig(t, c, slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), hc)
	if !strings.HasPrefix(cl.BaseURL(), "https://") {
		t.Fatalf("base URL %s", cl.BaseURL())
	}
	mainAddr := strings.TrimPrefix(cl.BaseURL(), "https://")
	get := func(method, url, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	infer := `{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Repeat("1,", 15) + `1]}]}`
	for _, tc := range []struct{ name, method, url, body string }{
		{"ready", "GET", cl.BaseURL() + "/v2/health/live", ""},
		{"infer", "POST", cl.BaseURL() + "/v2/models/mlp/infer", infer},
		{"admin listener", "POST", "https://127.0.0.1:" + strconv.Itoa(c.Admin.Port) + "/v2/repository/index", ""},
		{"metrics listener", "GET", "https://127.0.0.1:" + strconv.Itoa(c.Metrics.Port) + "/metrics", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := get(tc.method, tc.url, tc.body); status != 200 {
				t.Errorf("%d %s", status, body)
			}
		})
	}
	t.Run("grpc listener", func(t *testing.T) {
		conn, err := grpclib.NewClient((<-grpcAddrs).String(), grpclib.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.pool})))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if r, err := inference.NewGRPCInferenceServiceClient(conn).ServerLive(context.Background(), &inference.ServerLiveRequest{}); err != nil || !r.Live {
			t.Errorf("ServerLive over TLS: %v %v", r, err)
		}
	})
	t.Run("plain HTTP refused", func(t *testing.T) {
		plain := &http.Client{Timeout: 10 * time.Second}
		resp, err := plain.Get("http://" + mainAddr + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			t.Errorf("plain HTTP on the TLS port answered %d", resp.StatusCode)
		}
	})
	if got := servedSerial(t, ca, mainAddr); got != 100 {
		t.Fatalf("serial %d served, want 100", got)
	}
	ca.issue(t, 101, certFile, keyFile)
	waitFor(t, "the rotated certificate", func() bool { return servedSerial(t, ca, mainAddr) == 101 })
	// A broken rotation (a key that is not the certificate's) keeps 101.
	other := filepath.Join(dir, "other")
	ca.issue(t, 102, other+".crt", other+".key")
	key, err := os.ReadFile(other + ".key")
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, keyFile, key)
	time.Sleep(1100 * time.Millisecond) // past certRecheck: the next handshake looks at the files
	if got := servedSerial(t, ca, mainAddr); got != 101 {
		t.Errorf("after a broken rotation, serial %d served, want 101", got)
	}
	if status, body := get("GET", cl.BaseURL()+"/v2/health/live", ""); status != 200 {
		t.Errorf("after a broken rotation: %d %s", status, body)
	}
}

// TestTLSConfigErrors: a half-configured or unloadable pair fails the
// start with the reason.
func TestTLSConfigErrors(t *testing.T) {
	c := testConfig()
	c.ModelRepository = runtimetest.Models(t)
	c.TLS.CertFile = "x.crt"
	if err := c.validate(); err == nil || err.Error() != "tls: cert_file and key_file go together" {
		t.Errorf("cert without key: %v", err)
	}
	dir := t.TempDir()
	c.TLS.CertFile, c.TLS.KeyFile = filepath.Join(dir, "missing.crt"), filepath.Join(dir, "missing.key")
	c.HTTP.Address, c.HTTP.Port = "127.0.0.1", 0
	c.ONNXRuntime.Library = runtimetest.Library(t)
	err := serve(context.Background(), c, slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), "tls: stat "+c.TLS.CertFile) {
		t.Errorf("missing files: %v", err)
	}
}
