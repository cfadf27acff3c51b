// The agent page's Rewind button in a real browser: a dry run's plan, Rewind
// now (the files are back on disk), Undo this rewind (the agent's files again).
import { expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { launchBrowser, startDashboardKernel } from "./harness.ts";

// the page's own globals, in functions that run in the browser (the project's tsconfig has no DOM lib)
declare const document: any;

test("an operator rewinds an agent from its page, then undoes the rewind", async () => {
  const k = await startDashboardKernel();
  const browser = await launchBrowser();
  const errs: string[] = [];
  mkdirSync("out/screenshots", { recursive: true });
  try {
    const root = join(k.dataDir, "files", "w");
    mkdirSync(root, { recursive: true });
    const { agent_id } = await k.client.call("agent.spawn", {
      manifest: `name: w\nmodel: m\ncapabilities:\n  - "file_write: ${root}/*"\n`,
    });
    writeFileSync(join(root, "a.md"), "orig");
    await k.client.call("tool.invoke", {
      agent_id,
      tool: "file_write",
      input: { path: join(root, "a.md"), content: "new a" },
    });
    await k.client.call("tool.invoke", {
      agent_id,
      tool: "file_write",
      input: { path: join(root, "b.md"), content: "new b" },
    });
    const p = await (await browser.newContext({ viewport: { width: 1200, height: 900 } })).newPage();
    p.on("pageerror", (e) => errs.push(e.message));
    await p.goto(k.origin + "/");
    await p.getByTestId("login-token").fill(k.tokens.operator);
    await p.getByTestId("login-submit").click();
    await p.goto(k.origin + "/#/agent/" + agent_id);
    await p.getByTestId("agent-rewind").click();
    await p.waitForFunction(() =>
      /Would restore 2/.test(document.querySelector('[data-testid="rewind-plan"]')?.textContent ?? ""),
    );

    await p.screenshot({ path: "out/screenshots/rewind-plan.png" });
    expect(readFileSync(join(root, "a.md"), "utf8")).toBe("new a");
    await p.getByTestId("rewind-confirm").click();
    await p.waitForFunction(() =>
      /Restored 2/.test(document.querySelector('[data-testid="rewind-result"]')?.textContent ?? ""),
    );

    await p.screenshot({ path: "out/screenshots/rewind-result.png" });
    expect(readFileSync(join(root, "a.md"), "utf8")).toBe("orig");
    expect(existsSync(join(root, "b.md"))).toBe(false);
    await p.getByTestId("rewind-undo").click();
    await p.waitForFunction(
      () =>
        /Restored 2/.test(document.querySelector('[data-testid="rewind-result"]')?.textContent ?? "") &&
        !document.querySelector('[data-testid="rewind-undo"]')?.disabled,
    );
    expect(readFileSync(join(root, "a.md"), "utf8")).toBe("new a");
    expect(readFileSync(join(root, "b.md"), "utf8")).toBe("new b");
    await p.getByTestId("rewind-close").click();
    await p.waitForFunction(() => !document.querySelector('[data-testid="rewind-dialog"]')?.open);
    expect(errs).toEqual([]);
  } finally {
    await browser.close();
    await k.stop();
  }
}, 60_000);
