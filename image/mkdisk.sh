#!/usr/bin/env bash
# Assemble the GPT disk from its partition images, without loop devices or
# root: mkfs.vfat + mtools for the FAT partitions, mkfs.ext4 for /data,
# genimage for the partition table (image/genimage.cfg: fixed-size slots).
#
#   image/mkdisk.sh --bzimage out/bzImage --sys out/sys.erofs --config DIR --out out/aaos.img
#                   [--data-mb 256] [--version V] [--loader systemd-bootx64.efi]
# --config DIR is copied onto AAOS-CFG as is (kernel.yaml, manifests/, secrets,
# upgrade.pub). The system goes into slot A, booted by systemd-boot through the
# Boot Loader Specification entry loader/entries/aaos-1-a.conf (generation 1,
# confirmed: no boot counter); slot B is empty until system.upgrade writes it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data_mb=256
version=unknown
loader=${AAOS_SYSTEMD_BOOT:-/usr/lib/systemd/boot/efi/systemd-bootx64.efi}
while [ $# -gt 0 ]; do
  case $1 in
    --bzimage) bzimage=$2; shift 2 ;;
    --sys) sys=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --data-mb) data_mb=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --loader) loader=$2; shift 2 ;;
    *) echo "mkdisk: unknown argument $1" >&2; exit 2 ;;
  esac
done
: "${bzimage:?--bzimage}" "${sys:?--sys}" "${config:?--config}" "${out:?--out}"

work=$(mktemp -d "${out}.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in" "$work/tmp" "$work/root" "$work/out"
export MTOOLS_SKIP_CHECK=1

[ -f "$loader" ] || { echo "mkdisk: $loader missing (apt-get install systemd-boot-efi)" >&2; exit 1; }

# AAOS-BOOT: FAT32 ESP of the fixed size genimage.cfg gives it (96 MiB: two
# kernels and the loader). systemd-boot is the removable-media default loader;
# it boots the first entry by version (generation) whose boot counter is not
# exhausted (docs/design.md "Upgrade and rollback").
boot_mb=96
mkfs.vfat -F 32 -S 512 -s 1 -n AAOS-BOOT -C "$work/in/boot.vfat" $((boot_mb * 1024)) >/dev/null
b=(-i "$work/in/boot.vfat")
mmd "${b[@]}" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries ::/aaos ::/aaos/a ::/aaos/b
mcopy "${b[@]}" "$loader" ::/EFI/BOOT/BOOTX64.EFI
mcopy "${b[@]}" "$bzimage" ::/aaos/a/bzImage
printf 'timeout 0\neditor no\nauto-entries no\nauto-firmware no\nconsole-mode keep\n' > "$work/loader.conf"
mcopy "${b[@]}" "$work/loader.conf" ::/loader/loader.conf
# the entry format is kernel/sys/upgrade.ts's bootEntry(); panic=10: a system
# that dies at boot reboots, and the loader then falls back
cat > "$work/entry.conf" <<ENTRY
title aaOS $version (slot a)
sort-key aaos
version 1
linux /aaos/a/bzImage
options root=PARTLABEL=AAOS-SYS-A aaos.gen=1 panic=10
ENTRY
mcopy "${b[@]}" "$work/entry.conf" ::/loader/entries/aaos-1-a.conf
printf '{"slot":"a","version":"%s","generation":1,"sys_sha256":"%s","kernel_sha256":"%s"}\n' \
  "$version" "$(sha256sum "$sys" | cut -c1-64)" "$(sha256sum "$bzimage" | cut -c1-64)" > "$work/slot.json"
mcopy "${b[@]}" "$work/slot.json" ::/aaos/a/slot.json

cp "$sys" "$work/in/sys.erofs"

# AAOS-CFG: FAT (editable from any OS), 16 MiB
mkfs.vfat -n AAOS-CFG -C "$work/in/config.vfat" 16384 >/dev/null
if [ -n "$(ls -A "$config")" ]; then mcopy -s -Q -i "$work/in/config.vfat" "$config"/* ::/; fi

# AAOS-DATA: empty ext4; PID 1 lays it out on first boot and grows it to the
# disk's end (init/growdata.ts). 4 KiB blocks and an inode per 16 KiB, the
# ext4 defaults for a disk, not mke2fs's "small" ones (1 KiB blocks, an inode
# per 4 KiB) that a 256 MiB file gets: grown to a 1 TB disk those would be a
# quarter of a billion inodes and 8 MiB block groups.
mkfs.ext4 -q -F -L AAOS-DATA -b 4096 -i 16384 -E root_owner=0:0 -d "$work/root" "$work/in/data.ext4" "${data_mb}M" >/dev/null

genimage --config "$here/genimage.cfg" --inputpath "$work/in" --outputpath "$work/out" \
  --rootpath "$work/root" --tmppath "$work/tmp" >/dev/null 2>"$work/genimage.log" \
  || { cat "$work/genimage.log" >&2; exit 1; }
mv "$work/out/aaos.img" "$out"
