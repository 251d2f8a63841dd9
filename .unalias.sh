#!/bin/sh
# Rewrites every use of a name declared under the comment "Aliases kept
# until the merge; the lead removes them." (in any package or test of this
# module) to the name it stands for, fixes the imports, and deletes those
# declarations; then checks that the module builds and vets.
#
#   sh .unalias.sh                    # after the last merge: rewrite and delete the aliases
#   sh .unalias.sh -keep              # rewrite the uses only (safe before other merges)
#   sh .unalias.sh -keep -only gate,rules   # only the files in these directories
#   sh .unalias.sh -n                 # list what would change
#
# Running it twice changes nothing the second time. On a merge conflict in
# a file it rewrote, take the other side and run it with -keep again.
# The tool is /work/wt/tools/unalias (go/packages, type-checked: a field or
# local that shares an alias's name is left alone). Delete this script
# with the aliases.
set -eu
root=$(cd "$(dirname "$0")" && pwd)
tool=${UNALIAS_TOOL:-/work/wt/tools/unalias}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
(cd "$tool" && go build -o "$bin/unalias" .)
"$bin/unalias" -dir "$root" "$@"
cd "$root"
bad=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
[ -z "$bad" ] || { echo "not gofmt-clean: $bad" >&2; exit 1; }
go build ./... && go vet ./...
