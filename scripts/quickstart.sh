#!/usr/bin/env bash
# The quick start: install what strata needs, build it, and run a real
# end-to-end job: a busybox root filesystem is tarred by GNU tar, imported
# as a layer into a strata data root (overlay2 if this machine has it, in
# dockerd's on-disk format), a second layer goes on top, the store is
# checked, and the layer is exported again and compared byte for byte with
# the original. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm ci --no-audit --no-fund
strata() { node dist/src/bundle/strata.js "$@"; }

work=$(mktemp -d /tmp/strata-quickstart.XXXXXX)
# Anything still mounted under the work dir (a failed step) is detached before it is removed.
cleanup() {
  awk -v w="$work" '$2 ~ "^" w {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/top"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in $("$work/rootfs/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s /bin/busybox "$work/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
chmod 1777 "$work/rootfs/tmp"
tar --format=posix --xattrs --numeric-owner -czf "$work/layer.tar.gz" -C "$work/rootfs" .

export STRATA_ROOT="$work/root"
echo "== strata layer import (gzip'd busybox rootfs, $(tar -tzf "$work/layer.tar.gz" | wc -l) entries)"
base=$(strata layer import "$work/layer.tar.gz")
echo "base layer $base"
echo 'hello from the top layer' > "$work/top/hello"
tar --numeric-owner -cf "$work/top.tar" -C "$work/top" .
top=$(strata layer import --parent "$base" "$work/top.tar")
echo "top layer  $top"
strata info
strata layer ls
echo "== strata check (every layer rebuilt from tar-split and verified against its diffID)"
strata check
echo "== strata layer export: the base layer, rebuilt from tar-split + the driver's files"
strata layer export -o "$work/rebuilt.tar" "$base"
gunzip -c "$work/layer.tar.gz" | cmp - "$work/rebuilt.tar"
echo "rebuilt tar is byte-identical to the original; sha256 $(sha256sum < "$work/rebuilt.tar" | cut -d' ' -f1)"
echo "== the data root, in dockerd 20.10's layout"
find "$work/root/image" -maxdepth 4 | sed "s|$work/root/||" | sort | head -20

echo "== images and containers: import the rootfs as an image, run it with runc, commit, save, load"
img=$(strata import -m 'busybox rootfs' "$work/layer.tar.gz" quickstart/busybox:1)
echo "imported $img"
strata run --rm quickstart/busybox:1 sh -c 'echo "hello from a container, hostname $(hostname)"'
cid=$(strata create --name qs-demo quickstart/busybox:1 sh -c 'echo built > /built; rm /etc/passwd')
strata start -a qs-demo
echo "strata diff qs-demo:"
strata diff qs-demo
strata commit -m 'a file added, one removed' qs-demo quickstart/busybox:2
strata rm qs-demo > /dev/null
strata images
strata history quickstart/busybox:2
strata save -o "$work/images.tar" quickstart/busybox:1 quickstart/busybox:2
echo "== load the saved archive into a second data root: same image IDs"
STRATA_ROOT="$work/root2" strata load -i "$work/images.tar"
[ "$(STRATA_ROOT="$work/root2" strata images -q --no-trunc quickstart/busybox:2)" = "$(strata images -q --no-trunc quickstart/busybox:2)" ]
STRATA_ROOT="$work/root2" strata run --rm quickstart/busybox:2 cat /built
echo "quick start done: ${cid:0:12} committed, saved and loaded with the same image ID"
