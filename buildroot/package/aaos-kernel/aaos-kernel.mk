################################################################################
#
# aaos-kernel: the agent kernel (Bun-compiled kernel/main.ts) and stage0
#
################################################################################

# The sources are the aaOS repository around this BR2_EXTERNAL tree.
AAOS_KERNEL_SRC_ROOT = $(realpath $(BR2_EXTERNAL_AAOS_PATH)/..)
AAOS_KERNEL_VERSION = $(shell sed -n 's/^  "version": "\([^"]*\)".*/\1/p' $(AAOS_KERNEL_SRC_ROOT)/package.json)
AAOS_KERNEL_SITE = $(AAOS_KERNEL_SRC_ROOT)
AAOS_KERNEL_SITE_METHOD = local
# Copy sources only: never the build outputs (out/ may hold this very
# Buildroot output directory), installed modules or tests.
AAOS_KERNEL_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude=/out --exclude=/node_modules --exclude=/test --exclude=/bench \
	--exclude=/docs --exclude=/qemu --exclude=/buildroot --exclude=/.ci

AAOS_KERNEL_PREBUILT_PATH = $(call qstrip,$(BR2_PACKAGE_AAOS_KERNEL_PREBUILT))
AAOS_KERNEL_BUN_TARGET = $(call qstrip,$(BR2_PACKAGE_AAOS_KERNEL_BUN_TARGET))

ifeq ($(AAOS_KERNEL_PREBUILT_PATH),)
# Bun comes from the npm registry: 'npm ci' installs the version that
# package-lock.json pins (devDependency "bun"), with Buildroot's host-nodejs.
AAOS_KERNEL_DEPENDENCIES += host-nodejs
define AAOS_KERNEL_BUILD_AGENT_KERNEL
	cd $(@D) && $(HOST_MAKE_ENV) npm_config_cache=$(BUILD_DIR)/.npm-cache \
		$(HOST_DIR)/bin/npm ci --no-audit --no-fund
	cd $(@D) && $(HOST_MAKE_ENV) ./node_modules/.bin/bun build --compile \
		--target=$(AAOS_KERNEL_BUN_TARGET) \
		--outfile $(@D)/aaos-kernel kernel/main.ts
endef
else
# A relative path is relative to the repository (e.g. out/aaos-kernel).
AAOS_KERNEL_PREBUILT_ABS = $(if $(filter /%,$(AAOS_KERNEL_PREBUILT_PATH)),,$(AAOS_KERNEL_SRC_ROOT)/)$(AAOS_KERNEL_PREBUILT_PATH)
define AAOS_KERNEL_BUILD_AGENT_KERNEL
	@test -f $(AAOS_KERNEL_PREBUILT_ABS) || { \
		echo "aaos-kernel: BR2_PACKAGE_AAOS_KERNEL_PREBUILT: $(AAOS_KERNEL_PREBUILT_ABS) missing (make image builds out/aaos-kernel)" >&2; \
		exit 1; }
	cp $(AAOS_KERNEL_PREBUILT_ABS) $(@D)/aaos-kernel
endef
endif

# stage0 is static: it runs before anything is mounted and must not need
# the dynamic loader. Built with the Buildroot cross-compiler (glibc).
define AAOS_KERNEL_BUILD_CMDS
	$(AAOS_KERNEL_BUILD_AGENT_KERNEL)
	$(TARGET_CC) $(TARGET_CFLAGS) -Os $(TARGET_LDFLAGS) -static \
		-o $(@D)/stage0 $(@D)/init/stage0.c
endef

# Never stripped (strip removes the code bun embeds; the defconfig lists it
# in BR2_STRIP_EXCLUDE_FILES, and board/aaos/post-build.sh checks that the
# installed binary is byte-identical to the one built here).
define AAOS_KERNEL_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/aaos-kernel $(TARGET_DIR)/usr/bin/aaos-kernel
	$(INSTALL) -D -m 0755 $(@D)/stage0 $(TARGET_DIR)/sbin/init
endef

$(eval $(generic-package))
