#!/usr/bin/env bash
# Assemble the GPT disk from its partition images, without loop devices or
# root: mkfs.vfat + mtools for the FAT partitions, mkfs.ext4 for /data,
# genimage for the partition table.
#
#   image/mkdisk.sh --bzimage out/bzImage --sys out/sys.erofs --config DIR --out out/aaos.img
#                   [--data-mb 256]
# --config DIR is copied onto AAOS-CFG as is (kernel.yaml, manifests/, secrets).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data_mb=256
while [ $# -gt 0 ]; do
  case $1 in
    --bzimage) bzimage=$2; shift 2 ;;
    --sys) sys=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --data-mb) data_mb=$2; shift 2 ;;
    *) echo "mkdisk: unknown argument $1" >&2; exit 2 ;;
  esac
done
: "${bzimage:?--bzimage}" "${sys:?--sys}" "${config:?--config}" "${out:?--out}"

work=$(mktemp -d "${out}.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in" "$work/tmp" "$work/root" "$work/out"
export MTOOLS_SKIP_CHECK=1

# AAOS-BOOT: FAT32 ESP with the EFI stub kernel as the removable-media default loader
boot_mb=$(( ( $(stat -c %s "$bzimage") / 1048576 ) + 34 ))
mkfs.vfat -F 32 -S 512 -s 1 -n AAOS-BOOT -C "$work/in/boot.vfat" $((boot_mb * 1024)) >/dev/null
mmd -i "$work/in/boot.vfat" ::/EFI ::/EFI/BOOT
mcopy -i "$work/in/boot.vfat" "$bzimage" ::/EFI/BOOT/BOOTX64.EFI

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
