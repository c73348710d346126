#!/usr/bin/env bash
# Tests tools/check-generated.sh against a copy of the tree, not a git checkout: it must
# pass on current generated code whatever git thinks of it, and fail on each kind of
# drift; and tools/generate-sqlc.sh, make generate's sqlc step, which must leave nothing
# stale. Run by `make test-scripts` and by .ci/run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
check="$repo/tools/check-generated.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0

# fresh copies what generation reads and writes into $work/tree, without .git.
fresh() {
	rm -rf "$work/tree"
	mkdir -p "$work/tree"
	(
		cd "$repo"
		tar -c go.mod go.sum buf.yaml buf.gen.yaml tools/go.mod tools/go.sum cmd/protoc-gen-openapi proto gen .protodeps \
			services/*/sqlc.yaml services/*/migrations services/*/queries services/*/dbsqlc \
			sdk/ts/src/gen
	) | tar -x -C "$work/tree"
}

# expect runs the check on the copy and compares its outcome with want (pass or fail).
expect() {
	local want=$1 name=$2 got=pass
	if ! "$check" "$work/tree" >"$work/out" 2>&1; then
		got=fail
	fi
	if [[ $got == "$want" ]]; then
		echo "ok   $name"
		passed=$((passed + 1))
	else
		echo "FAIL $name: wanted $want, got $got"
		sed 's/^/     /' "$work/out"
		failed=$((failed + 1))
	fi
}

fresh
expect pass "current generated code, outside any git repository"

fresh
printf '\n// edited by hand\n' >>"$work/tree/gen/backplane/access/v1/access.pb.go"
expect fail "a generated Go file edited by hand"

fresh
printf '\n// DriftProbe is a message gen/ has never seen.\nmessage DriftProbe {}\n' >>"$work/tree/proto/backplane/access/v1/access.proto"
expect fail "a proto changed without regenerating"

fresh
cp "$work/tree/gen/backplane/access/v1/access.pb.go" "$work/tree/gen/backplane/access/v1/removed.pb.go"
expect fail "a generated file left behind by a removed proto"

fresh
printf '\n// edited by hand\n' >>"$work/tree/sdk/ts/src/gen/openapi.ts"
expect fail "the TypeScript SDK's generated types edited by hand"

fresh
svc=$(cd "$work/tree" && dirname "$(ls services/*/sqlc.yaml | head -n 1)")
query=$(ls "$work/tree/$svc/queries/"*.sql | head -n 1)
printf '\n-- name: DriftProbe :one\nSELECT 1::int AS probe;\n' >>"$query"
expect fail "a query added without regenerating ($svc)"

# sqlc never deletes what it wrote: run in place, as `make generate` once ran it, after a
# query file is renamed, it leaves the old file's *.sql.go behind beside the new one.
fresh
mv "$work/tree/$svc/queries/$(basename "$query")" "$work/tree/$svc/queries/renamed_$(basename "$query")"
(cd "$work/tree" && go tool -modfile=tools/go.mod sqlc generate -f "$svc/sqlc.yaml")
expect fail "a query file renamed, its old generated file left behind by sqlc ($svc)"

fresh
rm "$work/tree/$svc/queries/$(basename "$query")"
(cd "$work/tree" && go tool -modfile=tools/go.mod sqlc generate -f "$svc/sqlc.yaml")
expect fail "a query file deleted, its generated file left behind by sqlc ($svc)"

fresh
rm "$work/tree/$svc/sqlc.yaml"
expect fail "a dbsqlc/ left behind with no sqlc.yaml to generate it ($svc)"

# make generate's sqlc step (tools/generate-sqlc.sh) generates each dbsqlc/ afresh, so
# after a rename the tree matches its sources again.
fresh
mv "$work/tree/$svc/queries/$(basename "$query")" "$work/tree/$svc/queries/renamed_$(basename "$query")"
"$repo/tools/generate-sqlc.sh" "$work/tree" >/dev/null
expect pass "a query file renamed and make generate run ($svc)"

echo "$passed passed, $failed failed"
((failed == 0))
