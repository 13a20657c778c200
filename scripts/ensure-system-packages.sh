#!/usr/bin/env bash
# Install missing Debian packages, idempotently: `ensure-system-packages.sh PKG... -- BINARY...`.
# Checks the binaries first, so a machine that has everything never calls apt-get. Otherwise it installs only the
# packages dpkg does not have (a machine that cloned this repository has git already), runs `apt-get update` only
# when the package lists are missing, older than DRIFTLOOP_APT_LISTS_MAX_AGE minutes (default 1440) or lack a
# package (and once more if the install then fails to fetch), and installs without recommends, without an fsync
# per file (dpkg --force-unsafe-io, as Debian's container images do) and without rebuilding the man-page index
# (man-db's own daily job catches up). Measured in docs/benchmarks.md ("System packages").
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

wanted=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || wanted+=("$package")
done
# every package is installed yet a program is missing (removed by hand?): reinstall them all
if (( ${#wanted[@]} == 0 )); then wanted=("${packages[@]}"); reinstall=(--reinstall); else reinstall=(); fi

if [[ $(id -u) -ne 0 ]]; then
  echo "error: missing programs: ${missing[*]}" >&2
  echo "  hint: run as root, or: sudo apt-get install -y --no-install-recommends ${wanted[*]}" >&2
  exit 2
fi
echo "installing Debian packages ${wanted[*]} (missing: ${missing[*]})…"
export DEBIAN_FRONTEND=noninteractive

lists_are_fresh() {
  # apt dates each list file by the server's copy; the folders are dated by the local update that renamed into them
  local lists=/var/lib/apt/lists max_age=${DRIFTLOOP_APT_LISTS_MAX_AGE:-1440}
  [[ -n $(find "$lists" -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null) ]] || return 1
  [[ -n $(find "$lists" "$lists/partial" -maxdepth 0 -mmin "-$max_age" -print -quit 2>/dev/null) ]] || return 1
  local package
  for package in "${wanted[@]}"; do
    [[ $(apt-cache policy "$package" 2>/dev/null) == *"Candidate: "[^\(]* ]] || return 1
  done
}

# man-db rebuilds its whole index after every install that ships a man page; it does so only while this flag
# file exists (Debian's man-db/auto-update). Set it aside for our install and put it back whatever happens.
flag=/var/lib/man-db/auto-update
if [[ -e $flag ]]; then
  mv "$flag" "$flag.driftloop"
  trap 'mv -f "$flag.driftloop" "$flag"' EXIT
fi

# Another apt or dpkg (a second `make` started at the same time, unattended-upgrades) holds the dpkg lock: wait
# for it, up to DRIFTLOOP_APT_LOCK_TIMEOUT seconds, rather than fail at once with "Could not get lock".
lock_wait=(-o "DPkg::Lock::Timeout=${DRIFTLOOP_APT_LOCK_TIMEOUT:-600}")
install() {
  apt-get install -y -qq --no-install-recommends "${reinstall[@]}" "${lock_wait[@]}" \
    -o Dpkg::Options::=--force-unsafe-io -o Dpkg::Use-Pty=0 "${wanted[@]}" >/dev/null
}
if lists_are_fresh; then
  echo "  (package lists are fresh: no apt-get update)"
  install || { echo "  install failed: updating the package lists and retrying"; apt-get update -qq "${lock_wait[@]}" >/dev/null; install; }
else
  apt-get update -qq "${lock_wait[@]}" >/dev/null
  install
fi
# Debian starts the packaged services on install; driftloop runs its own instances on chosen ports.
for svc in prometheus prometheus-alertmanager prometheus-node-exporter; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
  if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
echo "Debian packages installed."
