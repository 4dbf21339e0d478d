#!/usr/bin/env bash
# Installs the Debian packages strata's tests and quick start use (root needed).
# One list, used by .ci/run and scripts/quickstart.sh alike.
set -euo pipefail
PACKAGES=(
  tar gzip zstd pigz xz-utils bzip2   # archives and compressors (GNU tar is the reference)
  time                                # /usr/bin/time -v: peak RSS of a load (test/load-memory.test.ts)
  attr libcap2-bin                    # getfattr/setfattr, getcap/setcap used by fixtures
  busybox-static debootstrap          # real root filesystems to build layers from
  btrfs-progs xfsprogs                # filesystems for driver tests on loop devices
  fuse-overlayfs                      # the aufs driver mounts aufs branches through it where the kernel has no aufs
  containers-storage                  # peer for the graph driver benchmark (bench/graphdriver.ts)
  python3 make g++                    # node-gyp builds zstd-napi from source
  openssl                             # the registry token-auth test signs its tokens with an openssl-made key
  docker.io                           # dockerd 20.10 + /usr/bin/docker: the reference data root
  podman skopeo umoci runc            # interop peers: podman save/load, skopeo copy, umoci unpack, OCI runtime
  docker-registry                     # the CNCF distribution registry (v2 API) for pull/push tests
  qemu-system-x86 linux-image-amd64 cpio   # scripts/vm/run.sh: a kernel with device-mapper, under qemu
  dmsetup thin-provisioning-tools     # devicemapper driver tests cross-check the pool (dmsetup, thin_check)
  chromium                            # headless browser for the layer explorer's page test (driven by playwright-core)
  golang-go                           # Go's own text/template and fmt: the peer of src/format's template engine
  python3-docker                      # docker-py: a real Engine API client for the strata serve tests
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

# podman refuses to run containers here without these: root lacks CAP_SYS_RESOURCE
# (no raising RLIMIT_NOFILE/NPROC above 1024) and crun rejects hybrid cgroups.
if [ ! -e /etc/containers/containers.conf ] || ! grep -q 'strata-test' /etc/containers/containers.conf; then
  mkdir -p /etc/containers
  cat > /etc/containers/containers.conf <<'CONF'
# strata-test: written by strata's scripts/install-deps.sh
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
fi
