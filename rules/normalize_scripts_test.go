package rules

import (
	"slices"
	"strings"
	"testing"
)

func TestSedScript(t *testing.T) {
	for _, tc := range []struct {
		script string
		ok     bool
		files  []sedFile
	}{
		{script: "1,20p", ok: true},
		{script: "s/a/b/g", ok: true},
		{script: "s|x|y|", ok: true},
		{script: "/^#/d", ok: true},
		{script: "$!N;s/\\n/ /", ok: true},
		{script: ":a;N;$!ba;s/\\n/,/g", ok: true},
		{script: "/start/,/end/{/x/!p}", ok: true},
		{script: "s/[/]/-/g", ok: true},
		{script: "s/a\\/b/c/2pI", ok: true},
		{script: "y/abc/xyz/", ok: true},
		{script: "0,/x/d;1~3p;5,+2d;4,~4d;$q3", ok: true},
		{script: "\\,x,Id", ok: true},
		{script: "1i header", ok: true},
		{script: "# comment\np", ok: true},
		{script: "1etouch /tmp/x"},
		{script: "1 e id"},
		{script: "e"},
		{script: "s,.*,touch /tmp/x,e"},
		{script: "s@x@id@e"},
		{script: "s/x/y/3e"},
		{script: "s/x/y/;e id"},
		{script: "1!e id"},
		{script: "/a/,/b/e id"},
		{script: "s/[/]/x/e"},
		{script: "1a x\ne id"},
		{script: "b end;e id"},
		{script: "v"},
		{script: "s/x/y"},
		{script: "px"},
		{script: "1r/home/u/.ssh/id_rsa", ok: true, files: []sedFile{{name: "/home/u/.ssh/id_rsa"}}},
		{script: "1~1r k", ok: true, files: []sedFile{{name: "k"}}},
		{script: "/x/I r k", ok: true, files: []sedFile{{name: "k"}}},
		{script: "\\,x,r k", ok: true, files: []sedFile{{name: "k"}}},
		{script: "$R k;p", ok: true, files: []sedFile{{name: "k;p"}}},
		{script: "s,x,y,w .git/hooks/pre-commit", ok: true, files: []sedFile{{write: true, name: ".git/hooks/pre-commit"}}},
		{script: "w.git/hooks/pre-commit", ok: true, files: []sedFile{{write: true, name: ".git/hooks/pre-commit"}}},
		{script: "W out\np", ok: true, files: []sedFile{{write: true, name: "out"}}},
		{script: "r"},
	} {
		files, ok := sedScript(tc.script)
		if ok != tc.ok || !slices.Equal(files, tc.files) {
			t.Errorf("sedScript(%q) = %v, %v; want %v, %v", tc.script, files, ok, tc.files, tc.ok)
		}
	}
}

// FuzzSedScript holds the parse to ending where sed does or earlier: an
// e command on a line of its own after any script it accepts is seen.
func FuzzSedScript(f *testing.F) {
	for _, s := range []string{"p", "s/a/b/g", "1a x\\", "1r f", "/[/]/d", "y/a/b/", "#n", "{p", ":a;ba", "s/x/y/w f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		files, ok := sedScript(s)
		if !ok {
			return
		}
		for _, fl := range files {
			if !strings.Contains(s, fl.name) {
				t.Fatalf("sedScript(%q) names %q, not in the script", s, fl.name)
			}
		}
		if _, ok := sedScript(s + "\ne id"); ok {
			t.Fatalf("sedScript(%q + e id) accepted", s)
		}
	})
}

func TestAwkScript(t *testing.T) {
	for _, tc := range []struct {
		prog string
		runs bool
		env  []string
	}{
		{prog: "{print $1}"},
		{prog: "$3>1000{print $1}"},
		{prog: "{s+=$2} END{print s/NR}"},
		{prog: `{print $1 " -> " $2 "|"}`},
		{prog: `/a|b/{print}`},
		{prog: `BEGIN{print ENVIRON["HOME"]}`, env: []string{"HOME"}},
		{prog: `BEGIN{for(k in ENVIRON) print k}`, env: []string{"*"}},
		{prog: `BEGIN{while((getline l < "/home/u/.ssh/id_rsa")>0) print l}`, runs: true},
		{prog: `BEGIN{while((getline l<f)>0)print l}`, runs: true},
		{prog: `BEGIN{ARGV[1]="/k";ARGC=2}{print}`, runs: true},
		{prog: `BEGIN{"id" |& getline x}`, runs: true},
		{prog: `BEGIN{f="sys" "tem"; @f("id")}`, runs: true},
		{prog: `@include "x.awk"`, runs: true},
		{prog: `BEGIN{system("id")}`, runs: true},
		{prog: `{print "}" > ".git/hooks/pre-commit"}`, runs: true},
		{prog: `{print > "f"}`, runs: true},
		{prog: `{printf("x") >> "f"}`, runs: true},
		{prog: `{print | "sh"}`, runs: true},
		{prog: `/"/{print "x" > "f"} /"/`, runs: true},
		{prog: `{x = a / "/"; print "x" > "f"}`, runs: true},
		{prog: `{fflush("sh")}`, runs: true},
		{prog: `{x = a++ / 2; print "y" > "f"; y = b / 2}`, runs: true},
	} {
		runs, env := awkScript(tc.prog)
		if runs != tc.runs || !slices.Equal(env, tc.env) {
			t.Errorf("awkScript(%q) = %v, %v; want %v, %v", tc.prog, runs, env, tc.runs, tc.env)
		}
	}
}

func TestJqScript(t *testing.T) {
	for _, tc := range []struct {
		filter string
		env    []string
		loads  bool
	}{
		{filter: ".a"},
		{filter: ".[] | .name"},
		{filter: ".env.API_TOKEN"},
		{filter: `.["env"]`},
		{filter: "env", env: []string{"*"}},
		{filter: "[env]", env: []string{"*"}},
		{filter: "$ENV", env: []string{"*"}},
		{filter: "$ENV|keys", env: []string{"*"}},
		{filter: "$ENV.AWS_SECRET_ACCESS_KEY", env: []string{"AWS_SECRET_ACCESS_KEY"}},
		{filter: "env.HOME", env: []string{"HOME"}},
		{filter: "strenv(DEPLOY_TOKEN)", env: []string{"DEPLOY_TOKEN"}},
		{filter: "env(X)", env: []string{"X"}},
		{filter: "strenv($x)", env: []string{"*"}},
		{filter: "envsubst", env: []string{"*"}},
		{filter: `load_str("k")`, loads: true},
		{filter: `include "m"; 1`, loads: true},
	} {
		env, loads := jqScript(tc.filter)
		if loads != tc.loads || !slices.Equal(env, tc.env) {
			t.Errorf("jqScript(%q) = %v, %v; want %v, %v", tc.filter, env, loads, tc.env, tc.loads)
		}
	}
}
