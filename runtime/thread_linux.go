package runtime

import "golang.org/x/sys/unix"

// niceSupported says that setThreadNice works here.
const niceSupported = true

// threadNice returns the calling OS thread's nice value.
func threadNice() (int, error) {
	p, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	return 20 - p, err // the system call answers 20 - nice
}

// setThreadNice sets the calling OS thread's nice value: on Linux
// PRIO_PROCESS with a thread id is per thread, and threads it creates
// (ONNX Runtime's intra-op pool) inherit it.
func setThreadNice(nice int) error {
	return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice)
}
