#!/usr/bin/env bash
# Build Linux from Debian's linux-source-6.1 with image/kernel.fragment and
# copy the EFI-stub bzImage to $1 (default out/bzImage).
#
# Cached by content hash under $AAOS_CACHE/linux/<hash>/: the hash covers the
# fragment, this script, the linux-source package version and the compiler
# version. The build runs in a scratch directory and only a build that ran to
# the end and passed the fragment check is moved into the cache, so a broken
# step can never hide behind a cache hit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-out/bzImage}
cache=${AAOS_CACHE:-$HOME/.cache/aaos}
tarball=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
fragment=$here/kernel.fragment
jobs=${AAOS_JOBS:-$(nproc)}

[ -f "$tarball" ] || { echo "build-linux: $tarball missing (apt-get install linux-source-6.1)" >&2; exit 1; }
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || sha256sum "$tarball" | cut -c1-16)
ccver=$(gcc --version | head -1)
hash=$( { cat "$fragment" "$0"; echo "$srcver"; echo "$ccver"; } | sha256sum | cut -c1-16)
dest=$cache/linux/$hash

if [ -f "$dest/bzImage" ]; then
  echo "build-linux: cache hit $dest"
else
  mkdir -p "$cache/linux"
  work=$(mktemp -d "$cache/linux/build-$hash.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "build-linux: building in $work (linux-source $srcver, $jobs jobs; several minutes)"
  tar -xJf "$tarball" -C "$work"
  src=$(echo "$work"/linux-source-*)
  (
    cd "$src"
    make -s ARCH=x86_64 x86_64_defconfig
    ./scripts/kconfig/merge_config.sh -m .config "$fragment" >/dev/null
    make -s ARCH=x86_64 olddefconfig
    # Every fragment line must have stuck (olddefconfig silently drops
    # options whose dependencies are missing).
    bad=0
    while IFS= read -r line; do
      case "$line" in
        CONFIG_*=*)
          grep -qxF -- "$line" .config || { echo "build-linux: fragment wants '$line', got '$(grep -E "^(# )?${line%%=*}[= ]" .config || echo unset)'" >&2; bad=1; } ;;
        "# CONFIG_"*" is not set")
          sym=${line#"# "}; sym=${sym%" is not set"}
          if grep -q "^$sym=" .config; then echo "build-linux: fragment wants $sym unset, got '$(grep "^$sym=" .config)'" >&2; bad=1; fi ;;
      esac
    done < "$fragment"
    [ "$bad" = 0 ] || exit 1
    make -s ARCH=x86_64 -j"$jobs" bzImage
  )
  mkdir -p "$work/result"
  cp "$src/arch/x86/boot/bzImage" "$work/result/bzImage"
  cp "$src/.config" "$work/result/config"
  echo "$srcver" > "$work/result/linux-source-version"
  rm -rf "$dest"
  mv "$work/result" "$dest"
  echo "build-linux: cached $dest"
fi

mkdir -p "$(dirname "$out")"
cp "$dest/bzImage" "$out.tmp" && mv "$out.tmp" "$out"
cp "$dest/config" "$(dirname "$out")/linux.config"
