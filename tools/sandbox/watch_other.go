//go:build !linux

package sandbox

// holdWatch does nothing elsewhere than Linux, where no run is sandboxed.
type holdWatch struct{}

func watchHold([]holdPath, *holdLog, func()) (*holdWatch, error) {
	return &holdWatch{}, nil
}

func (*holdWatch) stop() {}
