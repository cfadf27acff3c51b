#!/usr/bin/env bash
# aaOS Buildroot post-build: make the target tree the appliance's system
# partition (AAOS-SYS, erofs, read-only) and nothing more.
#   - /sbin/init is stage0, /usr/bin/aaos-kernel the agent kernel
#   - the only shared libraries left are those the kernel binary needs
#     (ld-linux-x86-64.so.2, libc.so.6, libpthread.so.0, libdl.so.2, libm.so.6)
#   - mount points for /config (AAOS-CFG) and /data (AAOS-DATA) exist
#   - no shell, no BusyBox
# Called by Buildroot as: post-build.sh TARGET_DIR; the environment has
# BUILD_DIR, HOST_DIR, BINARIES_DIR, BR2_CONFIG.
set -euo pipefail

target=${1:?usage: post-build.sh TARGET_DIR}
die() { echo "aaos post-build: $*" >&2; exit 1; }

kernel=$target/usr/bin/aaos-kernel
[ -f "$kernel" ] || die "$kernel missing (BR2_PACKAGE_AAOS_KERNEL)"
[ -f "$target/sbin/init" ] || die "$target/sbin/init (stage0) missing"

# The kernel binary must be exactly what bun produced: strip or patchelf
# would cut away the embedded code. Restore it if a finalize step touched it.
built=$(find "$BUILD_DIR" -mindepth 2 -maxdepth 2 -path "$BUILD_DIR/aaos-kernel-*/aaos-kernel" -type f -print -quit 2>/dev/null || true)
[ -n "$built" ] || die "no built aaos-kernel under $BUILD_DIR"
if ! cmp -s "$built" "$kernel"; then
  echo "aaos post-build: $kernel was modified after install (strip/patchelf); restoring the built binary"
  install -m 0755 "$built" "$kernel"
fi

readelf=$(find "$HOST_DIR/bin" -maxdepth 1 -name '*-linux-*readelf' -print -quit 2>/dev/null || true)
[ -n "$readelf" ] || readelf=readelf

# stage0 must be static (no program interpreter)
if "$readelf" -l "$target/sbin/init" | grep -q "Requesting program interpreter"; then
  die "/sbin/init (stage0) is dynamically linked"
fi

# Keep only the libraries the kernel binary needs, by its NEEDED entries
# (and theirs), resolved in /lib and /usr/lib of the target.
find_lib() { for d in lib usr/lib lib64; do [ -e "$target/$d/$1" ] && { echo "$target/$d/$1"; return; }; done; }
declare -A keep=()
queue=("$kernel")
interp=$("$readelf" -l "$kernel" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
[ -n "$interp" ] && keep[$(basename "$interp")]=1
while [ ${#queue[@]} -gt 0 ]; do
  f=${queue[0]}; queue=("${queue[@]:1}")
  for n in $("$readelf" -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [ -n "${keep[$n]:-}" ] && continue
    keep[$n]=1
    p=$(find_lib "$n"); [ -n "$p" ] || die "$n (needed by $(basename "$f")) is not in the target"
    queue+=("$(readlink -f "$p")")
  done
done
for n in "${!keep[@]}"; do [ -n "$(find_lib "$n")" ] || die "$n missing from the target"; done
echo "aaos post-build: keeping libraries: ${!keep[*]}"

# Remove every other shared object (and dangling links to them)
while IFS= read -r -d '' f; do
  name=$(basename "$f")
  [ -n "${keep[$name]:-}" ] && continue
  # other links (libc.so and the like) go; a kept name may be a link to a
  # versioned file: that file stays
  [ -L "$f" ] && { rm -f "$f"; continue; }
  skip=0
  for k in "${!keep[@]}"; do
    p=$(find_lib "$k")
    [ "$(readlink -f "$p")" = "$(readlink -f "$f")" ] && skip=1 && break
  done
  [ $skip = 1 ] || rm -f "$f"
done < <(find "$target/lib" "$target/usr/lib" \( -name '*.so' -o -name '*.so.*' \) \( -type f -o -type l \) -print0 2>/dev/null)
rm -rf "$target/usr/lib/gconv" "$target/etc/ld.so.cache" "$target/etc/ld.so.conf"

# Nothing else: no tools, no skeleton extras (the offline rootfs,
# image/mkrootfs.sh, has exactly: /sbin/init, /usr/bin/aaos-kernel, the
# libraries, /etc below, and the mount points)
keep_bins="$(readlink -f "$target/sbin/init") $(readlink -f "$kernel")"
while IFS= read -r -d '' f; do
  case " $keep_bins " in
    *" $(readlink -f "$f") "*) ;;
    *) echo "aaos post-build: removing ${f#"$target"}"; rm -f "$f" ;;
  esac
done < <(find -H "$target/bin" "$target/sbin" "$target/usr/bin" "$target/usr/sbin" -mindepth 1 \( -type f -o -type l \) -print0 2>/dev/null)
for d in media mnt opt root srv home var usr/share usr/libexec usr/lib/os-release; do rm -rf "${target:?}/$d"; done

# /etc as the offline rootfs writes it (image/mkrootfs.sh; test/buildroot
# checks these lines stay identical to its own)
root=$target
rm -rf "${root:?}/etc" && mkdir -p "$root/etc"
ln -s ../run/resolv.conf "$root/etc/resolv.conf"
printf '127.0.0.1 localhost aaos\n::1 localhost\n' > "$root/etc/hosts"
printf 'root:x:0:0:root:/run:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
printf 'NAME=aaOS\nID=aaos\nPRETTY_NAME="aaOS (agent kernel as PID 1)"\n' > "$root/etc/os-release"

# Mount points (the root is read-only at run time)
install -d -m 0755 "$target/config" "$target/data" "$target/proc" "$target/dev" "$target/sys" "$target/run" "$target/tmp"
chmod 1777 "$target/tmp"

# No shell, no BusyBox
for f in bin/sh bin/busybox usr/bin/sh bin/bash; do
  [ -e "$target/$f" ] && die "/$f present: the appliance has no shell"
done
exit 0
