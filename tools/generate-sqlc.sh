#!/usr/bin/env bash
# Generates each service's dbsqlc/ from its migrations and queries (sqlc): the one place
# that knows how, used by `make generate` and by the drift check.
#
# sqlc writes one file per query file and never deletes one, so a query file renamed or
# deleted would leave its old *.sql.go behind (declaring the same methods twice). Each
# dbsqlc/ is therefore generated afresh, from a copy of the service's sqlc.yaml,
# migrations and queries in a temporary directory, and then replaces the old one whole:
# nothing generated from a source that is gone survives, and a failed generate leaves
# the old dbsqlc/ as it was.
#
# Usage: tools/generate-sqlc.sh [root [out]]   root holds the sources (default: the
# repository); each dbsqlc/ is written to the same path under out (default: root).
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
out=$(cd "${2:-$root}" && pwd)
cd "$root"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for cfg in services/*/sqlc.yaml; do
	[[ -e $cfg ]] || continue
	svc=$(dirname "$cfg")
	echo "sqlc generate -f $cfg"
	mkdir -p "$work/$svc"
	# sqlc resolves every path in sqlc.yaml relative to the file, so the copy generates
	# what the original would.
	cp "$cfg" "$work/$svc/"
	for src in migrations queries; do
		if [[ -d $svc/$src ]]; then
			cp -R "$svc/$src" "$work/$svc/"
		fi
	done
	go tool -modfile=tools/go.mod sqlc generate -f "$work/$svc/sqlc.yaml"
	mkdir -p "$out/$svc"
	rm -rf "$out/$svc/dbsqlc"
	mv "$work/$svc/dbsqlc" "$out/$svc/dbsqlc"
done
