#!/usr/bin/env bash
# `make demo`, escalation part: who in the fleet can reach admin ([escalation] in vigil.toml), and
# what a one-line policy change gives away (`vigil policy diff` exits 1: access widened).
set -euo pipefail
VENV=${VENV:-.venv}
DIR=.vigil/demo/escalation
rm -rf "$DIR" && mkdir -p "$DIR"
cp -r examples/agent-fleet "$DIR/before" && cp -r examples/agent-fleet "$DIR/after"
echo
echo "== vigil paths --workspace examples/agent-fleet: identities that can reach admin"
"$VENV/bin/vigil" paths --workspace "$DIR/before" --graph "$DIR/paths"
echo "(the picture: $DIR/paths.svg, and $DIR/paths.dot for Graphviz)"
"$VENV/bin/vigil" paths --workspace "$DIR/before" --from ci-deployer --limit 1
# the one-line change: assume a service account one clearance level above your own
sed -i 's/resource.max_sensitivity <= principal.max_sensitivity$/resource.max_sensitivity <= principal.max_sensitivity + 1/' \
  "$DIR/after/policies/50-admin.cedar"
echo
echo "== the change:"
diff -u "$DIR/before/policies/50-admin.cedar" "$DIR/after/policies/50-admin.cedar" | tail -n +3 || true
echo
echo "== vigil policy diff before after (exit 1: access widened)"
status=0
"$VENV/bin/vigil" policy diff "$DIR/before" "$DIR/after" || status=$?
echo "exit status: $status"
[ "$status" -eq 1 ]
