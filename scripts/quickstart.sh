#!/usr/bin/env bash
# The quick start: install what strata needs, build it, and run a real
# end-to-end job with the archive engine: a busybox root filesystem is
# tarred by GNU tar, applied by strata (recording tar-split), rebuilt from
# tar-split + the files on disk, and checked byte for byte against the
# original. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm ci --no-audit --no-fund
strata() { node dist/src/cli/main.js "$@"; }

work=$(mktemp -d /tmp/strata-quickstart.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/applied"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in $("$work/rootfs/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s /bin/busybox "$work/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
chmod 1777 "$work/rootfs/tmp"
tar --format=posix --xattrs --numeric-owner -czf "$work/layer.tar.gz" -C "$work/rootfs" .

echo "== strata archive apply (gzip'd busybox rootfs, $(tar -tzf "$work/layer.tar.gz" | wc -l) entries)"
strata archive apply -i "$work/layer.tar.gz" --tar-split "$work/tar-split.json.gz" "$work/applied" | tee "$work/result.json"
diff_id=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).diffId)' "$work/result.json")

echo "== strata archive assemble (tar-split + files on disk)"
strata archive assemble --tar-split "$work/tar-split.json.gz" --diff-id "$diff_id" -o "$work/rebuilt.tar" "$work/applied"
gunzip -c "$work/layer.tar.gz" | cmp - "$work/rebuilt.tar"
echo "rebuilt tar is byte-identical to the original; sha256 $(sha256sum < "$work/rebuilt.tar" | cut -d' ' -f1) = diffID $diff_id"
"$work/applied/bin/busybox" sh -c 'echo "busybox from the applied layer runs: $(busybox | head -1)"'
