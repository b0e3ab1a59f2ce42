package main

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine describes where a run was measured.
type machine struct {
	Date       string  `json:"date"`
	CPUModel   string  `json:"cpu_model"`
	Cores      int     `json:"cores"`
	MemoryGiB  float64 `json:"memory_gib"`
	Kernel     string  `json:"kernel"`
	GoVersion  string  `json:"go_version"`
	GitCommit  string  `json:"git_commit"`
	LoadStart  string  `json:"load_average_start"`
	LoadEnd    string  `json:"load_average_end,omitempty"`
	Hostname   string  `json:"hostname"`
	DurationS  float64 `json:"run_seconds,omitempty"`
	ConfigsDir string  `json:"configs_dir"`
}

func describeMachine(repoDir, configDir string) machine {
	m := machine{
		Date:       time.Now().UTC().Format(time.RFC3339),
		CPUModel:   cpuModel(),
		Cores:      runtime.NumCPU(),
		MemoryGiB:  memTotalGiB(),
		Kernel:     strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		GoVersion:  runtime.Version(),
		GitCommit:  gitCommit(repoDir),
		LoadStart:  loadAverage(),
		ConfigsDir: configDir,
	}
	m.Hostname, _ = os.Hostname()
	return m
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func cpuModel() string {
	for _, line := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotalGiB() float64 {
	sc := bufio.NewScanner(strings.NewReader(readFile("/proc/meminfo")))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err == nil {
				return float64(int(kb/(1<<20)*10+0.5)) / 10
			}
		}
	}
	return 0
}

// loadAverage is the 1, 5 and 15 minute load averages: how busy the machine was.
func loadAverage() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// gitCommit is the commit of the work tree, with "+dirty" when tracked files differ
// from it.
func gitCommit(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		commit += "+dirty"
	}
	return commit
}
