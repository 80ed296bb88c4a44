package repository

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/infergate/infergate/runtime"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// BenchmarkAcquireResident is Acquire and Release from 64 goroutines with
// --max-resident-versions set: with the residency order touched at most
// every millisecond (what Acquire does), beside the LRU's Get on every
// request (what it did), in one run.
//
//	go test -run '^$' -bench AcquireResident -benchmem ./repository/
func BenchmarkAcquireResident(b *testing.B) {
	root := b.TempDir()
	runtimetest.CopyDir(b, filepath.Join(runtimetest.Models(b), "identity_fp32"), filepath.Join(root, "m"))
	env, err := runtime.Open(runtime.Options{LibraryPath: runtimetest.Library(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer env.Close()
	r, err := Open(context.Background(), Options{Root: root, Runtime: env, MaxResidentVersions: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	b.Run("lru-get-every-request", func(b *testing.B) {
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				v, err := r.Acquire(ctx, "m", 0, "")
				if err != nil {
					b.Fatal(err)
				}
				r.resident.Get(v)
				v.Release()
			}
		})
	})
	b.Run("touch-every-ms", func(b *testing.B) {
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				v, err := r.Acquire(ctx, "m", 0, "")
				if err != nil {
					b.Fatal(err)
				}
				v.Release()
			}
		})
	})
}
