//go:build !linux

package sandbox

// watcher and holdWatch do nothing elsewhere than Linux, where no run is
// sandboxed.
type watcher struct{}

type holdWatch struct{}

func newWatcher() *watcher { return &watcher{} }

func (*watcher) watch([]holdPath, *holdLog, func()) (*holdWatch, error) {
	return &holdWatch{}, nil
}

func (*watcher) close() {}

func (*holdWatch) stop() {}
