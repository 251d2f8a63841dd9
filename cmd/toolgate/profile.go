package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// Profiles of serve, for performance work (docs/operating.md):
// TOOLGATE_CPUPROFILE=FILE writes a CPU profile of the whole run to FILE,
// TOOLGATE_MEMPROFILE=FILE a heap profile (what was allocated since the
// start, and what is still live) when serve returns, TOOLGATE_TRACE=FILE an
// execution trace of the whole run (go tool trace). They are read from the
// environment only and open no listener: nothing an agent sends over MCP or
// HTTP turns them on or reads them. A profile holds code locations and
// sizes, not the data of calls.
const (
	envCPUProfile = "TOOLGATE_CPUPROFILE"
	envMemProfile = "TOOLGATE_MEMPROFILE"
	envTrace      = "TOOLGATE_TRACE"
)

// startProfiles starts what the environment asks for; stop writes and
// closes the profiles.
func startProfiles(env environ) (stop func() error, err error) {
	cpuPath, memPath, tracePath := env.Getenv(envCPUProfile), env.Getenv(envMemProfile), env.Getenv(envTrace)
	cpu, err := startRecording(envCPUProfile, cpuPath, pprof.StartCPUProfile)
	if err != nil {
		return nil, err
	}
	tr, err := startRecording(envTrace, tracePath, trace.Start)
	if err != nil {
		if cpu != nil {
			pprof.StopCPUProfile()
			err = errors.Join(err, cpu.Close())
		}
		return nil, err
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpu.Close())
		}
		if tr != nil {
			trace.Stop()
			errs = append(errs, tr.Close())
		}
		if memPath != "" {
			errs = append(errs, writeHeapProfile(memPath))
		}
		return errors.Join(errs...)
	}, nil
}

// startRecording creates path and starts a recording into it with start;
// no path, no recording (nil file).
func startRecording(name, path string, start func(io.Writer) error) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := start(f); err != nil {
		return nil, errors.Join(fmt.Errorf("%s: %w", name, err), f.Close())
	}
	return f, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%s: %w", envMemProfile, err)
	}
	runtime.GC() // the live heap as of now, not as of the last collection
	return errors.Join(pprof.WriteHeapProfile(f), f.Close())
}
