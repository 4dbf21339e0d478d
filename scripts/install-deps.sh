#!/usr/bin/env bash
# Installs the Debian packages strata's tests and quick start use (root needed).
# One list, used by .ci/run and scripts/quickstart.sh alike.
set -euo pipefail
PACKAGES=(
  tar gzip zstd pigz xz-utils bzip2   # archives and compressors (GNU tar is the reference)
  attr libcap2-bin                    # getfattr/setfattr, getcap/setcap used by fixtures
  busybox-static debootstrap          # real root filesystems to build layers from
  btrfs-progs xfsprogs                # filesystems for driver tests on loop devices
  containers-storage                  # peer for the graph driver benchmark (bench/graphdriver.ts)
  python3 make g++                    # node-gyp builds zstd-napi from source
  docker.io                           # dockerd 20.10 + /usr/bin/docker: the reference data root
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
