package main

import (
	"testing"
	"time"
)

// FuzzGatewayConfig: no --config document panics the decoder or the
// validation, and a document that validates holds values the server can
// run with (ports, sizes, timeouts, bounds).
func FuzzGatewayConfig(f *testing.F) {
	for _, seed := range []string{
		"model_repository: /models\nhttp: {port: 8000, max_request_body_bytes: 1048576, max_inflight_body_bytes: -1}\n",
		"model_repository: m\nhttp:\n  request_timeout: 2s\n  drain_delay: 5s\nexit_timeout: 30s\nmodel_control_mode: explicit\n",
		"model_repository: m\nresponse_cache: {max_entries: 1000}\nrepository: {max_on_demand_loads_per_minute: 10}\nmax_resident_versions: 2\n",
		"model_repository: m\nmetrics: {allow: false, port: 8002}\nlog: {level: debug, format: json}\n",
		"http: {port: -1}\n", "http: [1, 2]\n", "model_repository: m\nexit_timeout: -1s\n", "{}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := defaultConfig()
		if err := decodeConfig(b, &c); err != nil {
			return
		}
		if err := c.validate(); err != nil {
			return
		}
		switch {
		case c.HTTP.Port < 0 || c.HTTP.Port > 65535 || c.Metrics.Port < 0 || c.Metrics.Port > 65535:
			t.Fatalf("port validated: %d, %d", c.HTTP.Port, c.Metrics.Port)
		case c.HTTP.MaxRequestBodyBytes <= 0 || c.HTTP.MaxJSONBytes <= 0:
			t.Fatalf("size validated: %d, %d", c.HTTP.MaxRequestBodyBytes, c.HTTP.MaxJSONBytes)
		case c.HTTP.MaxInflightBodyBytes > 0 && c.HTTP.MaxInflightBodyBytes < int64(c.HTTP.MaxRequestBodyBytes):
			t.Fatalf("body budget %d below the body limit %d validated", c.HTTP.MaxInflightBodyBytes, c.HTTP.MaxRequestBodyBytes)
		case c.HTTP.RequestTimeout < 0 || c.ExitTimeout < 0 || c.HTTP.DrainDelay < 0 || c.HTTP.DrainDelay > time.Hour:
			t.Fatalf("duration validated: %v %v %v", c.HTTP.RequestTimeout, c.ExitTimeout, c.HTTP.DrainDelay)
		case c.ResponseCache.MaxEntries < 0 || c.ResponseCache.MaxEntries > maxCacheEntries:
			t.Fatalf("cache entries %d validated", c.ResponseCache.MaxEntries)
		case c.ModelRepository == "":
			t.Fatal("no model_repository validated")
		}
	})
}
