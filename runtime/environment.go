package runtime

import (
	"errors"
	"fmt"
	"os"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrLibraryNotFound is returned by Open when libonnxruntime cannot be found.
var ErrLibraryNotFound = errors.New("onnxruntime library not found: set ONNXRUNTIME_LIB or --onnxruntime-lib, or run scripts/fetch-onnxruntime.sh")

// ONNX Runtime keeps one environment per process; onnxruntime_go mirrors
// that with package state. envMu and envRefs make Open and Close safe to
// call from several owners (tests start several servers in one process).
var (
	envMu   sync.Mutex
	envRefs int
	envPath string
)

// Options configure an Environment.
type Options struct {
	// LibraryPath is the path of libonnxruntime.so. Required.
	LibraryPath string
	// ExecutionNice, from 1 to MaxExecutionNice, runs every execution of
	// the sessions opened from the environment on OS threads of their own
	// (one per instance, made at NewSession), with the intra-op threads
	// ONNX Runtime makes for them, that many nice steps below the process
	// (at most at nice 19). Under CPU saturation the process's other
	// work, reading requests and refusing the excess among it, then runs
	// first. It costs two thread wake-ups per execution: 0.11 ms against
	// 0.01 ms for a batch-1 run of a small MLP on a 2-core VM
	// (BenchmarkExecutionNice), so it suits runs that take milliseconds.
	// Default 0: executions run on the caller's thread at the process's
	// priority. Linux only: elsewhere a value above 0 fails Open.
	ExecutionNice int
}

// Environment is an open ONNX Runtime environment. Close it when every
// Session opened from it is closed.
type Environment struct {
	version string
	nice    int
	closed  bool
}

// Open loads ONNX Runtime from opts.LibraryPath and initializes its
// environment. A second Open in the same process shares the environment and
// must name the same library.
func Open(opts Options) (*Environment, error) {
	if opts.LibraryPath == "" {
		return nil, ErrLibraryNotFound
	}
	if opts.ExecutionNice < 0 || opts.ExecutionNice > MaxExecutionNice {
		return nil, fmt.Errorf("execution nice %d is out of range 0-%d", opts.ExecutionNice, MaxExecutionNice)
	}
	if opts.ExecutionNice > 0 && !niceSupported {
		return nil, fmt.Errorf("execution nice %d: %w", opts.ExecutionNice, errNiceUnsupported)
	}
	if _, err := os.Stat(opts.LibraryPath); err != nil {
		return nil, fmt.Errorf("%s: %w", opts.LibraryPath, ErrLibraryNotFound)
	}
	envMu.Lock()
	defer envMu.Unlock()
	if envRefs > 0 {
		if envPath != opts.LibraryPath {
			return nil, fmt.Errorf("onnxruntime already loaded from %s, not %s", envPath, opts.LibraryPath)
		}
		envRefs++
		return &Environment{version: ort.GetVersion(), nice: opts.ExecutionNice}, nil
	}
	ort.SetSharedLibraryPath(opts.LibraryPath)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return nil, fmt.Errorf("load onnxruntime from %s: %w", opts.LibraryPath, err)
	}
	envRefs, envPath = 1, opts.LibraryPath
	return &Environment{version: ort.GetVersion(), nice: opts.ExecutionNice}, nil
}

// Version returns the version of the loaded ONNX Runtime library.
func (e *Environment) Version() string { return e.version }

// Close releases the environment; the last Close in the process destroys
// ONNX Runtime's environment. Closing twice is a no-op.
func (e *Environment) Close() error {
	envMu.Lock()
	defer envMu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	envRefs--
	if envRefs > 0 {
		return nil
	}
	envPath = ""
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("destroy onnxruntime environment: %w", err)
	}
	return nil
}
