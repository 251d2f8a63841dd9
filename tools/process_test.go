package tools

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
)

// TestStdioEnvironment: a stdio upstream's environment is exactly BaseEnv
// then Env (Env winning on a shared key), with nothing of the environment
// toolgate itself runs with; with neither, it is empty.
func TestStdioEnvironment(t *testing.T) {
	t.Setenv("TOOLGATE_TEST_SECRET", "xoxb-secret")
	cases := []struct {
		name      string
		base, env []string
		want      []string
	}{
		{"base and env", []string{"PATH=/bin", "LANG=C.UTF-8"}, []string{"FOO=bar", "LANG=fr_FR.UTF-8"},
			[]string{"PATH=/bin", "LANG=fr_FR.UTF-8", "FOO=bar"}},
		{"neither", nil, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := startCatalog(t, Options{Upstreams: []Upstream{{Name: "up", Command: upstreamBin, BaseEnv: tc.base, Env: tc.env}}})
			res, err := c.Forward(context.Background(), call(c, "up__env", nil))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			if err := json.Unmarshal([]byte(text(res)), &got); err != nil {
				t.Fatalf("env %q: %v", text(res), err)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("upstream environment = %q, want %q", got, want)
			}
		})
	}
}
