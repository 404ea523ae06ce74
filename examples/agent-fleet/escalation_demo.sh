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
[ "$status" -eq 1 ] || exit 1

# the live input: [escalation] reach = true puts each identity's reach in context.vigil.reach
# (docs/escalation.md, "At decision time"); one forbid reads it
cp -r examples/agent-fleet "$DIR/reach"
sed -i 's/^\[escalation\]$/[escalation]\nreach = true/' "$DIR/reach/vigil.toml"
cat > "$DIR/reach/policies/60-reach.cedar" <<'CEDAR'
@id("forbid-prod-writes-by-admin-reach")
@description("Identities that can reach admin do not write to prod.")
forbid (principal, action == Action::"write", resource)
when {
  context has vigil && context.vigil has reach &&
  context.vigil.reach.verdict == "reaches_admin" && resource.env == "prod"
};
CEDAR
echo
echo "== [escalation] reach = true, and a forbid on context.vigil.reach.verdict == \"reaches_admin\":"
echo "   ci-deployer (reaches admin) writes to prod: denied; payments-api (reaches nothing): allowed"
"$VENV/bin/vigil" decide -w "$DIR/reach" --now 2026-11-27T08:30:26Z \
  '{"subject":{"type":"ServiceAccount","id":"ci-deployer"},"action":{"name":"write"},"resource":{"type":"Database","id":"ci-metadata-prod"},"context":{"ip":"10.10.144.56","region":"eu-west-1","hour":8}}' || true
"$VENV/bin/vigil" decide -w "$DIR/reach" --now 2026-11-27T00:16:21Z \
  '{"subject":{"type":"ServiceAccount","id":"payments-api"},"action":{"name":"write"},"resource":{"type":"Database","id":"invoices-prod"},"context":{"ip":"10.20.131.243","region":"eu-west-1","hour":0}}' || true
