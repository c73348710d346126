#!/usr/bin/env bash
# buf breaking: fails when proto/ in the working tree breaks wire or JSON compatibility
# (buf.yaml: WIRE_JSON) with an earlier revision of itself. Offline: the earlier proto/
# comes from the local git history. Run by `make breaking` and by .ci/run.
#
# What it compares against, unless BREAKING_AGAINST names a revision:
#   - on a branch: its merge-base with main, so only the branch's own changes are judged,
#     not whatever landed on main since it forked;
#   - on main itself, as in CI's fresh clone of main: HEAD^, main before its last commit.
#     CI thus judges the newest commit. A submission of several commits is judged whole
#     by running this on its branch before it lands (the merge-base rule above), or with
#     BREAKING_AGAINST=<the commit main was at before it>.
#
# Why not `buf breaking --against '.git#ref=…'`: our imports (google/api, buf/validate,
# the OpenAPI options) live in .protodeps/, written by `make protodeps` and ignored by git, so a
# revision read straight from git cannot compile. The earlier proto/ is exported with
# git archive and compiled with today's buf.yaml and .protodeps/: only the contracts
# differ between the two sides.
set -euo pipefail
cd "$(dirname "$0")/.."

buf() { go tool -modfile=tools/go.mod buf "$@"; }

against=${BREAKING_AGAINST:-}
if [[ -z $against ]]; then
	main=main
	if ! git rev-parse -q --verify "$main^{commit}" >/dev/null; then
		main=origin/main
	fi
	base=$(git merge-base HEAD "$main")
	if [[ $base == "$(git rev-parse HEAD)" ]]; then
		if ! git rev-parse -q --verify 'HEAD^^{commit}' >/dev/null; then
			# A first commit, or a clone too shallow to hold its parent.
			if [[ $(git rev-parse --is-shallow-repository) == true ]]; then
				echo "breaking: HEAD's parent is not in this shallow clone; fetch more history (git fetch --deepen=1)" >&2
				exit 1
			fi
			echo "breaking: HEAD is the first commit; nothing to compare against"
			exit 0
		fi
		against=HEAD^
	else
		against=$base
	fi
fi
rev=$(git rev-parse --verify "$against^{commit}")

if [[ -z $(git ls-tree -d "$rev" proto) ]]; then
	echo "breaking: $against ($rev) has no proto/; nothing to compare against"
	exit 0
fi
if [[ ! -d .protodeps ]]; then
	echo "breaking: .protodeps/ is missing; run 'make protodeps'" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git archive "$rev" proto | tar -x -C "$tmp"
cp buf.yaml "$tmp/"
cp -R .protodeps "$tmp/"

echo "buf breaking: proto/ against $against ($(git rev-parse --short "$rev"))"
buf breaking proto --against "$tmp/proto"
