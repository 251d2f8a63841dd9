//go:build !linux

package rules

import "time"

// threadCPU is not measured here: -1.
func threadCPU() time.Duration { return -1 }
