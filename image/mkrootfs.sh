#!/usr/bin/env bash
# The read-only system partition (AAOS-SYS, erofs): stage0 as /sbin/init, the
# agent kernel binary, and exactly the glibc files it links (checked with ldd:
# anything else fails the build). No shell, no tools, no distro.
#
#   image/mkrootfs.sh KERNEL_BINARY STAGE0 OUT.erofs
# AAOS_EROFS_COMPRESS: "" (default, uncompressed: fastest boot) or lz4hc, lz4
set -euo pipefail
bin=$1 stage0=$2 out=$3
allowed="ld-linux-x86-64.so.2 libc.so.6 libpthread.so.0 libdl.so.2 libm.so.6"
libdir=/lib/x86_64-linux-gnu

root=$(mktemp -d "${out}.root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{sbin,usr/bin,etc,lib64,$libdir,proc,dev,sys,run,tmp,config,data}
chmod 1777 "$root/tmp"
install -m 0755 "$stage0" "$root/sbin/init"
install -m 0755 "$bin" "$root/usr/bin/aaos-kernel"

# exactly the libraries ldd names, and they must be the expected five
libs=$(ldd "$bin" | awk '/=>/ {print $3} !/=>/ && $1 ~ /^\// {print $1}')
for l in $libs; do
  base=$(basename "$l")
  case " $allowed " in *" $base "*) ;; *) echo "mkrootfs: $bin needs $base, which is not in the allowed set ($allowed)" >&2; exit 1 ;; esac
  cp -L "$l" "$root/$libdir/$base"
done
for a in $allowed; do [ -e "$root/$libdir/$a" ] || cp -L "$libdir/$a" "$root/$libdir/$a"; done
ln -sf "$libdir/ld-linux-x86-64.so.2" "$root/lib64/ld-linux-x86-64.so.2"

ln -s ../run/resolv.conf "$root/etc/resolv.conf"
printf '127.0.0.1 localhost aaos\n::1 localhost\n' > "$root/etc/hosts"
printf 'root:x:0:0:root:/run:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
printf 'NAME=aaOS\nID=aaos\nPRETTY_NAME="aaOS (agent kernel as PID 1)"\n' > "$root/etc/os-release"

comp=()
[ -n "${AAOS_EROFS_COMPRESS:-}" ] && comp=(-z"$AAOS_EROFS_COMPRESS")
rm -f "$out.tmp"
mkfs.erofs --quiet --all-root -T0 "${comp[@]}" "$out.tmp" "$root"
mv "$out.tmp" "$out"
