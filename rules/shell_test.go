package rules

import (
	"errors"
	"reflect"
	"testing"
)

func TestShellWords(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"ls -la", []string{"ls", "-la"}},
		{`echo 'a b' "c \"d\"" e\ f`, []string{"echo", "a b", `c "d"`, "e f"}},
		{"a&&b||c;d|e&f", []string{"a", "&&", "b", "||", "c", ";", "d", "|", "e", "&", "f"}},
		{"cat x > y 2>&1", []string{"cat", "x", ">", "y", "2>&1"}},
		{"cmd >>log <in &>all", []string{"cmd", ">>", "log", "<", "in", "&>", "all"}},
		{"ls # comment\npwd", []string{"ls", "\n", "pwd"}},
		{"echo a#b", []string{"echo", "a#b"}},
		{"echo $'a\\nb'", []string{"echo", "a\nb"}},
		{"echo $(date) `id`", []string{"echo", "$(date)", "`id`"}},
		{"line \\\ncontinued", []string{"line", "continued"}},
		{"(cd x; ls)", []string{"(", "cd", "x", ";", "ls", ")"}},
		{"", []string{}},
	}
	for _, tc := range cases {
		got, err := shellWords(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"echo 'x", `echo "x`, "echo $(x", "echo `x", "echo $'x"} {
		if _, err := shellWords(bad); !errors.Is(err, errShell) {
			t.Errorf("shellWords(%q): err %v, want errShell", bad, err)
		}
	}
}

func TestShellCommands(t *testing.T) {
	cases := []struct {
		in   string
		want [][]string
	}{
		{"ls; rm -rf x && echo ok", [][]string{{"ls"}, {"rm", "-rf", "x"}, {"echo", "ok"}}},
		{"echo $(rm -rf /)", [][]string{{"echo", "$(rm -rf /)"}, {"rm", "-rf", "/"}}},
		{`bash -c "ls; rm a"`, [][]string{{"bash", "-c", "ls; rm a"}, {"ls"}, {"rm", "a"}}},
		{`sudo sh -ec 'rm b'`, [][]string{{"sudo", "sh", "-ec", "rm b"}, {"rm", "b"}}},
		{`eval "rm c"`, [][]string{{"eval", "rm c"}, {"rm", "c"}}},
		{`diff <(ls a) "$(ls b)"`, [][]string{{"diff", "<(ls a)", "$(ls b)"}, {"ls", "a"}, {"ls", "b"}}},
	}
	for _, tc := range cases {
		got, err := shellCommands(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("shellCommands(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	deep := "x"
	for range maxShellDepth + 2 {
		deep = "echo $(" + deep + ")"
	}
	if _, err := shellCommands(deep); !errors.Is(err, errShell) {
		t.Errorf("deep nesting: %v", err)
	}
}

func TestShellUnwrap(t *testing.T) {
	cases := []struct{ in, want []string }{
		{[]string{"/bin/rm", "-rf", "x"}, []string{"rm", "-rf", "x"}},
		{[]string{"FOO=1", "BAR=2", "make"}, []string{"make"}},
		{[]string{"sudo", "-u", "root", "-E", "env", "A=b", "nohup", "nice", "-n", "5", "rm", "x"}, []string{"rm", "x"}},
		{[]string{"timeout", "-s", "KILL", "10s", "git", "push"}, []string{"git", "push"}},
		{[]string{"xargs", "-0", "-n", "1", "rm"}, []string{"rm"}},
		{[]string{"sudo"}, []string{}},
		{[]string{"ls", "FOO=1"}, []string{"ls", "FOO=1"}},
	}
	for _, tc := range cases {
		if got := shellUnwrap(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("shellUnwrap(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
