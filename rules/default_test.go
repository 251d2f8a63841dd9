package rules

import (
	"context"
	"os"
	"testing"
)

func TestDefaultPackCompiles(t *testing.T) {
	s, err := Parse(DefaultName, DefaultSource())
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() < 10 || s.Label() == "" || s.Version() != Default().Version() {
		t.Fatalf("default pack: %d rules, label %q, version %q vs %q", s.Len(), s.Label(), s.Version(), Default().Version())
	}
}

func TestDefaultPackCases(t *testing.T) {
	data, err := os.ReadFile("testdata/default_cases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases, err := ParseCases("testdata/default_cases.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	s := Default()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if err := c.Check(c.Decide(context.Background(), s)); err != nil {
				t.Errorf("line %d: %v", c.Line, err)
			}
		})
	}
}
