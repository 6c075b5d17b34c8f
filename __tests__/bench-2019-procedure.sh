#!/usr/bin/env bash
# The 2019 "Use Virtual Kubelet with AKS" procedure (az aks install-connector, then the
# samples), scripted as a competent user would write it today with current tools: sign in
# with a service principal (secret from a file, never an argument), fetch the kubeconfig,
# `helm upgrade --install` the current chart per OS in turn, wait for each virtual node,
# apply the samples and wait for their rollout. `remove` undoes it: samples, releases,
# nodes. `npm run bench` runs it against the local AKS beside the action.
#
# Usage: bench-2019-procedure.sh install|remove   (settings in the environment, below)
set -euo pipefail
: "${AZ:?}" "${HELM:?}" "${KUBECTL:?}" "${WORK:?}" "${RG:?}" "${CLUSTER:?}" "${CLIENT_ID:?}" "${TENANT_ID:?}" "${SECRET_FILE:?}"
: "${CHART:?}" "${SAMPLES:?}" "${LINUX_RELEASE:?}" "${WINDOWS_RELEASE:?}" "${LINUX_NODE:?}" "${WINDOWS_NODE:?}" "${LINUX_VALUES:?}" "${WINDOWS_VALUES:?}"
export KUBECONFIG="$WORK/kubeconfig"
WAIT=120s

sign_in() {
  "$AZ" login --service-principal --username "$CLIENT_ID" --tenant "$TENANT_ID" --password "@$SECRET_FILE" --output none --only-show-errors
  "$AZ" aks get-credentials --resource-group "$RG" --name "$CLUSTER" --file "$KUBECONFIG" --overwrite-existing --only-show-errors
}

install() {
  sign_in
  for os in linux windows; do
    release_var="${os^^}_RELEASE"; node_var="${os^^}_NODE"; values_var="${os^^}_VALUES"
    "$HELM" upgrade --install "${!release_var}" "$CHART" --namespace default --values "${!values_var}"
    "$KUBECTL" wait --for=create "node/${!node_var}" --timeout="$WAIT"
    "$KUBECTL" wait --for=condition=Ready "node/${!node_var}" --timeout="$WAIT"
  done
  "$KUBECTL" apply --server-side -f "$SAMPLES"
  "$KUBECTL" rollout status deployment/aci-helloworld --timeout="$WAIT"
  "$KUBECTL" rollout status deployment/nanoserver-iis --timeout="$WAIT"
}

remove() {
  sign_in
  "$KUBECTL" delete -f "$SAMPLES" --ignore-not-found --wait
  for os in linux windows; do
    release_var="${os^^}_RELEASE"; node_var="${os^^}_NODE"
    "$HELM" uninstall "${!release_var}" --namespace default --ignore-not-found --wait
    "$KUBECTL" delete node "${!node_var}" --ignore-not-found
  done
}

case "${1:-}" in
  install) install ;;
  remove) remove ;;
  *) echo "usage: $0 install|remove" >&2; exit 2 ;;
esac
