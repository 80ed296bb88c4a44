//go:build !linux

package runtime

import "errors"

func setThreadNice(int) error {
	return errors.New("per-thread priority is supported on Linux only")
}
