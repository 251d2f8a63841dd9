package rules

import (
	"slices"
	"testing"

	"github.com/toolgate/toolgate"
)

// TestPathArgKeys: a path argument is known by its words in any spelling;
// a word that merely ends in "file" (profile) or a bare name is none.
func TestPathArgKeys(t *testing.T) {
	for k, want := range map[string]bool{
		"path": true, "Path": true, "PATH": true, "absolute_path": true, "relative_path": true, "FilePath": true,
		"file-path": true, "pathname": true, "target_file": true, "file_name": true, "fileName": true, "FILE_NAME": true,
		"outDir": true, "location": false, "workingDirectory": true, "filenames": true, "dir_name": true,
		"profile": false, "name": false, "mobile": false, "file_type": false, "filename_pattern": false, "encoding": false,
		"tile": false, "": false, "_": false,
	} {
		if got := isPathKeyWords(nameWords(k)); got != want {
			t.Errorf("isPathKeyWords(nameWords(%q)) = %v, want %v", k, got, want)
		}
	}
	for k, want := range map[string]bool{
		"url": true, "URL": true, "baseUrl": true, "webhook_url": true, "db_host": true, "proxy": true, "http_proxy": true,
		"httpsProxy": true, "proxy_url": true, "socks": true, "forward": false, "name": false, "hosting": false,
	} {
		if got := isURLKeyWords(nameWords(k)); got != want {
			t.Errorf("isURLKeyWords(nameWords(%q)) = %v, want %v", k, got, want)
		}
	}
}

// TestFileToolLooseArgs: a file tool's string argument under a key
// toolgate does not know is a path; under a text key only when the call
// names no other or it has a ".." component; other kinds' loose strings
// are no paths.
func TestFileToolLooseArgs(t *testing.T) {
	ws := Workspace{Root: "/h/p", Home: "/h"}
	for _, tc := range []struct {
		tool        string
		args        map[string]any
		paths, dest []string
	}{
		{"read_file", map[string]any{"name": "/etc/hosts"}, []string{"/etc/hosts"}, nil},
		{"read_file", map[string]any{"name": "notes.txt"}, []string{"/h/p/notes.txt"}, nil},
		{"read_file", map[string]any{"path": ".", "name": "../../.ssh/id_rsa"}, []string{"/h/p", "/.ssh/id_rsa"}, nil},
		{"read_file", map[string]any{"path": ".", "name": "~/.ssh/id_rsa"}, []string{"/h/p", "/h/.ssh/id_rsa"}, nil},
		{"read_file", map[string]any{"path": ".", "name": ".env", "offset": 3.0}, []string{"/h/p", "/h/p/.env"}, nil},
		{"read_file", map[string]any{"path": ".", "location": "/etc/hosts"}, []string{"/h/p", "/etc/hosts"}, nil},
		{"create_file", map[string]any{"path": ".", "name": "../.bashrc", "content": "/etc/x ~/y"}, []string{"/h/p", "/h/.bashrc"}, []string{"/h/p", "/h/.bashrc"}},
		{"edit_file", map[string]any{"target_file": "a.go", "code_edit": "// ~/x ../y /etc/z"}, []string{"/h/p/a.go"}, nil}, // an edit reads its file
		{"search_files", map[string]any{"path": ".", "pattern": "../../.ssh/*"}, []string{"/h/p", "/.ssh/*"}, nil},
		{"search_files", map[string]any{"path": ".", "pattern": "^/api/", "query": "~/x"}, []string{"/h/p"}, nil},
		{"read_multiple_files", map[string]any{"paths": []any{[]any{"/h/.ssh/id_rsa"}}}, []string{"/h/.ssh/id_rsa"}, nil},
		{"copy_file", map[string]any{"src_path": "a", "dest_path": "b"}, []string{"/h/p/b", "/h/p/a"}, []string{"/h/p/b"}},
		{"lookup_user", map[string]any{"name": "/etc/hosts"}, nil, nil},
		{"get_weather", map[string]any{"location": "/Paris"}, nil, nil},
	} {
		c := toolgate.Call{Tool: tc.tool, Server: "fs", Args: tc.args}
		n := normalize(&c, ws, nil)
		var dest []string
		for _, p := range n.written {
			if n.dest[p] {
				dest = append(dest, p)
			}
		}
		if !slices.Equal(n.paths, tc.paths) || !slices.Equal(dest, tc.dest) {
			t.Errorf("%s %v (%s): paths %q, dest %q; want %q, %q", tc.tool, tc.args, n.kind, n.paths, dest, tc.paths, tc.dest)
		}
	}
}

// TestURLArgs: a file: URL under any key is a path, never a host; a URL
// whose authority parsers read differently names anyHost; a proxy argument
// names its host.
func TestURLArgs(t *testing.T) {
	ws := Workspace{Root: "/h/p", Home: "/h"}
	for _, tc := range []struct {
		args         map[string]any
		paths, hosts []string
	}{
		{map[string]any{"url": "file://localhost/h/.aws/credentials"}, []string{"/h/p/localhost/h/.aws/credentials", "/h/.aws/credentials"}, nil},
		{map[string]any{"url": " FILE:///h/.netrc"}, []string{"/h/p/ FILE:/h/.netrc", "/h/.netrc"}, nil},
		{map[string]any{"x": "file:/h/.netrc"}, []string{"/h/p/file:/h/.netrc", "/h/.netrc"}, nil},
		{map[string]any{"x": "file: not a url"}, nil, nil},
		{map[string]any{"url": `http://0x7f000001:9999\@localhost/EXFIL`}, nil, []string{anyHost}},
		{map[string]any{"url": `http://evil.example\@localhost/`}, nil, []string{anyHost}},
		{map[string]any{"url": "http://evil.example\t@localhost/"}, nil, []string{anyHost}},
		{map[string]any{"url": "http://evil.example%2f.localhost/"}, nil, []string{anyHost}},
		{map[string]any{"url": "http://bücher.example/"}, nil, []string{anyHost}},
		{map[string]any{"url": "http:///evil.example/"}, nil, []string{anyHost}},
		{map[string]any{"url": "ht\ttp://localhost/"}, nil, []string{anyHost}},
		{map[string]any{"url": "http://us%40er:p@localhost:3000/a%20b"}, nil, []string{"localhost"}},
		{map[string]any{"url": "https://Example.COM./x\ty"}, nil, []string{"example.com"}},
		{map[string]any{"url": "sqlite:///x.db"}, nil, nil},
		{map[string]any{"url": "http://localhost/", "proxy": "evil.example:3128"}, nil, []string{"evil.example", "localhost"}},
		{map[string]any{"url": "http://localhost/", "https_proxy": "socks5://evil.example"}, nil, []string{"evil.example", "localhost"}},
	} {
		c := toolgate.Call{Tool: "fetch", Server: "f", Args: tc.args}
		n := normalize(&c, ws, nil)
		if !slices.Equal(n.paths, tc.paths) || !slices.Equal(n.hosts, tc.hosts) {
			t.Errorf("%q: paths %q, hosts %q; want %q, %q", tc.args, n.paths, n.hosts, tc.paths, tc.hosts)
		}
	}
}
