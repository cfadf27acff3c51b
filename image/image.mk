# make image: out/aaos.img and the pieces it is made of, offline.
#   out/bzImage      Linux 6.1 (Debian linux-source) + image/kernel.fragment, EFI stub, cached by content hash
#   out/aaos-kernel  bun build --compile kernel/main.ts
#   out/stage0       init/stage0.c, musl static
#   out/sys.erofs    AAOS-SYS: stage0 as /sbin/init, the kernel binary, the five glibc files
#   out/aaos.img     GPT: AAOS-BOOT (systemd-boot), AAOS-SYS-A, AAOS-SYS-B, AAOS-CFG (from AAOS_CONFIG_DIR), AAOS-DATA
#   out/aaos.qcow2   the same disk for QEMU/KVM, virt-manager, Proxmox (qemu-img)
#   out/aaos.vmdk    for VMware Workstation/Fusion/ESXi and VirtualBox (monolithicSparse)
#   out/aaos.vhdx    for Hyper-V (Generation 2), dynamic
# make upgrade-bundle: out/aaos-upgrade.bundle, the system slot and kernel for system.upgrade
#   (AAOS_VERSION=… names the version; AAOS_UPGRADE_KEY=ed25519.pem signs it; docs/operations.md)
.PHONY: image linux kernel-binary disk-formats upgrade-bundle
comma := ,

OUT ?= out
AAOS_CONFIG_DIR ?= image/config
# bun-linux-x64 (AVX2; QEMU -cpu max) or bun-linux-x64-baseline for old hardware
AAOS_BUN_TARGET ?=
# --bytecode: JavaScriptCore bytecode compiled at build time; boot to ready
# under TCG went from ~4.75 s to ~3.95 s (bench/boot.ts). --splitting (which
# needs --format=esm): what is imported at first use (the MCP SDKs, the
# dashboard, the upgrade code) is a chunk of its own, loaded with its node:
# imports when it is used; in one file Bun hoists those imports to the start
# (idle RSS 3-6 MiB less, docs/design.md "Idle memory")
AAOS_BUN_FLAGS ?= --bytecode --format=esm --splitting
KERNEL_TS_SOURCES := $(shell find kernel init -name '*.ts' 2>/dev/null) package.json
# the system's version (system.ready, system.info, the upgrade bundle); default: package.json's
AAOS_VERSION ?= $(shell sed -n 's/^  "version": *"\([^"]*\)".*/\1/p' package.json)
AAOS_UPGRADE_KEY ?=
# rebuilt when AAOS_VERSION changes, so a binary never carries another build's version
$(OUT)/version.stamp: FORCE
	@mkdir -p $(OUT)
	@[ "$$(cat $@ 2>/dev/null)" = "$(AAOS_VERSION)" ] || echo "$(AAOS_VERSION)" > $@
.PHONY: FORCE
FORCE:
LINUX_SOURCE_TARBALL ?= /usr/src/linux-source-6.1.tar.xz

# apt-deps first: a fresh Debian machine gets musl-tools, genimage, linux-source…
image: apt-deps $(OUT)/aaos.img disk-formats
disk-formats: $(OUT)/aaos.qcow2 $(OUT)/aaos.vmdk $(OUT)/aaos.vhdx
linux: $(OUT)/bzImage
kernel-binary: $(OUT)/aaos-kernel

$(LINUX_SOURCE_TARBALL):
	$(MAKE) apt-deps

$(OUT)/bzImage: image/kernel.fragment image/build-linux.sh $(LINUX_SOURCE_TARBALL)
	image/build-linux.sh $@

$(OUT)/aaos-kernel: $(KERNEL_TS_SOURCES) $(OUT)/version.stamp
	@mkdir -p $(OUT)
	@[ -x $(BUN) ] || $(MAKE) npm-deps
	$(BUN) build --compile $(AAOS_BUN_FLAGS) $(if $(AAOS_BUN_TARGET),--target=$(AAOS_BUN_TARGET)) \
	  --define 'AAOS_BUILD_VERSION="$(AAOS_VERSION)"' --banner 'globalThis.__aaosEval0??=performance.now();' \
	  kernel/main.ts --outfile $@.tmp
	mv $@.tmp $@

$(OUT)/stage0: init/stage0.c
	@mkdir -p $(OUT)
	musl-gcc -static -Os -s -Wall -Wextra -o $@ $<

$(OUT)/sys.erofs: $(OUT)/aaos-kernel $(OUT)/stage0 image/mkrootfs.sh
	image/mkrootfs.sh $(OUT)/aaos-kernel $(OUT)/stage0 $@

$(OUT)/aaos.img: $(OUT)/bzImage $(OUT)/sys.erofs image/mkdisk.sh image/genimage.cfg $(shell find $(AAOS_CONFIG_DIR) 2>/dev/null)
	image/mkdisk.sh --bzimage $(OUT)/bzImage --sys $(OUT)/sys.erofs --config $(AAOS_CONFIG_DIR) --out $@ \
	  --version "$(AAOS_VERSION)"
	@ls -l $@

upgrade-bundle: apt-deps $(OUT)/aaos-upgrade.bundle
$(OUT)/aaos-upgrade.bundle: $(OUT)/bzImage $(OUT)/sys.erofs image/mkbundle.ts kernel/sys/bundle.ts $(AAOS_UPGRADE_KEY)
	$(BUN) image/mkbundle.ts --bzimage $(OUT)/bzImage --sys $(OUT)/sys.erofs --version "$(AAOS_VERSION)" \
	  $(if $(AAOS_UPGRADE_KEY),--key $(AAOS_UPGRADE_KEY)) --out $@
	@ls -l $@

# The same disk in the formats other hypervisors import (docs/operations.md,
# "Other hypervisors"); test/e2e/disks.test.ts checks each equals aaos.img.
# Converted under its final name in a scratch directory: a VMDK's descriptor
# names its own file.
define disk_format
	@rm -rf $@.work && mkdir -p $@.work
	qemu-img convert -q -f raw -O $(1) $< $@.work/$(notdir $@)
	mv $@.work/$(notdir $@) $@ && rmdir $@.work
endef
$(OUT)/aaos.qcow2: $(OUT)/aaos.img
	$(call disk_format,qcow2)
$(OUT)/aaos.vmdk: $(OUT)/aaos.img
	$(call disk_format,vmdk -o subformat=monolithicSparse$(comma)adapter_type=lsilogic)
$(OUT)/aaos.vhdx: $(OUT)/aaos.img
	$(call disk_format,vhdx -o subformat=dynamic)
