package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// Profiles of serve, for performance work (docs/operating.md):
// TOOLGATE_CPUPROFILE=FILE writes a CPU profile of the whole run to FILE,
// TOOLGATE_MEMPROFILE=FILE a heap profile (what was allocated since the
// start, and what is still live) when serve returns. They are read from the
// environment only and open no listener: nothing an agent sends over MCP or
// HTTP turns them on or reads them. A profile holds code locations and
// sizes, not the data of calls.
const (
	envCPUProfile = "TOOLGATE_CPUPROFILE"
	envMemProfile = "TOOLGATE_MEMPROFILE"
)

// startProfiles starts what the environment asks for; stop writes and
// closes the profiles.
func startProfiles(env environ) (stop func() error, err error) {
	cpuPath, memPath := env.Getenv(envCPUProfile), env.Getenv(envMemProfile)
	var cpu *os.File
	if cpuPath != "" {
		if cpu, err = os.Create(cpuPath); err != nil {
			return nil, fmt.Errorf("%s: %w", envCPUProfile, err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			return nil, errors.Join(fmt.Errorf("%s: %w", envCPUProfile, err), cpu.Close())
		}
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpu.Close())
		}
		if memPath != "" {
			errs = append(errs, writeHeapProfile(memPath))
		}
		return errors.Join(errs...)
	}, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%s: %w", envMemProfile, err)
	}
	runtime.GC() // the live heap as of now, not as of the last collection
	return errors.Join(pprof.WriteHeapProfile(f), f.Close())
}
