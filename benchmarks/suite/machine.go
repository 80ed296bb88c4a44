package suite

import (
	"bufio"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"
)

// Machine describes where the suite ran.
type Machine struct {
	Cores       int    `json:"cores"`
	CPU         string `json:"cpu"`
	OS          string `json:"os"`
	Kernel      string `json:"kernel,omitempty"`
	Go          string `json:"go"`
	ONNXRuntime string `json:"onnxruntime"`
	Infergate   string `json:"infergate"`
	// LoadBefore and LoadAfter are /proc/loadavg's 1, 5 and 15 minute
	// load averages when the suite started and ended: on a shared machine,
	// other work shows there and in the figures.
	LoadBefore string `json:"load_before,omitempty"`
	LoadAfter  string `json:"load_after,omitempty"`
}

// loadAverage is the first three fields of /proc/loadavg, or "".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// describeMachine fills what can be read without the suite's runs.
func describeMachine(infergate, lib string) Machine {
	m := Machine{Cores: goruntime.NumCPU(), CPU: cpuModel(), OS: goruntime.GOOS + "/" + goruntime.GOARCH, Go: goruntime.Version(), LoadBefore: loadAverage()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	// infergate version prints "infergate X" and "onnxruntime Y".
	if out, err := exec.Command(infergate, "version", "--onnxruntime-lib", lib).Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "infergate "); ok {
				m.Infergate = strings.TrimSpace(v)
			}
		}
	}
	return m
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
