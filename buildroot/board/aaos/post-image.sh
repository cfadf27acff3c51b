#!/usr/bin/env bash
# aaOS Buildroot post-image: the GPT disk, assembled exactly as the offline
# path does it — image/mkdisk.sh (FAT ESP with systemd-boot as
# EFI/BOOT/BOOTX64.EFI and the kernel for slot A, FAT AAOS-CFG from
# image/config, empty ext4 AAOS-DATA)
# and genimage on the shared layout image/genimage.cfg, whose inputs are
# boot.vfat, sys.erofs, config.vfat, data.ext4. Buildroot provides bzImage
# and rootfs.erofs (AAOS-SYS-A); mkfs.vfat, mtools, mkfs.ext4 and genimage
# come from HOST_DIR (first in PATH here).
#
# Called by Buildroot as: post-image.sh BINARIES_DIR -c GENIMAGE_CFG
# (BR2_ROOTFS_POST_IMAGE_SCRIPT_ARGS). Result: BINARIES_DIR/aaos.img.
# AAOS_CONFIG_DIR (environment) replaces image/config on AAOS-CFG.
set -euo pipefail

die() { echo "aaos post-image: $*" >&2; exit 1; }
images=${1:?usage: post-image.sh BINARIES_DIR -c GENIMAGE_CFG}
shift
cfg=
while [ $# -gt 0 ]; do
  case $1 in
    -c) cfg=$2; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
[ -n "$cfg" ] || die "no genimage config (-c), see BR2_ROOTFS_POST_IMAGE_SCRIPT_ARGS"
[ -f "$cfg" ] || die "$cfg missing"

repo=$(cd "$(dirname "$0")/../../.." && pwd)
mkdisk=$repo/image/mkdisk.sh
[ -x "$mkdisk" ] || die "$mkdisk missing: the offline image assembler is shared with this path"

for f in bzImage rootfs.erofs; do [ -f "$images/$f" ] || die "$images/$f missing"; done

args=(--bzimage "$images/bzImage" --sys "$images/rootfs.erofs"
      --config "${AAOS_CONFIG_DIR:-$repo/image/config}" --out "$images/aaos.img")
if grep -q -- '--genimage-config' "$mkdisk"; then
  args+=(--genimage-config "$cfg")
else
  # mkdisk.sh always runs genimage --config on image/genimage.cfg: the layout
  # we were given must be that very file (not a copy)
  [ "$(stat -L -c %d:%i "$cfg")" = "$(stat -L -c %d:%i "$repo/image/genimage.cfg")" ] \
    || die "$cfg is not image/genimage.cfg, and image/mkdisk.sh takes no other layout"
fi

"$mkdisk" "${args[@]}"
echo "aaos post-image: $images/aaos.img"
