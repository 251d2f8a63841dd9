package rules

import (
	"path"
	"regexp"
	"slices"
	"strings"
)

// readers only read the paths their arguments name (or name none), so
// those paths do not count as written.
var readers = map[string]bool{
	"cat": true, "head": true, "tail": true, "less": true, "more": true, "grep": true, "egrep": true, "fgrep": true,
	"rg": true, "ag": true, "ack": true, "ls": true, "ll": true, "tree": true, "stat": true, "file": true, "wc": true,
	"du": true, "df": true, "find": true, "fd": true, "diff": true, "cmp": true, "comm": true, "md5sum": true,
	"sha1sum": true, "sha256sum": true, "sha512sum": true, "shasum": true, "cksum": true, "b2sum": true,
	"base64": true, "xxd": true, "od": true, "hexdump": true, "strings": true, "nl": true, "sort": true, "uniq": true,
	"cut": true, "tr": true, "paste": true, "join": true, "column": true, "fold": true, "fmt": true, "rev": true,
	"tac": true, "awk": true, "gawk": true, "mawk": true, "sed": true, "jq": true, "yq": true, "realpath": true,
	"readlink": true, "basename": true, "dirname": true, "echo": true, "printf": true, "test": true, "[": true,
	"true": true, "false": true, "which": true, "type": true, "whereis": true, "command": true, "pwd": true,
	"cd": true, "pushd": true, "popd": true, "bat": true, "batcat": true, "curl": true, "wget": true, "git": true,
	"ssh": true, "nc": true, "ping": true, "dig": true, "host": true, "nslookup": true, "whoami": true, "id": true,
	"uname": true, "date": true, "env": true, "printenv": true, "sleep": true, "exit": true, "set": true,
	"export": true, "unset": true, "source": true, ".": true, "xargs": true, "tee": false, "expr": true,
	"seq": true, "yes": true, "numfmt": true, "iconv": true, "zcat": true, "zgrep": true, "bzcat": true,
	"xzcat": true, "lsof": true, "ps": true, "pgrep": true, "top": true, "free": true, "uptime": true,
	"hostname": true, "locale": true, "getent": true, "lsblk": true, "mount": false, "diffstat": true,
	"shellcheck": true, "hadolint": true, "cloc": true, "tokei": true, "scc": true, "sqlite3": true,
}

// subcommandPrograms take a subcommand as their first word, not a path.
var subcommandPrograms = map[string]bool{
	"git": true, "go": true, "npm": true, "pnpm": true, "yarn": true, "bun": true, "cargo": true, "docker": true,
	"kubectl": true, "helm": true, "terraform": true, "tofu": true, "pulumi": true, "aws": true, "gcloud": true,
	"az": true, "gh": true, "glab": true, "pip": true, "pip3": true, "uv": true, "poetry": true, "dotnet": true,
	"mvn": true, "gradle": true, "gradlew": true, "deno": true, "rustup": true, "brew": true, "apt": true,
	"apt-get": true, "systemctl": true, "launchctl": false, "make": true, "just": true, "nx": true, "turbo": true,
	"biome": true, "eslint": false, "podman": true, "flyctl": true, "fly": true, "heroku": true, "vercel": true,
	"netlify": true, "doctl": true, "supabase": true, "firebase": true, "wrangler": true, "rails": true,
	"bundle": true, "gem": true, "composer": true, "mix": true, "stack": true, "cabal": true, "swift": true,
}

// allArgsWritten are programs that write, create or delete every path
// they are given.
var allArgsWritten = map[string]bool{
	"rm": true, "rmdir": true, "unlink": true, "shred": true, "srm": true, "wipe": true, "truncate": true,
	"touch": true, "mkdir": true, "chmod": true, "chown": true, "chgrp": true, "chattr": true, "setfacl": true,
	"tee": true, "mkfifo": true, "mknod": true, "mv": true, "launchctl": true,
}

// lastArgWritten are programs whose last path argument is the destination.
var lastArgWritten = map[string]bool{"cp": true, "ln": true, "install": true, "rsync": true, "scp": true, "ditto": true}

// outputOpts take the file a program writes as their value, for any program.
var outputOpts = map[string]int{
	"--output": 3, "--output-file": 3, "--outfile": 3, "--out": 5, "--out-file": 5,
	"--outdir": 5, "--out-dir": 5, "--output-dir": 3, "--output-document": 3, "--log-file": 6,
	"--directory-prefix": 12,
}

// isOutputOpt reports whether name is a long output option or an
// abbreviation GNU getopt takes for one (sort --outp=FILE): a prefix of
// it at least as long as outputOpts says, which keeps other programs'
// options (ls --directory) out.
func isOutputOpt(name string) bool {
	for full, min := range outputOpts {
		if longOpt(name, min, full) {
			return true
		}
	}
	return false
}

// shortOutputOpts are the single-letter output options of the programs
// that have one.
var shortOutputOpts = map[string]string{
	"curl": "-o", "wget": "-O", "sort": "-o", "gcc": "-o", "cc": "-o", "clang": "-o", "g++": "-o", "c++": "-o",
	"go": "-o", "rustc": "-o", "pandoc": "-o", "ld": "-o", "as": "-o", "ssh-keygen": "-f", "openssl": "-out",
	"base64": "-o", "uglifyjs": "-o", "esbuild": "-o", "tsc": "-outDir", "javac": "-d", "unzip": "-d",
	"zip": "-o", "gzip": "-o", "tar": "-C", "split": "-o", "strace": "-o", "ltrace": "-o", "script": "-O",
	"iconv": "-o", "gcc-ld": "-o", "ld.lld": "-o", "ld.gold": "-o", "tcc": "-o", "zig": "-o", "nasm": "-o",
	"yasm": "-o", "musl-gcc": "-o", "emcc": "-o", "clang++": "-o", "gfortran": "-o", "nvcc": "-o", "tree": "-o",
	"time": "-o",
}

// attachedOut are the programs whose short output option takes its value
// in the same word too (getopt's -oFILE: gcc -o.github/x writes
// .github/x). Programs with long single-dash options (go -overlay, javac
// -deprecation, openssl -outform) are not among them.
var attachedOut = map[string]bool{
	"curl": true, "wget": true, "sort": true, "gcc": true, "cc": true, "clang": true, "g++": true, "c++": true,
	"rustc": true, "pandoc": true, "ld": true, "as": true, "ssh-keygen": true, "base64": true, "unzip": true,
	"gzip": true, "tar": true, "strace": true, "ltrace": true, "script": true, "iconv": true, "tcc": true,
	"nasm": true, "yasm": true, "musl-gcc": true, "emcc": true, "clang++": true, "gfortran": true, "nvcc": true,
	"ld.lld": true, "ld.gold": true, "tree": true, "time": true,
}

// clusterOut are the flag letters that may come before a program's short
// output option in one word (curl -sSLo FILE, sort -rno FILE): getopt
// programs whose other options in such a cluster take no value.
var clusterOut = map[string]string{
	"curl": "sSLfkvIiqgGNZjJlMpRB0123456", "wget": "qvcNSrkpmbdhFx", "sort": "bdfgiMhnRrscuVz",
	"tree": "aAcCdDfFghilnNpqQrsStuvxRXJ",
}

// targetDirProgs take the directory they write into as -t DIR (also -tDIR,
// a cluster ending in t, and --target-directory[=]DIR); their operands
// are then all sources.
var targetDirProgs = map[string]bool{
	"cp": true, "mv": true, "ln": true, "install": true, "gcp": true, "gmv": true, "gln": true, "ginstall": true,
}

// fetchWriteOpts are the options of fetchers whose value is a file they
// write (headers, cookies, logs, traces) or a directory they write into.
var fetchWriteOpts = map[string]map[string]bool{
	"curl": {"-D": true, "--dump-header": true, "-c": true, "--cookie-jar": true, "--trace": true, "--trace-ascii": true,
		"--stderr": true, "--libcurl": true, "--etag-save": true, "--hsts": true, "--alt-svc": true},
	"wget": {"-o": true, "--output-file": true, "-a": true, "--append-output": true, "-P": true, "--directory-prefix": true,
		"--save-cookies": true, "--warc-file": true, "--rejected-log": true},
}

// operandWriters are readers whose operand at the given index (counting
// every operand, "-" for stdin too) is a file they write: uniq IN OUT,
// xxd IN OUT (xxd -r too).
var operandWriters = map[string]int{"uniq": 1, "xxd": 1}

// valueOpts are the short options of some readers that take the next word
// as their value, so that word is no operand.
var valueOpts = map[string]map[string]bool{
	"uniq": {"-f": true, "-s": true, "-w": true, "--skip-fields": true, "--skip-chars": true, "--check-chars": true},
	"xxd": {"-c": true, "-g": true, "-l": true, "-o": true, "-s": true, "-n": true, "-cols": true, "-len": true,
		"-seek": true, "-groupsize": true, "-name": true, "-offset": true},
	"awk":  {"-v": true, "-F": true, "--assign": true, "--field-separator": true},
	"gawk": {"-v": true, "-F": true, "--assign": true, "--field-separator": true}, "mawk": {"-v": true, "-F": true},
	"nawk": {"-v": true, "-F": true},
}

// netPrograms take a host as a positional argument.
var netPrograms = map[string]bool{
	"ssh": true, "scp": true, "sftp": true, "rsync": true, "nc": true, "ncat": true, "netcat": true, "telnet": true,
	"ftp": true, "mosh": true, "ping": true, "dig": true, "nslookup": true, "host": true, "whois": true, "nmap": true,
	"curl": true, "wget": true, "http": true, "https": true, "xh": true, "httpie": true, "socat": true,
	"ssh-copy-id": true, "sshpass": true, "aria2c": true, "lftp": true, "smbclient": true, "ldapsearch": true,
}

// hostLike matches a bare host, optionally with user, port and path:
// "example.com", "user@10.0.0.1:22/x", "localhost:8080".
var hostLike = regexp.MustCompile(`^(?:[\w.+-]+@)?(?:localhost|\[[0-9a-fA-F:]+\]|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?::[\w./~-]*)?(?:/.*)?$`)

// args records what the arguments of one unwrapped command name: paths
// (and which are written), URLs and hosts, and options that make the
// program run code it does not show.
func (sa *shellAnalysis) args(prog string, cmd []string, cwd string) {
	n := sa.n
	var positional []string
	writeNext := false
	scripts := []string{} // sed and awk programs
	scriptNext := false
	inPlace := false
	findExpr := false
	shortOut := shortOutputOpts[prog]
	codeOpts := interpreters[prog]
	hostDone := false
	valueNext := false // the word is an option's value: a path maybe, not a host
	skipNext := false  // the word is an option's value that names no path
	targetDir := false // cp -t DIR: every operand is a source
	var targetDirs []string
	var operands []string // every operand word, "-" too
	includeNext := false  // gawk -i/-l: the next word is a library
	sedLike, awkLike := prog == "sed" || prog == "gsed", strings.HasSuffix(prog, "awk")
	jqLike := prog == "jq" || prog == "yq" || prog == "gojq" || prog == "jaq"
	jqFilter := jqLike // the next operand is a jq or yq filter, no path
	skipWords := 0     // jq --arg NAME VALUE: words that name no path
	if prog == "printf" || prog == "read" || prog == "mapfile" || prog == "readarray" {
		// printf -v NAME, read NAME, mapfile NAME set a variable the
		// rest of the line runs with (printf -v PATH %s ./bin).
		for i, a := range cmd[1:] {
			name := a
			if prog == "printf" {
				switch {
				case a == "-v" && i+2 < len(cmd):
					name = cmd[i+2]
				case strings.HasPrefix(a, "-v"):
					name = a[2:]
				default:
					continue
				}
			}
			if isLoaderVar(name) {
				n.addEscape(name + "=")
			}
		}
	}
	if prog == "env" || prog == "export" || prog == "declare" || prog == "typeset" {
		for _, a := range cmd[1:] {
			if isAssignment(a) {
				name, val, _ := strings.Cut(a, "=")
				sa.envAssign(name, val)
				if prog == "env" && isLoaderVar(name) {
					n.addEscape(name + "=") // env PATH=./bin ls, as PATH=./bin ls
				}
			}
		}
	}
	if prog == "env" || prog == "exec" {
		// env -u GIT_CONFIG_COUNT drops what toolgate sets for git
		// (safe.bareRepository); -u of a loader variable, what the user
		// set; env -i and bash's exec -c drop all of it.
		for i, a := range cmd[1:] {
			name := ""
			switch {
			case a == "--" || !strings.HasPrefix(a, "-"):
			case prog == "exec" && clusterHas(a, 'c', "a"),
				prog == "env" && (a == "-" || longOpt(a, 4, "--ignore-environment") || clusterHas(a, 'i', "uCS")):
				n.addEscape(prog + " " + a + ": drops the environment toolgate sets")
			case prog == "exec":
			case (a == "-u" || a == "--unset") && i+2 < len(cmd):
				name = cmd[i+2]
			case strings.HasPrefix(a, "--unset="):
				name = strings.TrimPrefix(a, "--unset=")
			case strings.HasPrefix(a, "-u"):
				name = a[2:]
			}
			if strings.HasPrefix(name, "GIT_") || isLoaderVar(name) {
				n.addEscape("env -u " + name)
			}
		}
	}
	for i := 1; i < len(cmd); i++ {
		a := cmd[i]
		if skipNext {
			skipNext = false
			continue
		}
		if skipWords > 0 {
			skipWords--
			continue
		}
		if includeNext {
			includeNext = false
			sa.awkInclude(prog, a, &inPlace, &scripts)
			continue
		}
		if valueNext {
			valueNext = false
			sa.wordPath(a, cwd)
			continue
		}
		if writeNext {
			writeNext = false
			if p := sa.wordPath(a, cwd); p != "" {
				n.addDest(p)
				if targetDir && len(targetDirs) == 0 {
					targetDirs = append(targetDirs, p)
				}
			}
			continue
		}
		if scriptNext {
			scriptNext = false
			scripts = append(scripts, a)
			if codeOpts != nil {
				sa.codeText(a, cwd)
			}
			continue
		}
		if isURL(a) || isFileURL(a) {
			sa.urlWord(a)
			continue
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 || prog == "find" && (a == "(" || a == "!" || a == ")") {
			name, val, hasVal := strings.Cut(a, "=")
			if prog == "find" {
				findExpr = true
			}
			sa.escapeOpt(prog, name, val, hasVal, cmd[i+1:])
			if fetchers[prog] {
				v := val
				if !hasVal && i+1 < len(cmd) {
					v = cmd[i+1]
				}
				if sa.fetchOpt(prog, name, v) {
					if fetchWriteOpts[prog][name] {
						if hasVal {
							n.addDest(sa.wordPath(val, cwd))
						} else {
							writeNext = true
						}
						continue
					}
					if !hasVal {
						valueNext = true
						continue
					}
				}
			}
			short := !strings.HasPrefix(a, "--")
			switch {
			case valueOpts[prog][name] && !hasVal:
				skipNext = true
			case targetDirProgs[prog] && (longOpt(name, 3, "--target-directory") || short && clusterValue(a, 't', "abdfFHilLnPpRrsuvxTZCcD") != ""):
				targetDir = true
				v := val
				if short {
					v = clusterValue(a, 't', "abdfFHilLnPpRrsuvxTZCcD")
				}
				if hasVal || short && v != "-" {
					if p := sa.wordPath(v, cwd); p != "" {
						n.addDest(p)
						targetDirs = append(targetDirs, p)
					}
				} else {
					writeNext = true
				}
			case awkLike && (name == "-i" || name == "-l" || longOpt(name, 4, "--include", "--load")):
				if hasVal {
					sa.awkInclude(prog, val, &inPlace, &scripts)
				} else {
					includeNext = true
				}
			case awkLike && short && (strings.HasPrefix(a, "-i") || strings.HasPrefix(a, "-l")):
				sa.awkInclude(prog, a[2:], &inPlace, &scripts) // gawk -iinplace
			case prog == "yq" && (name == "--inplace" || short && strings.ContainsRune(a[1:], 'i') && !strings.ContainsAny(a, "=/.")):
				inPlace = true
			case prog == "yq" && (name == "--split-exp" || name == "-s"):
				n.addWritten(cwd)
				n.addComputed("yq --split-exp: the files it writes under " + cwd)
				if !hasVal {
					skipNext = true
				}
			case jqLike && (name == "--arg" || name == "--argjson"):
				skipWords = 2
			case jqLike && (name == "--slurpfile" || name == "--rawfile"):
				skipWords = 2 // NAME FILE
				if i+2 < len(cmd) {
					n.readPath(sa.wordPath(cmd[i+2], cwd))
				}
			case jqLike && (name == "--indent" || name == "-L"):
				skipWords = 1
				if name == "-L" && i+1 < len(cmd) {
					n.readPath(sa.wordPath(cmd[i+1], cwd))
				}
			case jqLike && short && strings.HasPrefix(a, "-L"):
				n.readPath(sa.wordPath(a[2:], cwd))
			case jqLike && (name == "-f" || name == "--from-file"):
				jqFilter = false
			case prog == "ssh" && name == "-E":
				writeNext = true
			case sedLike && short && clusterValue(a, 'i', "nrEsuzb") != "":
				inPlace = true // sed -ni, sed -Ei.bak
			case prog == "tree" && short && len(a) > 2 && !strings.HasPrefix(a, "-o") && strings.ContainsRune(a, 'o'):
				// tree takes each value of a cluster from the words after
				// it, in order: -Po PATTERN FILE writes FILE.
				vals, out := 0, -1
				for _, r := range a[1:] {
					if strings.ContainsRune("oLPIHT", r) {
						if r == 'o' && out < 0 {
							out = vals
						}
						vals++
					}
				}
				if i+1+out < len(cmd) {
					if p := sa.wordPath(cmd[i+1+out], cwd); p != "" {
						n.addDest(p)
					}
				}
				skipWords = vals
			case shortOut != "" && len(shortOut) == 2 && short && len(a) > 2 && attachedOut[prog] && strings.HasPrefix(a, shortOut):
				// -oFILE: the value in the same word.
				if p := sa.wordPath(a[2:], cwd); p != "" {
					n.addDest(p)
				}
			case shortOut != "" && len(shortOut) == 2 && short && clusterOut[prog] != "" && clusterValue(a, shortOut[1], clusterOut[prog]) != "":
				if v := clusterValue(a, shortOut[1], clusterOut[prog]); v != "-" {
					if p := sa.wordPath(v, cwd); p != "" {
						n.addDest(p)
					}
				} else {
					writeNext = true
				}
			case isOutputOpt(name) || shortOut != "" && name == shortOut:
				if hasVal {
					if p := sa.wordPath(val, cwd); p != "" {
						n.addDest(p)
					}
				} else {
					writeNext = true
				}
			case prog == "find" && (strings.HasPrefix(name, "-fprint") || name == "-fls"):
				writeNext = true
			case sedLike && short && (clusterValue(a, 'e', "nrEsuzb") != "" || clusterValue(a, 'f', "nrEsuzb") != ""):
				// -ne SCRIPT, -e'1r FILE', -nf FILE: getopt's reading,
				// which takes everything after the letter, = too.
				if v := clusterValue(a, 'e', "nrEsuzb"); v == "-" {
					scriptNext = true
				} else if v != "" {
					scripts = append(scripts, v)
				} else {
					scripts = append(scripts, "")
					if clusterValue(a, 'f', "nrEsuzb") == "-" {
						skipNext = true
					}
				}
			case awkLike && (short && gawkOutput(a) != "" ||
				hasVal && longOpt(name, 4, "--pretty-print", "--profile", "--dump-variables")):
				// gawk -oFILE, -pFILE, -dFILE (after flags too: -bo)
				// and their long forms write the program, a profile or
				// the variables to FILE.
				v := val
				if short {
					v = gawkOutput(a)
				}
				if p := sa.wordPath(v, cwd); p != "" {
					n.addDest(p)
				}
			case awkLike && short && len(a) > 2 && (a[1] == 'e' || a[1] == 'f' || a[1] == 'E'):
				// -e'PROGRAM'; -fFILE and -EFILE hold a program no rule reads.
				if a[1] == 'e' {
					scripts = append(scripts, a[2:])
				} else {
					scripts = append(scripts, "")
				}
			case awkLike && longOpt(name, 4, "--source"):
				if hasVal {
					scripts = append(scripts, val)
				} else {
					scriptNext = true
				}
			case awkLike && short && strings.HasPrefix(a, "-W"):
				// mawk's -W takes a word of its own options, among them
				// exec FILE (-W e): a program no rule reads.
				scripts = append(scripts, "")
				if a == "-W" {
					skipNext = true
				}
			case awkLike && (name == "-E" || longOpt(name, 4, "--exec")):
				scripts = append(scripts, "")
				if !hasVal {
					skipNext = true
				}
			case slices.Contains(codeOpts, name) || (sedLike || awkLike) && name == "-e" ||
				sedLike && longOpt(name, 3, "--expression"):
				if hasVal {
					scripts = append(scripts, val)
				} else {
					scriptNext = true
				}
			case shellInterpreters[prog] && !strings.HasPrefix(name, "--") && strings.ContainsRune(name, 'c'):
				scriptNext = true // the script, followed by run
			case (sedLike || prog == "perl") && strings.HasPrefix(name, "-i") || sedLike && longOpt(name, 3, "--in-place"):
				inPlace = true
			case (sedLike || awkLike) && (name == "-f" || longOpt(name, 4, "--file")):
				scripts = append(scripts, "")
			case short && len(a) > 2 && sa.attachedSecret(prog, a, cwd):
				// -fFILE: read as a secret by whatever option -f is.
			case namesFromFile(prog, name, a):
				// The files it reads are named in a list file, which no
				// rule reads: sort --files0-from=F prints every file F
				// names, ~/.ssh/id_rsa too.
				n.addComputed(prog + " " + name + ": the files named in a list it reads")
				if hasVal {
					sa.wordPath(val, cwd)
				} else if !checkProgs[prog] && !gitStdinOpts[name] {
					valueNext = true // the list file
				}
			case hasVal:
				sa.wordPath(val, cwd)
			}
			continue
		}
		operands = append(operands, a)
		if prog == "sed" && a == "" && inPlace && len(scripts) == 0 {
			continue // BSD sed's -i "" (no backup suffix)
		}
		if (sedLike || awkLike) && len(scripts) == 0 {
			scripts = append(scripts, a)
			continue
		}
		if jqFilter {
			if prog != "yq" || len(operands) > 1 || !slices.Contains([]string{"e", "eval", "ea", "eval-all"}, a) {
				jqFilter = false // read by jqFilters
			}
			continue
		}
		if codeOpts != nil && len(codeOpts) > 0 && codeOpts[0] == a { // deno eval CODE
			scriptNext = true
			continue
		}
		if netPrograms[prog] && !hostDone && hostLike.MatchString(a) && !strings.HasPrefix(a, ".") {
			n.addURL(a)
			if prog != "scp" && prog != "rsync" && !fetchers[prog] {
				hostDone = true // (curl and wget fetch every URL they are given)
			}
			if !strings.Contains(a, ":") || prog == "curl" || prog == "wget" {
				continue
			}
		}
		if prog == "socat" {
			if parts := strings.Split(a, ":"); len(parts) >= 3 && strings.HasPrefix(strings.ToUpper(parts[0]), "TCP") {
				n.addURL(parts[1])
				continue
			}
		}
		if i == 1 && subcommandPrograms[prog] {
			continue
		}
		if strings.HasPrefix(prog, "python") && i > 1 && cmd[i-1] == "-m" {
			continue // a module, not a path
		}
		if prog == "git" && i > 1 {
			if p, ok := sa.gitRevPath(a, cwd); ok {
				n.addPath(p)
				continue
			}
		}
		p := sa.wordPath(a, cwd)
		if p != "" && !(prog == "find" && findExpr) {
			positional = append(positional, p)
		}
	}
	for _, s := range scripts {
		sa.scriptEscapes(prog, s, cwd)
	}
	if jqLike {
		sa.jqFilters(prog, cmd[1:], cwd)
	}
	// What a reader writes to among its operands (uniq IN OUT).
	writtenOp := ""
	if k, ok := operandWriters[prog]; ok && k < len(operands) {
		if writtenOp = sa.wordPath(operands[k], cwd); writtenOp != "" {
			n.addDest(writtenOp)
		}
	}
	if prog == "sqlite3" {
		sa.sqliteWrites(cmd, cwd)
	}
	if prog == "split" || prog == "csplit" || prog == "gsplit" || prog == "gcsplit" {
		n.addComputed(prog + ": the files it names from its prefix")
	}
	if targetDir {
		// cp -t DIR a b writes DIR/a and DIR/b.
		for _, d := range targetDirs {
			for _, p := range positional {
				n.addDest(d + "/" + path.Base(p))
			}
		}
	}
	switch {
	case prog == "tee":
		for _, p := range positional {
			n.addDest(p)
		}
	case allArgsWritten[prog]:
		for _, p := range positional {
			n.addWritten(p)
		}
	case lastArgWritten[prog]:
		if len(positional) > 1 && !targetDir {
			n.addDest(positional[len(positional)-1])
		}
	case inPlace:
		for _, p := range positional {
			n.addWritten(p)
		}
	case prog == "find" && (slices.Contains(cmd, "-delete") || slices.Contains(cmd, "-exec") || slices.Contains(cmd, "-execdir") ||
		slices.Contains(cmd, "-ok") || slices.Contains(cmd, "-okdir")):
		// What find deletes or hands to a program lies under its start points.
		for _, p := range positional {
			n.addWritten(p)
		}
	case prog == "dd":
		for _, a := range cmd[1:] {
			if v, ok := strings.CutPrefix(a, "of="); ok {
				if p := resolvePath(v, cwd, sa.ws); !isDevSink(p) {
					n.addWritten(p)
				}
			}
		}
	case prog == "crontab":
		if !slices.Contains(cmd, "-l") {
			n.addWritten("/var/spool/cron/crontabs")
		}
	case prog == "systemctl" && slices.Contains(cmd, "--user") && (slices.Contains(cmd, "enable") || slices.Contains(cmd, "link")):
		n.addWritten(sa.ws.home() + "/.config/systemd/user")
	case (prog == "npm" || prog == "pnpm" || prog == "yarn") && len(cmd) > 2 && cmd[1] == "config" && cmd[2] == "set":
		n.addWritten(sa.ws.home() + "/.npmrc")
	case prog == "pip" && len(cmd) > 2 && cmd[1] == "config" && cmd[2] == "set":
		n.addWritten(sa.ws.home() + "/.config/pip/pip.conf")
	case prog == "git":
		sa.gitWrites(cmd, cwd)
	case prog == "tar" && len(cmd) > 1 && (strings.HasPrefix(cmd[1], "x") || slices.Contains(cmd, "-x") || slices.Contains(cmd, "--extract") ||
		strings.HasPrefix(cmd[1], "-") && !strings.HasPrefix(cmd[1], "--") && strings.Contains(cmd[1], "x")):
		sa.tarExtract(cmd, cwd)
	case prog == "unzip" && !slices.ContainsFunc(cmd[1:], func(a string) bool {
		return a == "-l" || a == "-t" || a == "-v" || a == "-Z" || a == "-p" || a == "-c" || a == "-z"
	}):
		dir := cwd
		for i, a := range cmd[1:] {
			if a == "-d" && i+2 < len(cmd) {
				dir = resolvePath(cmd[i+2], cwd, sa.ws)
			}
		}
		n.addWritten(dir)
		n.addComputed("unzip: the members it writes under " + dir)
	case !readers[prog] && !shellInterpreters[prog] && shellWrappers[prog] == nil && extraWrappers[prog] == nil &&
		packageRunners[prog] == nil:
		// (Wrappers and package runners write nothing themselves: the
		// commands they run are analysed on their own.)
		// A program not known to only read may write what it is given.
		for _, p := range positional {
			n.addWritten(p)
		}
	}
	// What the program reads: every operand but the ones it only writes to.
	for i, p := range positional {
		if prog != "tee" && !(lastArgWritten[prog] && !targetDir && i == len(positional)-1 && i > 0) && (p != writtenOp || writtenOp == "") {
			mark(&n.read, p)
		}
	}
	if pagers[prog] {
		n.addEscape(prog)
	}
	switch prog {
	case "printenv":
		if len(positional) == 0 {
			n.addEnv("*")
		}
		for _, a := range cmd[1:] {
			if !strings.HasPrefix(a, "-") {
				n.addEnv(a)
			}
		}
	case "set", "export", "declare", "typeset", "compgen":
		if len(cmd) == 1 || slices.Contains(cmd, "-p") || slices.Contains(cmd, "-x") || slices.Contains(cmd, "-v") {
			n.addEnv("*")
		}
	}
}

// clusterValue reads a short-option word as getopt does when the option
// letter opt takes a value: "-oFILE" and "-sLoFILE" give FILE, "-sLo"
// gives "-" (the value is the next word); flags are the letters that may
// come before opt in the word. It returns "" when the word does not hold
// opt.
func clusterValue(a string, opt byte, flags string) string {
	if len(a) < 2 || a[0] != '-' || a[1] == '-' {
		return ""
	}
	for k := 1; k < len(a); k++ {
		if a[k] == opt {
			if k+1 == len(a) {
				return "-"
			}
			return a[k+1:]
		}
		if !strings.ContainsRune(flags, rune(a[k])) {
			return ""
		}
	}
	return ""
}

// awkInclude records a gawk library (-i LIB, -l EXT): -i inplace edits
// every input file; any other library is code the rules cannot read, as
// -f's is.
func (sa *shellAnalysis) awkInclude(prog, lib string, inPlace *bool, scripts *[]string) {
	if strings.Contains(strings.ToLower(lib), "inplace") {
		*inPlace = true
		return
	}
	*scripts = append(*scripts, "")
}

// sqliteRisky matches SQL or dot commands of the sqlite3 shell that write
// files other than the database, attach others, or run programs.
var sqliteRisky = regexp.MustCompile(`(?i)\.(?:output|once|backup|save|log|excel|open|clone|trace|cd|shell|system|load|import|read|archive|ar)\b|\battach\b|\bvacuum\b|writefile|load_extension|edit\s*\(`)

// sqliteWrites records what sqlite3 writes: its database (the first
// operand), and, when its SQL names other files or comes from stdin
// (which no rule can read), that what it writes is computed.
func (sa *shellAnalysis) sqliteWrites(cmd []string, cwd string) {
	db := ""
	sql := 0
	readonly := false
	for i := 1; i < len(cmd); i++ {
		a := cmd[i]
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			name := strings.TrimPrefix(a, "-")
			switch {
			case name == "readonly" || name == "-readonly" || name == "safe" || name == "-safe":
				readonly = true
			case name == "cmd" || name == "-cmd":
				if i+1 < len(cmd) && sqliteRisky.MatchString(cmd[i+1]) {
					sa.n.addComputed("sqlite3 " + cmd[i+1])
				}
				i++
			case name == "init" || name == "-init":
				sa.n.addComputed("sqlite3 -init")
				i++
			case strings.HasPrefix(name, "A") || name == "-archive":
				sa.n.addWritten(cwd)
				sa.n.addComputed("sqlite3 -A: the files it extracts under " + cwd)
			case name == "separator" || name == "newline" || name == "nullvalue" || name == "vfs" || name == "maxsize" ||
				name == "mmap" || name == "pagecache" || name == "lookaside" || name == "heap":
				i++
			}
			continue
		}
		if db == "" {
			db = a
			continue
		}
		sql++
		if sqliteRisky.MatchString(a) {
			sa.n.addComputed("sqlite3 " + a)
		}
	}
	if db != "" && db != ":memory:" && !readonly {
		if p := resolvePath(db, cwd, sa.ws); p != "" {
			sa.n.addWritten(p)
		}
	}
	if sql == 0 && !readonly {
		sa.n.addComputed("sqlite3: the SQL it reads from stdin")
	}
}

// tarExtract records what a tar extraction writes: its directory (cwd, or
// -C/--directory), and the members it writes there, which no rule can
// read (cmd.computed), so anything below it; a --transform/--xform (bsdtar
// -s) renames members to where its replacement says (s,^h,.git/hooks,
// writes .git/hooks), and is computed too.
func (sa *shellAnalysis) tarExtract(cmd []string, cwd string) {
	dir := cwd
	var exprs []string
	for i := 1; i < len(cmd); i++ {
		name, val, hasVal := strings.Cut(cmd[i], "=")
		if !hasVal && i+1 < len(cmd) {
			val = cmd[i+1]
		}
		switch {
		case name == "-C" || longOpt(name, 4, "--directory"):
			dir = resolvePath(val, cwd, sa.ws)
		case longOpt(name, 4, "--transform", "--xform") || name == "-s":
			exprs = append(exprs, val)
		}
	}
	sa.n.addWritten(dir)
	sa.n.addComputed("tar: the members it writes under " + dir)
	for _, e := range exprs {
		for _, repl := range sedReplacements(e) {
			if strings.ContainsAny(repl, `\&`) {
				continue // a back-reference: computed, recorded above
			}
			if repl != "" {
				sa.n.addWritten(resolvePath(repl, dir, sa.ws))
			}
		}
	}
}

// sedReplacements returns the replacements of the s commands in a
// tar --transform expression ("s,^h,.git/hooks,;s/a/b/g"); one it cannot
// split is returned whole.
func sedReplacements(e string) []string {
	var out []string
	for e != "" {
		if len(e) < 2 || e[0] != 's' {
			return append(out, e)
		}
		d := e[1]
		parts := []string{}
		start := 2
		i := 2
		for ; i < len(e) && len(parts) < 2; i++ {
			if e[i] == '\\' {
				i++
				continue
			}
			if e[i] == d {
				parts = append(parts, e[start:i])
				start = i + 1
			}
		}
		if len(parts) < 2 {
			return append(out, e)
		}
		out = append(out, parts[1])
		e = e[i:]
		if j := strings.IndexByte(e, ';'); j >= 0 {
			e = e[j+1:]
		} else {
			e = ""
		}
	}
	return out
}

// wordPath records the path a word names, if it names one, and returns it
// resolved. Words that are data rather than names (multi-line text) name
// none; curl's @file and name=@file name file; dd's of=file names file.
func (sa *shellAnalysis) wordPath(w, cwd string) string {
	if w == "" || strings.ContainsRune(w, '\n') || w == "-" || w == "--" || w == "{}" {
		return ""
	}
	if isURL(w) || isFileURL(w) {
		sa.urlWord(w)
		return ""
	}
	if i := strings.Index(w, "=@"); i >= 0 {
		w = w[i+2:]
	} else if strings.HasPrefix(w, "@") {
		w = w[1:]
	} else if i := strings.IndexByte(w, '='); i > 0 && !strings.ContainsAny(w[:i], "/ ") {
		v := w[i+1:]
		if isURL(v) || isFileURL(v) {
			sa.urlWord(v)
			return ""
		}
		if strings.ContainsAny(v, "/~") || strings.HasPrefix(v, ".") {
			w = v
		}
	}
	if w == "" {
		return ""
	}
	p := resolvePath(w, cwd, sa.ws)
	sa.n.addPath(p)
	return p
}

// fetchers fetch every URL among their operands, and have options that
// send the request elsewhere.
var fetchers = map[string]bool{"curl": true, "wget": true}

// anyHost stands in net.hosts for a destination toolgate cannot read (a
// proxy or a config file chosen by the command): it is no local host.
const anyHost = "(any host)"

// fetchValueOpts are curl's and wget's options that take a separate value
// that is not a URL or host (a header, a method, a time, data).
var fetchValueOpts = map[string]bool{
	"-H": true, "--header": true, "-A": true, "--user-agent": true, "-X": true, "--request": true, "-u": true,
	"--user": true, "-w": true, "--write-out": true, "-m": true, "--max-time": true, "--connect-timeout": true,
	"--retry": true, "--retry-delay": true, "--retry-max-time": true, "-r": true, "--range": true, "-b": true,
	"--cookie": true, "-c": true, "--cookie-jar": true, "-C": true, "--continue-at": true, "-Y": true, "-y": true,
	"--speed-limit": true, "--speed-time": true, "--limit-rate": true, "--max-filesize": true, "--max-redirs": true,
	"-U": true, "--proxy-user": true, "-E": true, "--cert": true, "--key": true, "--cacert": true, "--capath": true,
	"-D": true, "--dump-header": true, "--trace": true, "--trace-ascii": true, "--stderr": true, "-d": true,
	"--data": true, "--data-raw": true, "--data-binary": true, "--data-urlencode": true, "--data-ascii": true,
	"-F": true, "--form": true, "--form-string": true, "--json": true, "--oauth2-bearer": true,
	"-T": true, "--upload-file": true, "-t": true, "--tries": true, "--timeout": true, "--wait": true,
	"-Q": true, "--quota": true, "-l": true, "--level": true, "--post-data": true, "--body-data": true,
	"--method": true, "--post-file": true, "--body-file": true,
}

// fetchOpt records what an option of curl or wget (prog) does to where
// the request goes, given its value v (the next word when the option has
// none of its own), and reports whether the option takes a value. A proxy,
// --connect-to, --resolve: their hosts. A config or input file (curl -K,
// wget -i), wget -e commands: a destination toolgate cannot read, anyHost.
func (sa *shellAnalysis) fetchOpt(prog, name, v string) bool {
	n := sa.n
	switch {
	case name == "-x" || name == "--proxy" || name == "--preproxy" || name == "--proxy1.0" ||
		strings.HasPrefix(name, "--socks") || name == "--doh-url":
		sa.proxyHost(v)
		return true
	case name == "--connect-to" || name == "--resolve":
		found := false
		for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ':' || r == ',' || r == '+' }) {
			if hostLike.MatchString(part) && !isDigits(strings.ReplaceAll(part, ".", "")) || isIPv4(part) {
				n.addURL(part)
				found = true
			}
		}
		if !found {
			n.addURL(anyHost)
		}
		return true
	case prog == "curl" && (name == "-K" || name == "--config"),
		prog == "wget" && (name == "-i" || name == "--input-file" || name == "--config"):
		n.addURL(anyHost)
		return true
	case prog == "wget" && (name == "-e" || name == "--execute"):
		key, val, _ := strings.Cut(v, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		switch {
		case strings.Contains(key, "proxy"):
			sa.proxyHost(strings.TrimSpace(val))
		case key != "robots":
			n.addURL(anyHost)
		}
		return true
	}
	return fetchValueOpts[name] || prog == "curl" && (name == "-e" || name == "--referer") ||
		prog == "wget" && (name == "-B" || name == "--base" || name == "-P" || name == "-a" || name == "-o")
}

// proxyHost records the host of a proxy setting: anyHost when it is empty
// or names none.
func (sa *shellAnalysis) proxyHost(v string) {
	rest := v
	if i := strings.Index(v, "://"); i >= 0 {
		rest = v[i+3:]
	}
	if hostOf(rest) == "" || strings.Contains(v, "$") {
		sa.n.addURL(anyHost)
		return
	}
	sa.n.addURL(v)
}

func isIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if !isDigits(p) {
			return false
		}
	}
	return true
}

// envAssign records what setting the variable name to val before a
// command does to where it sends requests: a proxy variable (http_proxy,
// HTTPS_PROXY, ALL_PROXY, no_proxy...) or one that names a config file of
// curl or wget (CURL_HOME, WGETRC) moves the destination.
func (sa *shellAnalysis) envAssign(name, val string) {
	l := strings.ToLower(name)
	switch {
	case l == "no_proxy" || l == "curl_home" || l == "wgetrc":
		sa.n.addURL(anyHost)
	case strings.HasSuffix(l, "_proxy") && val != "":
		sa.proxyHost(val)
	}
}

// urlWord records the URL a command word names. A file: URL (scheme in
// any case, any host) names no host: it is a path the command reads, every
// path a reader may take it to name (fileURLReadings), as a tool's path
// argument is, so curl file:///home/u/.ssh/id_rsa reads a secret store.
func (sa *shellAnalysis) urlWord(w string) {
	paths, _, ok := fileURLReadings(w, sa.n.cwd, sa.ws)
	if !ok {
		sa.n.addURL(w)
		return
	}
	if len(paths) == 0 {
		// No path to read (file://host alone, an invalid URI): what the
		// program reads is not known.
		sa.n.addComputed(w)
	}
	for _, p := range paths {
		sa.n.readPath(p)
	}
}

var (
	codeKeyFile = regexp.MustCompile(`\.(?:pem|key|p12|pfx)$|^id_`)
	codeQuoted  = regexp.MustCompile(`'([^'\n]*)'|"([^"\n]*)"`)
	codeURL     = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]{1,10}://[^\s'"<>)\]]+`)
	codeEnvVar  = regexp.MustCompile(`(?:environ(?:\.get)?\s*[\[(]\s*|getenv\s*\(\s*|ENV\s*\[\s*|process\.env\s*\[\s*)['"]([A-Za-z_][A-Za-z0-9_]*)|process\.env\.([A-Za-z_][A-Za-z0-9_]*)|\$ENV\{['"]?([A-Za-z_][A-Za-z0-9_]*)`)
	codeEnvAll  = regexp.MustCompile(`\bos\.environ\b\s*(?:\)|$|;|\n|\.(?:items|keys|values|copy)\b)|process\.env\s*(?:\)|$|;|\n)|\bdict\(os\.environ|JSON\.stringify\(process\.env|\bprintenv\b|%ENV\b`)
)

// codeText records what inline code (python -c, node -e, a here-document
// fed to an interpreter) names: paths (counted as written, since code can
// do anything with them), URLs, environment variables.
func (sa *shellAnalysis) codeText(code, cwd string) {
	for _, u := range codeURL.FindAllString(code, -1) {
		sa.n.addURL(u)
	}
	stripped := codeURL.ReplaceAllString(code, " ")
	// A quoted string that looks like a path names one.
	for _, q := range codeQuoted.FindAllStringSubmatch(stripped, -1) {
		m := q[1] + q[2]
		if m == "" || strings.ContainsAny(m, " \t") || !(strings.ContainsRune(m, '/') || strings.HasPrefix(m, ".") ||
			strings.HasPrefix(m, "~") || strings.HasPrefix(m, "$HOME") || codeKeyFile.MatchString(m)) {
			continue
		}
		p := resolvePath(m, cwd, sa.ws)
		sa.n.addPath(p)
		sa.n.addWritten(p)
	}
	for _, m := range codeEnvVar.FindAllStringSubmatch(code, -1) {
		sa.n.addEnv(m[1] + m[2] + m[3])
	}
	if codeEnvAll.MatchString(code) {
		sa.n.addEnv("*")
	}
}

// escapeOpt records an option that makes prog run code or a program
// outside what the normalized call shows, or delete what it matches.
func (sa *shellAnalysis) escapeOpt(prog, name, val string, hasVal bool, rest []string) {
	n := sa.n
	switch prog {
	case "rg", "ripgrep":
		if name == "--pre" || name == "--hostname-bin" {
			n.addEscape("rg " + name)
		}
	case "git":
		// git runs itself in each submodule the index names, where a
		// repository the agent made is (git init --separate-git-dir, then
		// git add): its config runs code. toolgate's servers ignore
		// submodules in status and diff (diff.ignoreSubmodules); these
		// go into them anyway.
		switch {
		case longOpt(name, 4, "--recurse-submodules"), name == "--ignore-submodules" && hasVal && val != "all",
			name == "--dirty" || name == "--broken":
			n.addComputed("git " + name + ": runs git in the submodules, whose config no rule reads")
		}
	case "fd", "fdfind":
		// -x/-X CMD runs CMD on what fd finds (clap: clusters, no
		// abbreviations).
		if name == "--exec" || name == "--exec-batch" || clusterHas(name, 'x', fdValues) || clusterHas(name, 'X', fdValues) {
			n.addEscape("fd " + name)
		}
	case "ag", "ack":
		// --pager CMD runs CMD; both take abbreviations (--pag).
		if longOpt(name, 5, "--pager") {
			n.addEscape(prog + " --pager")
		}
	case "find":
		switch name {
		case "-delete":
			n.addEscape("find -delete")
		case "-exec", "-execdir", "-ok", "-okdir":
			n.addEscape("find " + name)
		}
	case "tar", "gtar", "bsdtar":
		switch {
		case name == "-I" || name == "-F" || !strings.HasPrefix(name, "--") && strings.ContainsAny(name, "IF") && !strings.ContainsAny(name, "=/"):
			n.addEscape("tar " + name)
		case longOpt(name, 5, "--to-command", "--use-compress-program", "--checkpoint-action", "--info-script",
			"--new-volume-script", "--rmt-command", "--rsh-command"):
			n.addEscape("tar " + name)
		}
	case "zip":
		if name == "-TT" || name == "--unzip-command" {
			n.addEscape("zip " + name)
		}
	case "rsync":
		if name == "-e" || name == "--rsh" || name == "--rsync-path" {
			n.addEscape("rsync " + name)
		}
	case "ssh", "scp", "sftp":
		v := val
		if !hasVal && len(rest) > 0 {
			v = rest[0]
		}
		if strings.HasPrefix(name, "-o") {
			v = strings.ToLower(strings.TrimPrefix(name, "-o") + v)
			if strings.Contains(v, "proxycommand") || strings.Contains(v, "localcommand") {
				n.addEscape(prog + " -o ProxyCommand")
			}
		}
		if name == "-S" && prog != "ssh" {
			n.addEscape(prog + " -S")
		}
	case "sort":
		if longOpt(name, 4, "--compress-program") {
			n.addEscape("sort --compress-program")
		}
	case "psql", "mysql", "sqlite3", "mariadb":
		v := val
		if !hasVal && len(rest) > 0 {
			v = rest[0]
		}
		if (name == "-c" || name == "-e" || name == "--command" || name == "--execute" || name == "-cmd") && (strings.Contains(v, `\!`) || strings.Contains(v, ".shell") || strings.Contains(v, ".system")) {
			n.addEscape(prog + " shell escape")
		}
	}
	if codes := interpreters[prog]; codes != nil && slices.Contains(codes, name) {
		code := val
		if !hasVal && len(rest) > 0 {
			code = rest[0]
		}
		// Inline code is shown to rules as what it names (codeText); code
		// that opens sockets, runs programs or evaluates strings does
		// what no rule can read.
		if codeRuns.MatchString(code) || strings.HasSuffix(prog, "awk") || prog == "gdb" || prog == "expect" || prog == "osascript" {
			n.addEscape(prog + " " + name)
		}
	}
}

// codeRuns matches inline code that reaches the network, runs programs or
// evaluates computed code.
var codeRuns = regexp.MustCompile(`(?i)\b(socket|urllib|urlopen|requests|httpx|aiohttp|http\.client|http\.request|https?\.get|fetch\s*\(|xmlhttprequest|smtplib|ftplib|telnetlib|paramiko|net\.connect|net\.socket|dgram|subprocess|os\.system|os\.popen|os\.exec|spawn|child_process|execsync|execfile|exec\s*\(|eval\s*\(|__import__|compile\s*\(|importlib|ctypes|pty|system\s*\(|popen|backtick|qx|io\.popen|Runtime\.getRuntime|open3|Kernel\.exec|shell_exec|passthru|proc_open|LWP|IO::Socket|Net::|curl|wget|base64|b64decode|atob|fromCharCode|\\x[0-9a-f]{2})`)

// scriptEscapes records what a sed or awk program does beyond reading its
// input: the files sed's r and w commands name, and as an escape a
// program that runs commands or touches files of its own choosing, or
// that no rule can read (-f FILE), or that sed's parse does not know.
func (sa *shellAnalysis) scriptEscapes(prog, s, cwd string) {
	switch {
	case prog == "" || s == "":
		if s == "" && (prog == "sed" || prog == "gsed" || strings.HasSuffix(prog, "awk")) {
			sa.n.addEscape(prog + " -f")
		}
	case strings.HasSuffix(prog, "awk"):
		runs, env := awkScript(s)
		for _, v := range env {
			sa.n.addEnv(v)
		}
		if runs {
			sa.n.addEscape("awk system")
		}
	case prog == "sed" || prog == "gsed":
		files, ok := sedScript(s)
		if !ok {
			sa.n.addEscape("sed e")
			return
		}
		for _, f := range files {
			if f.name == "/dev/stdout" || f.name == "/dev/stderr" {
				continue // GNU sed's own names for its output
			}
			p := resolvePath(f.name, cwd, sa.ws)
			if f.write {
				sa.n.addPath(p)
				sa.n.addDest(p)
				sa.n.addEscape("sed w")
			} else {
				sa.n.readPath(p)
				sa.n.addEscape("sed r")
			}
		}
	}
}

// jqFilters records the environment a jq or yq filter reads, and as an
// escape a filter that loads a file (yq's load) or comes from a file no
// rule reads. Every word that is no option is read as a filter: a file
// name that looks like one only makes the call stricter.
func (sa *shellAnalysis) jqFilters(prog string, words []string, cwd string) {
	for i, w := range words {
		if strings.HasPrefix(w, "-") {
			if w == "-f" || w == "--from-file" || strings.HasPrefix(w, "--from-file=") {
				sa.n.addEscape(prog + " -f")
			}
			continue
		}
		if i > 0 && (words[i-1] == "--arg" || i > 1 && words[i-2] == "--arg") {
			continue // --arg NAME VALUE: a string
		}
		env, loads := jqScript(w)
		for _, v := range env {
			sa.n.addEnv(v)
		}
		if loads {
			sa.n.addEscape(prog + " load")
		}
		// A quoted string that looks like a path may name a file the
		// filter loads (yq's load, jq's import and include).
		for _, q := range codeQuoted.FindAllStringSubmatch(w, -1) {
			if m := q[1] + q[2]; m != "" && !strings.ContainsAny(m, " \t") && (strings.ContainsRune(m, '/') ||
				strings.HasPrefix(m, ".") || strings.HasPrefix(m, "~") || codeKeyFile.MatchString(m)) {
				sa.n.readPath(resolvePath(m, cwd, sa.ws))
			}
		}
	}
}

// benignGitConfig are `git -c` keys that cannot run anything.
var benignGitConfig = []string{"color.", "user.name", "user.email", "advice.", "init.defaultbranch", "core.quotepath",
	"log.", "format.pretty", "diff.noprefix", "merge.conflictstyle", "pull.rebase", "push.autosetupremote",
	"core.autocrlf", "commit.gpgsign=false", "tag.gpgsign=false", "core.abbrev", "column.ui", "safe.directory"}

// gitGlobal strips git's global options from cmd, recording the ones that
// run code, and returns the rest and the directory -C names ("" for none).
func (sa *shellAnalysis) gitGlobal(cmd []string, cwd string) ([]string, string) {
	dir := ""
	repoGiven := false
	i := 1
	for i < len(cmd) && strings.HasPrefix(cmd[i], "-") {
		a := cmd[i]
		name, val, hasVal := strings.Cut(a, "=")
		takesVal := false
		switch name {
		case "-C":
			takesVal = true
			if i+1 < len(cmd) {
				// git's chdir follows a symlink before a .., which
				// resolvePath reads as text.
				repoGiven = repoGiven || hasDotDot(cmd[i+1])
				dir = resolvePath(cmd[i+1], cwd, sa.ws)
				sa.n.addPath(dir)
				cwd = dir
			}
		case "-c":
			takesVal = true
			if i+1 < len(cmd) {
				kv := strings.ToLower(cmd[i+1])
				benign := false
				for _, b := range benignGitConfig {
					if strings.HasPrefix(kv, b) {
						benign = true
						break
					}
				}
				if !benign {
					k, _, _ := strings.Cut(kv, "=")
					sa.n.addEscape("git -c " + k)
				}
			}
		case "--exec-path", "--config-env", "--upload-pack", "--receive-pack":
			if hasVal || name == "--config-env" {
				sa.n.addEscape("git " + name)
			}
			takesVal = !hasVal && name == "--config-env"
		case "--bare":
			repoGiven = true // the directory it runs in is the repository
		case "--git-dir", "--work-tree", "--namespace", "--super-prefix", "--list-cmds", "--attr-source":
			takesVal = !hasVal
			v := val
			if !hasVal && i+1 < len(cmd) {
				v = cmd[i+1]
			}
			sa.wordPath(v, cwd)
			// Another repository than the workspace's own (its root, its
			// .git) is one no rule read.
			if name == "--git-dir" || name == "--work-tree" {
				p := resolvePath(v, cwd, sa.ws)
				repoGiven = repoGiven || !sa.ws.ownRepo(p)
			}
		}
		i++
		if takesVal {
			i++
		}
	}
	if i > len(cmd) {
		i = len(cmd)
	}
	// git takes as its repository the first directory from where it runs
	// up that is one: a .git, or a directory holding HEAD, objects/ and
	// refs/ (a bare repository), whose config runs code (core.fsmonitor).
	// One the agent made below the root (git init --bare sub, cp -r .git
	// sub) is no path the rules see, so git run anywhere but the root, or
	// pointed at a repository, finds what no rule read.
	if repoGiven || sa.cwdUnsure || path.Clean(cwd) != sa.ws.root() {
		sa.n.addGitRunIn(cwd)
	}
	return append([]string{"git"}, cmd[i:]...), dir
}

// ownRepo reports whether p names the workspace's own repository: its
// root or its .git, whose config and hooks the sandbox holds.
func (w Workspace) ownRepo(p string) bool {
	return p == w.root() || p == path.Join(w.root(), ".git")
}

// addGitRunIn records that git runs in dir, and so uses a repository no
// rule read: the one it finds there.
func (n *normCall) addGitRunIn(dir string) {
	n.addComputed("git run in " + dir + ": the repository it finds there")
}

// attachedSecret records the value in the same word as a short option, or
// a cluster of them (date -f/home/u/.ssh/id_rsa, date -Rf.env, file
// -bm.env), as a read path when it names a secret (isSecret), and reports
// whether it did. Which letter takes a value is not known here, so each
// tail of the word spelled as a path is tried. Other such values are left
// alone: what the option does with them is not known (cut -d/, grep
// -e/api/), and an exclusion (ls -I.env, fd -E.env) names what is not read.
func (sa *shellAnalysis) attachedSecret(prog, a, cwd string) bool {
	if strings.ContainsAny(a, "*?[\n") {
		return false
	}
	if len(a) > 4096 {
		// Past what is worth trying tail by tail (a path is at most
		// 4095 bytes): what the option reads is not known.
		sa.n.addComputed(prog + " " + a[:2] + "...: a value past 4096 bytes")
		return true
	}
	for k := 2; k < len(a); k++ {
		v := a[k:]
		if !strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "~") && !strings.HasPrefix(v, ".") && !strings.Contains(v, "/") ||
			excludeOpts[prog] != 0 && a[k-1] == excludeOpts[prog] {
			continue
		}
		if p, secret := secretPath(v, cwd, sa.ws); secret {
			sa.n.readPath(p)
			return true
		}
	}
	return false
}

// excludeOpts are the letters of programs' options whose value names what
// they leave out (ls -I.env lists all but .env).
var excludeOpts = map[string]byte{"ls": 'I', "tree": 'I', "fd": 'E', "fdfind": 'E'}

// checkProgs are the checksum programs, whose -c FILE (--check) hashes
// every file FILE lists.
var checkProgs = map[string]bool{"md5sum": true, "sha1sum": true, "sha224sum": true, "sha256sum": true,
	"sha384sum": true, "sha512sum": true, "b2sum": true, "cksum": true, "shasum": true, "b3sum": true}

// clusterHas reports whether the short option cluster a has the flag
// letter among the flags before a letter of values, whose value is the
// rest (env -vi has i; env -uinfo unsets "info").
func clusterHas(a string, flag byte, values string) bool {
	if strings.HasPrefix(a, "--") || !strings.HasPrefix(a, "-") {
		return false
	}
	for k := 1; k < len(a); k++ {
		switch {
		case a[k] == flag:
			return true
		case strings.IndexByte(values, a[k]) >= 0:
			return false
		}
	}
	return false
}

// gawkOutput returns the file of gawk's -o, -p or -d in short cluster a
// (-oFILE, -bpFILE), "" when it has none or names none (-o alone writes
// awkprof.out).
func gawkOutput(a string) string {
	for _, l := range "opd" {
		if v := clusterValue(a, byte(l), "bcCgMnNOPrsStVY"); v != "" && v != "-" {
			return v
		}
	}
	return ""
}

// fdValues are fd's short options that take the rest of a cluster as
// their value (-etsx is the extension tsx, no -x).
const fdValues = "eEtdjSco"

// namesFromFile reports whether option a (name, before any =) of prog
// makes it read files named in a list file or its input rather than on
// the line: GNU sort, wc and du's --files0-from, a checksum program's -c,
// file's -f, git's --pathspec-from-file and --stdin (gitStdinOpts).
func namesFromFile(prog, name, a string) bool {
	short := !strings.HasPrefix(a, "--")
	switch {
	case prog == "sort" || prog == "wc" || prog == "du":
		return longOpt(name, 5, "--files0-from")
	case checkProgs[prog]:
		return longOpt(name, 4, "--check") || short && strings.ContainsRune(name[1:], 'c')
	case prog == "file":
		return longOpt(name, 4, "--files-from") || short && clusterValue(a, 'f', "bcEhiklLNnprsvz0") != ""
	case prog == "git":
		return longOpt(name, 12, "--pathspec-from-file") || gitStdinOpts[name]
	}
	return false
}

// gitStdinOpts make git read the objects, revisions or paths it shows from
// its input (git cat-file --batch < list prints HEAD:.env).
var gitStdinOpts = map[string]bool{"--stdin": true, "--stdin-paths": true, "--batch": true, "--batch-command": true}

// longOpt reports whether name is one of the long options full, or an
// abbreviation of one at least min bytes long: git and GNU getopt accept
// any unambiguous prefix, so --open stands for --open-files-in-pager.
func longOpt(name string, min int, full ...string) bool {
	if !strings.HasPrefix(name, "--") {
		return false
	}
	for _, f := range full {
		if name == f || len(name) >= min && strings.HasPrefix(f, name) {
			return true
		}
	}
	return false
}

// gitRevPath reads "REV:path" (git show HEAD~5:.env, :path for the index)
// as the path it names: relative to the repository's top, which is taken
// as the workspace root, or to cwd for ./ and ../ paths.
func (sa *shellAnalysis) gitRevPath(w, cwd string) (string, bool) {
	rev, p, ok := strings.Cut(w, ":")
	if !ok || p == "" || strings.Contains(rev, "@") && !strings.Contains(rev, "@{") || strings.HasPrefix(w, "-") || strings.Contains(w, "://") {
		return "", false
	}
	if strings.HasPrefix(p, "/") { // "host:/path" style remote, not a revision
		return "", false
	}
	base := sa.ws.root()
	if strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") {
		base = cwd
	}
	return resolvePath(p, base, sa.ws), true
}

// gitInner follows the commands git runs itself and records its options
// that run code.
func (sa *shellAnalysis) gitInner(cmd []string, cwd string, depth int) error {
	if len(cmd) < 2 {
		return nil
	}
	sub, rest := cmd[1], cmd[2:]
	for i, a := range rest {
		name, val, hasVal := strings.Cut(a, "=")
		next := ""
		if i+1 < len(rest) {
			next = rest[i+1]
		}
		if !hasVal {
			val = next
		}
		switch {
		case sub == "grep" && (longOpt(name, 4, "--open-files-in-pager") || strings.HasPrefix(a, "-O") ||
			strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.Contains(a, "O")):
			sa.n.addEscape("git grep --open-files-in-pager")
		case longOpt(name, 5, "--ext-diff") || (sub == "difftool" || sub == "mergetool") && (name == "-x" || longOpt(name, 4, "--extcmd")):
			sa.n.addEscape("git " + sub + " " + name)
		case longOpt(name, 4, "--upload-pack", "--receive-pack") || longOpt(name, 4, "--exec") && sub != "rebase" || sub == "clone" && name == "-u":
			sa.n.addEscape("git " + sub + " " + name)
		case sub == "rebase" && (name == "-x" || longOpt(name, 4, "--exec")):
			if err := sa.line(val, cwd, depth+1); err != nil {
				return err
			}
		case sub == "filter-branch" && strings.HasSuffix(name, "-filter"):
			sa.n.addEscape("git filter-branch " + name)
			if err := sa.line(val, cwd, depth+1); err != nil {
				return err
			}
		case sub == "submodule" && a == "foreach":
			j := i + 1
			for j < len(rest) && strings.HasPrefix(rest[j], "-") {
				j++
			}
			return sa.line(strings.Join(rest[j:], " "), cwd, depth+1)
		case sub == "bisect" && a == "run" && i+1 < len(rest):
			_, err := sa.run(rest[i+1:], cwd, depth+1)
			return err
		}
	}
	return nil
}

// gitWrites records the files a git command writes that are not the
// working tree's own: `git config` settings.
func (sa *shellAnalysis) gitWrites(cmd []string, cwd string) {
	if len(cmd) > 3 && cmd[1] == "mv" {
		// git mv SRC... DST writes DST (in cwd, which git -C moves).
		var pos []string
		for _, a := range cmd[2:] {
			if !strings.HasPrefix(a, "-") {
				pos = append(pos, a)
			}
		}
		if len(pos) > 1 {
			sa.n.addDest(resolvePath(pos[len(pos)-1], cwd, sa.ws))
		}
		return
	}
	if len(cmd) < 3 || cmd[1] != "config" {
		return
	}
	target := cwd + "/.git/config"
	reading := false
	for i, a := range cmd[2:] {
		switch {
		case a == "--global":
			target = sa.ws.home() + "/.gitconfig"
		case a == "--system":
			target = "/etc/gitconfig"
		case a == "--file" || a == "-f":
			if i+3 < len(cmd) {
				target = resolvePath(cmd[i+3], cwd, sa.ws)
			}
		case strings.HasPrefix(a, "--file="):
			target = resolvePath(strings.TrimPrefix(a, "--file="), cwd, sa.ws)
		case a == "--get" || strings.HasPrefix(a, "--get-") || a == "--list" || a == "-l" || a == "get" || a == "list" ||
			strings.HasPrefix(a, "--show-"):
			reading = true
		}
	}
	// `git config NAME` with no value reads too.
	var pos []string
	for _, a := range cmd[2:] {
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
		}
	}
	if len(pos) == 1 && pos[0] != "set" {
		reading = true
	}
	if len(pos) > 0 {
		key := strings.ToLower(pos[0])
		if key == "set" && len(pos) > 1 {
			key = strings.ToLower(pos[1])
		}
		for _, b := range benignGitConfig {
			if strings.HasPrefix(key, strings.TrimSuffix(b, "=false")) && !strings.HasSuffix(b, "=false") {
				reading = true // a setting that runs nothing
			}
		}
	}
	if !reading {
		sa.n.addWritten(target)
	}
}
