package runtime

import "golang.org/x/sys/unix"

// setThreadNice sets the calling OS thread's nice value: on Linux
// PRIO_PROCESS with a thread id is per thread, and threads it creates
// (ONNX Runtime's intra-op pool) inherit it.
func setThreadNice(nice int) error {
	return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice)
}
