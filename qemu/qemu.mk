# make run / run-uefi: boot the appliance (TCG, -cpu max; AAOS_ACCEL=kvm to opt in); the
# dashboard is forwarded to http://127.0.0.1:$(WEB_PORT)/.
# make test-e2e: the image under QEMU, driven over its serial line (test/e2e).
.PHONY: run run-uefi test-e2e

QEMU_RUN_ARGS ?=
# the dashboard: host 127.0.0.1:$(WEB_PORT) → the guest's web.listen port 8080 (0: none)
WEB_PORT ?= 8080

run: deps image
	$(BUN) qemu/run.ts --kernel $(OUT)/bzImage --image $(OUT)/aaos.img --web-port $(WEB_PORT) $(QEMU_RUN_ARGS)

run-uefi: deps image
	$(BUN) qemu/run.ts --uefi --image $(OUT)/aaos.img --web-port $(WEB_PORT) $(QEMU_RUN_ARGS)

test-e2e: image
	AAOS_OUT=$(abspath $(OUT)) $(BUN) test --timeout 900000 test/e2e
