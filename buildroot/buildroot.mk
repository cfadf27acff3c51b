# make buildroot-image: the appliance built by Buildroot (BR2_EXTERNAL tree
# buildroot/), next to the offline `make image`. Both share
# image/kernel.fragment, image/genimage.cfg and image/mkdisk.sh.
#
#   make buildroot-image                       clone the pinned release (HEAD must be the pinned commit), build
#   BUILDROOT_DIR=/path make buildroot-image   use an existing Buildroot tree, no clone
#   make buildroot-image AAOS_KERNEL_PREBUILT=out/aaos-kernel
#                                              install the offline build's kernel binary
#                                              instead of compiling it inside Buildroot
#   make test-buildroot                        the Buildroot checks (test/buildroot);
#                                              the defconfig check runs where BUILDROOT_DIR is set
# Result: out/aaos-buildroot.img. docs/buildroot.md has the details.
.PHONY: buildroot-image buildroot-config buildroot-tree test-buildroot

# The release, pinned by its git commit: buildroot/checkout.sh clones the tag
# and refuses a checkout whose HEAD is any other commit. GitLab is where the
# Buildroot project keeps its repository (github.com/buildroot/buildroot says
# it is a mirror of it); git.buildroot.net serves the same history.
BUILDROOT_VERSION := 2026.05.1
BUILDROOT_COMMIT := cb857ba4c87a93e5265a9e4a3f32071abf39e14a
BUILDROOT_GIT_URL ?= https://gitlab.com/buildroot.org/buildroot.git
BUILDROOT_DEFCONFIG := aaos_x86_64_defconfig
# An existing tree (a checkout of a Buildroot release); empty: clone the pinned one.
BUILDROOT_DIR ?=
BR_TREE := $(if $(BUILDROOT_DIR),$(abspath $(BUILDROOT_DIR)),$(AAOS_CACHE)/buildroot/buildroot-$(BUILDROOT_VERSION))
BR_OUT ?= $(CURDIR)/out/buildroot
# Buildroot's source downloads, kept across builds and `make clean`
BR2_DL_DIR ?= $(AAOS_CACHE)/buildroot-dl
# Where Buildroot fetches package sources (and its backup mirror); probed first
BR_PROBE_URLS ?= https://sources.buildroot.net/ https://cdn.kernel.org/
AAOS_KERNEL_PREBUILT ?=
# Only to run with every source already in BR2_DL_DIR: skip the network probe
BUILDROOT_SKIP_PROBE ?=
# Buildroot's own sub-make must not inherit ours (-j, -s, variables)
BR_MAKE = env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS $(MAKE) -C $(BR_TREE) O=$(BR_OUT) BR2_EXTERNAL=$(CURDIR)/buildroot BR2_DL_DIR=$(BR2_DL_DIR)

# One line and stop when the internet is out of reach: Buildroot downloads
# its own sources, so without a network it would fail many times over.
define br_probe
	@if [ -z "$(BUILDROOT_SKIP_PROBE)" ]; then \
	  for u in $(1); do \
	    curl --max-time 5 -sSI -o /dev/null "$$u" 2>/dev/null || { \
	      echo "buildroot-image: $$u is not reachable (no internet?): the Buildroot path downloads Buildroot and every package's source. Offline, use 'make image'; with all sources already in $(BR2_DL_DIR), set BUILDROOT_SKIP_PROBE=1." >&2; exit 1; }; \
	  done; \
	fi
endef

# Every time: a cached tree is checked again (HEAD, no local changes), in a moment.
ifeq ($(BUILDROOT_DIR),)
buildroot-tree:
	@$(CURDIR)/buildroot/checkout.sh "$(BUILDROOT_GIT_URL)" "$(BUILDROOT_VERSION)" "$(BUILDROOT_COMMIT)" "$(BR_TREE)"
else
buildroot-tree:
	@[ -f $(BR_TREE)/Makefile ] && [ -f $(BR_TREE)/Config.in ] || { echo "buildroot-image: BUILDROOT_DIR=$(BUILDROOT_DIR) is not a Buildroot tree" >&2; exit 1; }
	@v=$$(sed -n 's/^export BR2_VERSION := //p' $(BR_TREE)/Makefile); [ "$$v" = "$(BUILDROOT_VERSION)" ] || \
	  echo "buildroot-image: note: BUILDROOT_DIR is Buildroot $$v, this tree is checked against $(BUILDROOT_VERSION) (make test-buildroot checks yours)" >&2
	@h=$$([ -e $(BR_TREE)/.git ] && git --git-dir=$(BR_TREE)/.git rev-parse -q --verify 'HEAD^{commit}' 2>/dev/null); \
	  [ "$$h" = "$(BUILDROOT_COMMIT)" ] || \
	  echo "buildroot-image: note: BUILDROOT_DIR is $$([ -n "$$h" ] && echo "commit $$h" || echo "not a git checkout"), not the pinned $(BUILDROOT_VERSION) ($(BUILDROOT_COMMIT)); using it as you asked" >&2
endif

# .config from our defconfig (+ the command-line choices), every time: the
# defconfig is the source of truth, .config is derived.
buildroot-config: buildroot-tree $(if $(AAOS_KERNEL_PREBUILT),$(AAOS_KERNEL_PREBUILT))
	$(BR_MAKE) -s $(BUILDROOT_DEFCONFIG)
ifneq ($(AAOS_KERNEL_PREBUILT),)
	$(BR_TREE)/utils/config --file $(BR_OUT)/.config --set-str BR2_PACKAGE_AAOS_KERNEL_PREBUILT "$(abspath $(AAOS_KERNEL_PREBUILT))"
endif
ifneq ($(AAOS_BUN_TARGET),)
	$(BR_TREE)/utils/config --file $(BR_OUT)/.config --set-str BR2_PACKAGE_AAOS_KERNEL_BUN_TARGET "$(AAOS_BUN_TARGET)"
endif
	$(BR_MAKE) -s olddefconfig

buildroot-image: out/aaos-buildroot.img
# Always hand over to Buildroot: it knows what is up to date.
.PHONY: out/aaos-buildroot.img
out/aaos-buildroot.img:
	$(call br_probe,$(BR_PROBE_URLS))
	@$(MAKE) --no-print-directory buildroot-config
	@mkdir -p $(BR2_DL_DIR)
	$(BR_MAKE)
	cp $(BR_OUT)/images/aaos.img $@.tmp && mv $@.tmp $@
	@ls -l $@

test-buildroot: npm-deps
	BUILDROOT_DIR=$(BUILDROOT_DIR) $(BUN) test test/buildroot
