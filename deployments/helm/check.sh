#!/usr/bin/env bash
# Lint and render the Vigil chart for the default values and every
# ci/*-values.yaml, check that bad values are refused, and run the
# manifest-decoding Go test (nested module deployments/helm/test).
#
# Usage: deployments/helm/check.sh            (from anywhere)
# Env:   HELM=/path/to/helm                   use this helm instead of PATH/cache
#        HELM_VERSION=v3.22.0                 version installed when none is found
#        VIGIL_TOOLS_CACHE=~/.cache/vigil-tools   where helm gets installed
#        KUBE_VERSION=1.30.0                  --kube-version for lint/template
#        CHECK_SHORT=1                        skip building vigil for the config check
#
# helm is built from the Go module proxy (`go install helm.sh/helm/v3/cmd/helm`)
# when it is not on PATH: a few minutes the first time, cached afterwards.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
chart="$here/vigil"
kube_version=${KUBE_VERSION:-1.30.0}
helm_version=${HELM_VERSION:-v3.22.0}
cache=${VIGIL_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vigil-tools}

if [[ -z "${HELM:-}" ]]; then
  if [[ -x "$cache/helm-$helm_version/helm" ]]; then
    HELM="$cache/helm-$helm_version/helm"
  elif command -v helm >/dev/null 2>&1 && helm version --short 2>/dev/null | grep -q '^v3\.'; then
    HELM=$(command -v helm)
  else
    echo "==> installing helm $helm_version into $cache/helm-$helm_version (go install, takes a few minutes)"
    mkdir -p "$cache/helm-$helm_version"
    GOBIN="$cache/helm-$helm_version" go install "helm.sh/helm/v3/cmd/helm@$helm_version"
    HELM="$cache/helm-$helm_version/helm"
  fi
fi
export HELM
echo "==> using $("$HELM" version --short) ($HELM), kube-version $kube_version"

values=("")
for f in "$chart"/ci/*-values.yaml; do values+=("$f"); done

for f in "${values[@]}"; do
  name=${f:+$(basename "$f")}
  name=${name:-defaults}
  args=()
  [[ -n "$f" ]] && args=(--values "$f")
  echo "==> helm lint --strict ($name)"
  "$HELM" lint --strict --kube-version "$kube_version" "$chart" "${args[@]}"
  echo "==> helm template ($name)"
  out=$("$HELM" template vigil "$chart" --namespace vigil --kube-version "$kube_version" "${args[@]}")
  echo "    $(grep -c '^kind:' <<<"$out") objects: $(grep '^kind:' <<<"$out" | awk '{print $2}' | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}' | sed 's/, $//')"
done

echo "==> a bad values file must be refused by the schema"
bad=$(mktemp)
trap 'rm -f "$bad"' EXIT
printf 'processor:\n  replicaCount: -1\nconfig:\n  kafka:\n    sasl:\n      mechanism: md5\n' >"$bad"
if msg=$("$HELM" template vigil "$chart" --kube-version "$kube_version" --values "$bad" 2>&1); then
  echo "FAIL: helm template accepted replicaCount -1 and sasl mechanism md5" >&2
  exit 1
fi
echo "$msg" | sed 's/^/    /'

echo "==> go test (nested module deployments/helm/test)"
short=()
[[ -n "${CHECK_SHORT:-}" ]] && short=(-short)
(cd "$here/test" && go test -count=1 "${short[@]}" ./...)
echo "==> chart checks passed"
