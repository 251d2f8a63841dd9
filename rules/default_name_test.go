package rules

import "testing"

func TestDefaultNameLoadsTheEmbeddedPack(t *testing.T) {
	s, err := Load(DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version() != Default().Version() {
		t.Errorf("Load(%q) = %s, want the embedded pack %s", DefaultName, s.Version(), Default().Version())
	}
	l, err := NewLive(DefaultName, LiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Current().Version() != Default().Version() {
		t.Errorf("NewLive(%q) serves %s, want the embedded pack", DefaultName, l.Current().Version())
	}
}
