package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestStartProfiles: each variable set gives its file, in its format, once
// the profiles stop; a file that cannot be created fails the start.
func TestStartProfiles(t *testing.T) {
	dir := t.TempDir()
	paths := map[string]string{
		envCPUProfile: filepath.Join(dir, "cpu.prof"),
		envMemProfile: filepath.Join(dir, "mem.prof"),
		envTrace:      filepath.Join(dir, "trace.out"),
	}
	stop, err := startProfiles(mapEnv(paths))
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	gzip := []byte{0x1f, 0x8b} // pprof profiles are gzipped protobuf
	for name, magic := range map[string][]byte{envCPUProfile: gzip, envMemProfile: gzip, envTrace: []byte("go 1.")} {
		b, err := os.ReadFile(paths[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.HasPrefix(b, magic) {
			t.Errorf("%s: file starts %q, want %q", name, b[:min(len(b), 8)], magic)
		}
	}

	for _, name := range []string{envCPUProfile, envTrace} {
		if _, err := startProfiles(mapEnv{name: filepath.Join(dir, "missing", "x")}); err == nil {
			t.Errorf("%s in a missing directory: started", name)
		}
	}
	// A failed trace start stops the CPU profile it started: a new one can start.
	if _, err := startProfiles(mapEnv{envCPUProfile: filepath.Join(dir, "cpu2.prof"), envTrace: filepath.Join(dir, "missing", "x")}); err == nil {
		t.Fatal("trace in a missing directory: started")
	}
	stop, err = startProfiles(mapEnv{envCPUProfile: filepath.Join(dir, "cpu3.prof")})
	if err != nil {
		t.Fatalf("CPU profile after a failed start: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
