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
}

// Environment is an open ONNX Runtime environment. Close it when every
// Session opened from it is closed.
type Environment struct {
	version string
	closed  bool
}

// Open loads ONNX Runtime from opts.LibraryPath and initializes its
// environment. A second Open in the same process shares the environment and
// must name the same library.
func Open(opts Options) (*Environment, error) {
	if opts.LibraryPath == "" {
		return nil, ErrLibraryNotFound
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
		return &Environment{version: ort.GetVersion()}, nil
	}
	ort.SetSharedLibraryPath(opts.LibraryPath)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return nil, fmt.Errorf("load onnxruntime from %s: %w", opts.LibraryPath, err)
	}
	envRefs, envPath = 1, opts.LibraryPath
	return &Environment{version: ort.GetVersion()}, nil
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
