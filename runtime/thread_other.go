//go:build !linux

package runtime

const niceSupported = false

func threadNice() (int, error) { return 0, errNiceUnsupported }

func setThreadNice(int) error { return errNiceUnsupported }
