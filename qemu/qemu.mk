# make run / run-uefi: boot the appliance (TCG, -cpu max; AAOS_ACCEL=kvm to opt in).
# make test-e2e: the image under QEMU, driven over its serial line (test/e2e).
.PHONY: run run-uefi test-e2e

QEMU_RUN_ARGS ?=

run: deps image
	$(BUN) qemu/run.ts --kernel $(OUT)/bzImage --image $(OUT)/aaos.img $(QEMU_RUN_ARGS)

run-uefi: deps image
	$(BUN) qemu/run.ts --uefi --image $(OUT)/aaos.img $(QEMU_RUN_ARGS)

test-e2e: image
	AAOS_OUT=$(abspath $(OUT)) $(BUN) test --timeout 900000 test/e2e
