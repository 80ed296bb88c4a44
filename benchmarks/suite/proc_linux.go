package suite

import "syscall"

// sysProcAttr makes a server die with the suite, even when the suite is
// killed before it can stop it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
