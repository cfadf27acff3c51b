// growDataPartition never throws: on this host's real /sys and /dev, a device
// that is not a partition is skipped and one that does not exist is a failed
// report, each with its reason (the grow itself is proven in the e2e boots:
// test/e2e/appliance.test.ts, uefi.test.ts, console-signals.test.ts).
import { expect, test } from "bun:test";
import { tmpdir } from "node:os";
import { growDataPartition } from "../../../init/growdata.ts";
import { DATA_LABEL } from "../../../init/index.ts";

test("a whole device, not a partition: skipped, nothing done", () => {
  expect(growDataPartition({ device: "/dev/null", mountPoint: tmpdir(), label: DATA_LABEL })).toEqual({
    status: "skipped",
    reason: "/dev/null is not a partition",
    done: [],
  });
});

test("a device that is not there: failed with the reason, not thrown", () => {
  const r = growDataPartition({ device: "/dev/aaos-no-such-disk4", mountPoint: tmpdir(), label: DATA_LABEL });
  expect(r.status).toBe("failed");
  expect(r.reason).toContain("ENOENT");
  expect(r.done).toEqual([]);
});
