#!/usr/bin/env bash
# Runs one command in a throwaway VM booted from Debian's own kernel, for
# what this machine's kernel cannot do (device-mapper: the devicemapper
# graph driver's tests and benchmarks).
#
#   scripts/vm/run.sh [options] [--] COMMAND [ARG...]
#
# The guest is this machine: its root filesystem shared read-only over 9p
# (node, dmsetup, dockerd and the project's built dist/ all work as they
# are), with a writable /tmp (ext4 in guest memory) and /run (tmpfs), its own /dev, /proc and /sys, and the
# installed kernel's modules (modprobe dm-thin-pool works). The command's
# output (stdout and stderr together) streams here from the serial
# console; the script exits with the command's status, 124 on timeout,
# 125 when the VM itself failed. qemu is always killed, by its PID.
#
# Options:
#   --kernel VERSION   kernel to boot (default: the newest /boot/vmlinuz-*
#                      with modules in /lib/modules/VERSION)
#   --timeout SECONDS  kill the VM after this long (default 600)
#   --mem MB           guest memory (default 4096; tmpfs lives in it)
#   --cpus N           guest CPUs (default 2)
#   --tmpfs PATH       an extra writable tmpfs at PATH in the guest (repeatable)
#   --tmp ext4|tmpfs   what /tmp is in the guest (default ext4: an ext4 image in guest
#                      memory, with user.* xattrs, which this kernel's tmpfs lacks)
#   --tmp-size SIZE    its size (default 8G, sparse)
#   --share DIR        the host directory DIR, read-write, at the same path in
#                      the guest (repeatable): how files come back to the host
#   --env K=V          set K in the command's environment (repeatable; CI,
#                      PATH and HOME are passed on by default)
#   --cwd DIR          the command's working directory (default: this one)
#   --log FILE         keep the whole serial console (boot included) in FILE
#   --initramfs-only   build (or find) the cached initramfs, print its path, exit
#
# Emulation only (-accel tcg): KVM exists here but nested guests fail with
# "failed to set MSR". The initramfs (busybox-static as /init plus the
# kernel's virtio/9p modules, from `modprobe --show-depends`) is cached in
# ${STRATA_VM_CACHE:-~/.cache/strata-vm}, keyed by kernel version and the
# hash of its contents' sources.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kernel=''
timeout=600
mem=4096
cpus=2
tmpfs=()
tmp=ext4
tmp_size=8G
shares=()
envs=()
cwd=$PWD
log=''
initramfs_only=0

die() { echo "vm: $*" >&2; exit 125; }

while [ $# -gt 0 ]; do
  case $1 in
    --kernel) kernel=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --cpus) cpus=$2; shift 2 ;;
    --tmpfs) tmpfs+=("$2"); shift 2 ;;
    --tmp) tmp=$2; shift 2 ;;
    --tmp-size) tmp_size=$2; shift 2 ;;
    --share) shares+=("$2"); shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --cwd) cwd=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --initramfs-only) initramfs_only=1; shift ;;
    --) shift; break ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
[ $initramfs_only = 1 ] || [ $# -gt 0 ] || die "no command given (usage: scripts/vm/run.sh [options] [--] COMMAND [ARG...])"

# The guest has its own /tmp and /run, which hide the host's: a working
# directory there (a checkout cloned under /tmp, say) is shared at its own
# path, or the guest could not even cd into it.
case $(cd "$cwd" && pwd) in
  /tmp|/tmp/*|/run|/run/*) shares+=("$cwd") ;;
esac

for tool in qemu-system-x86_64 modprobe cpio gzip; do
  command -v $tool >/dev/null || die "$tool is not installed (scripts/install-deps.sh installs it)"
done
[ -x /bin/busybox ] || die "busybox-static is not installed"

# The newest kernel whose modules are installed (the running one usually has none here).
if [ -z "$kernel" ]; then
  for v in $(ls /boot 2>/dev/null | sed -n 's/^vmlinuz-//p' | sort -V); do
    [ -f "/lib/modules/$v/modules.dep" ] && kernel=$v
  done
  [ -n "$kernel" ] || die "no kernel with modules in /boot (install linux-image-amd64)"
fi
vmlinuz=/boot/vmlinuz-$kernel
[ -r "$vmlinuz" ] || die "$vmlinuz is missing"

# --- the initramfs, cached ---------------------------------------------------
modules=$(modprobe -a -S "$kernel" --show-depends virtio_pci 9pnet_virtio 9p | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++')
[ -n "$modules" ] || die "modprobe found no 9p/virtio modules for $kernel"
key=$( { echo "$kernel"; cat "$here/init"; sha256sum /bin/busybox; echo "$modules"; } | sha256sum | cut -c1-16)
cache=${STRATA_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/strata-vm}
initramfs=$cache/initramfs-$kernel-$key.cpio.gz
if [ ! -s "$initramfs" ]; then
  mkdir -p "$cache"
  build=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$build"' EXIT
  mkdir -p "$build/root/bin" "$build/root/lib/modules"
  cp /bin/busybox "$build/root/bin/busybox"
  install -m 0755 "$here/init" "$build/root/init"
  for m in $modules; do
    name=$(basename "$m")
    case $name in
      *.ko) cp "$m" "$build/root/lib/modules/$name" ;;
      *.ko.xz) xz -dc "$m" > "$build/root/lib/modules/${name%.xz}"; name=${name%.xz} ;;
      *.ko.zst) zstd -qdc "$m" > "$build/root/lib/modules/${name%.zst}"; name=${name%.zst} ;;
      *) die "cannot unpack module $m" ;;
    esac
    echo "$name" >> "$build/root/lib/modules/order"
  done
  (cd "$build/root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1 > "$build/initramfs"
  mv "$build/initramfs" "$initramfs"   # rename: a concurrent run never sees half a file
  rm -rf "$build"
  trap - EXIT
fi
if [ $initramfs_only = 1 ]; then
  echo "$initramfs"
  exit 0
fi

# --- the run's exchange directory ---------------------------------------------
xchg=$(mktemp -d "${TMPDIR:-/tmp}/strata-vm.XXXXXX")
qpid=''
follower=''
cleanup() {
  [ -n "$qpid" ] && kill -9 "$qpid" 2>/dev/null || true
  [ -n "$follower" ] && kill "$follower" 2>/dev/null || true
  rm -rf "$xchg"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# POSIX single quotes (the guest's sh and busybox read these files, not bash).
quote() {
  local a q="'\\''"
  for a in "$@"; do printf "'%s' " "${a//\'/$q}"; done
}
{
  echo "VM_CWD=$(quote "$cwd")"
  echo "VM_TMPFS=$(quote "${tmpfs[*]:-}")"
  echo "VM_TMP=$(quote "$tmp")"
  echo "VM_TMP_SIZE=$(quote "$tmp_size")"
  spec=''
  for i in "${!shares[@]}"; do spec+="share$i:$(cd "${shares[$i]}" && pwd) "; done
  echo "VM_SHARES=$(quote "$spec")"
} > "$xchg/config"
{
  echo "PATH=$(quote "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")"
  echo "HOME=/tmp"
  [ -n "${CI:-}" ] && echo "CI=$(quote "$CI")"
  for e in "${envs[@]}"; do echo "${e%%=*}=$(quote "${e#*=}")"; done
} > "$xchg/env"
{ quote "$@"; echo; } > "$xchg/cmd.sh"

virtfs=(-virtfs "local,path=/,mount_tag=host,security_model=passthrough,readonly=on,multidevs=remap"
        -virtfs "local,path=$xchg,mount_tag=xchg,security_model=passthrough")
for i in "${!shares[@]}"; do
  virtfs+=(-virtfs "local,path=$(cd "${shares[$i]}" && pwd),mount_tag=share$i,security_model=passthrough,multidevs=remap")
done

console=$xchg/console
: > "$console"
qemu-system-x86_64 -accel tcg -cpu max -m "$mem" -smp "$cpus" \
  -nodefaults -display none -no-reboot \
  -kernel "$vmlinuz" -initrd "$initramfs" \
  -append "console=ttyS0 quiet panic=-1" \
  -chardev "file,id=console,path=$console" -serial chardev:console \
  "${virtfs[@]}" </dev/null >"$xchg/qemu.out" 2>&1 &
qpid=$!

# Stream the command's lines (between the markers) as they come.
tail -n +1 -F --pid="$qpid" "$console" 2>/dev/null | awk '
  { sub(/\r$/, "") }
  /^STRATA-VM-INIT-FAILED/ { print > "/dev/stderr"; next }
  /^STRATA-VM-EXIT:/ { inside = 0; next }
  inside { print; fflush() }
  /^STRATA-VM-BEGIN/ { inside = 1 }
' &
follower=$!
# The watchdog: poll (no sleeping helper process to leave behind), kill by PID at the deadline.
deadline=$((SECONDS + timeout))
timed_out=0
while kill -0 "$qpid" 2>/dev/null; do
  if [ $SECONDS -ge $deadline ]; then
    kill -9 "$qpid" 2>/dev/null || true
    timed_out=1
    break
  fi
  sleep 0.5
done
set +e
wait "$qpid" 2>/dev/null
qrc=$?
set -e
qpid=''
wait "$follower" 2>/dev/null || true
follower=''
[ -n "$log" ] && cp "$console" "$log"

if [ -s "$xchg/rc" ]; then
  exit "$(cat "$xchg/rc")"
fi
if [ $timed_out = 1 ]; then
  echo "vm: the command did not finish within ${timeout}s; the VM was killed" >&2
  exit 124
fi
echo "vm: the VM stopped without the command's exit status (qemu exit $qrc)" >&2
tail -n 20 "$console" | tr -d '\r' >&2
[ -s "$xchg/qemu.out" ] && cat "$xchg/qemu.out" >&2
exit 125
