#!/usr/bin/env bash
# Fails when generated code in the working tree does not match what its sources
# generate: gen/ from proto/ (buf; the OpenAPI document is gen/openapi/), and each
# service's dbsqlc/ from its migrations and queries (sqlc). Run by `make check-generated`, which `make test`
# and CI run.
#
# It generates into a temporary directory and compares that with the tree, file by
# file, in both directions (a stale file left behind fails too). The tree is never
# written and git is never asked: regenerated code that is not committed yet passes as
# long as it matches its sources, and a source edited without regenerating fails.
#
# Usage: tools/check-generated.sh [root]   (root defaults to the repository; the script
# test points it at a copy). root needs .protodeps/ (make protodeps).
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
cd "$root"

tool() { go tool -modfile=tools/go.mod "$@"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# buf.gen.yaml writes to gen/; --output puts it under $tmp.
tool buf generate --output "$tmp"
compare=(gen)

# sqlc resolves every path in sqlc.yaml relative to the file, so a copy of a service's
# config, migrations and queries generates the same dbsqlc/ inside $tmp.
for cfg in services/*/sqlc.yaml; do
	[[ -e $cfg ]] || continue
	svc=$(dirname "$cfg")
	mkdir -p "$tmp/$svc"
	cp "$cfg" "$tmp/$svc/"
	for src in migrations queries; do
		if [[ -d $svc/$src ]]; then
			cp -R "$svc/$src" "$tmp/$svc/"
		fi
	done
	tool sqlc generate -f "$tmp/$svc/sqlc.yaml"
	compare+=("$svc/dbsqlc")
done

stale=0
for dir in "${compare[@]}"; do
	if ! diff -r -u "$dir" "$tmp/$dir" >"$tmp/drift.diff" 2>&1; then
		stale=1
		echo "generated code is stale in $dir/ (the tree, then what its sources generate):"
		head -n 60 "$tmp/drift.diff"
	fi
done
if ((stale)); then
	echo "run 'make generate' to bring generated code up to date with its sources" >&2
	exit 1
fi
echo "generated code matches its sources: ${compare[*]}"
