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
}

// describeMachine fills what can be read without the suite's runs.
func describeMachine(infergate, lib string) Machine {
	m := Machine{Cores: goruntime.NumCPU(), CPU: cpuModel(), OS: goruntime.GOOS + "/" + goruntime.GOARCH, Go: goruntime.Version()}
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
