#!/usr/bin/env bash
# Install missing Debian packages, idempotently: `ensure-system-packages.sh PKG... -- BINARY...`.
# Checks the binaries first, so a machine that has everything never calls apt-get.
set -euo pipefail
packages=(); binaries=(); seen_sep=0
for arg in "$@"; do
  if [[ $arg == "--" ]]; then seen_sep=1; continue; fi
  if (( seen_sep )); then binaries+=("$arg"); else packages+=("$arg"); fi
done
missing=()
for binary in "${binaries[@]}"; do
  command -v "$binary" >/dev/null 2>&1 || [[ -x /usr/games/$binary ]] || missing+=("$binary")
done
if (( ${#missing[@]} == 0 )); then exit 0; fi
if [[ $(id -u) -ne 0 ]]; then
  echo "error: missing programs: ${missing[*]}" >&2
  echo "  hint: run as root, or: sudo apt-get install -y ${packages[*]}" >&2
  exit 2
fi
echo "installing Debian packages (missing: ${missing[*]})…"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
# Debian starts the packaged services on install; driftloop runs its own instances on chosen ports.
for svc in prometheus prometheus-alertmanager prometheus-node-exporter; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
  if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
echo "Debian packages installed."
