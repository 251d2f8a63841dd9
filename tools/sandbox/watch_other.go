//go:build !linux

package sandbox

// holdWatch does nothing elsewhere than Linux, where no run is sandboxed.
type holdWatch struct{}

func watchHold([]holdPath, []string, func(string) bool, *holdLog, func()) (*holdWatch, error) {
	return &holdWatch{}, nil
}

func (*holdWatch) stop() {}
