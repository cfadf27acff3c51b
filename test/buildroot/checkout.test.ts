// Always runs (git, no network): `make buildroot-tree`, the step of
// `make buildroot-image` that gets Buildroot, against throwaway local git
// repositories standing in for the official one. The Makefile's own rule runs
// (buildroot/buildroot.mk → buildroot/checkout.sh), only the URL differs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "./defconfig.ts";

const PINNED_TAG = "2026.05.1";
const PINNED_COMMIT = "cb857ba4c87a93e5265a9e4a3f32071abf39e14a";

const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: "t",
  GIT_AUTHOR_EMAIL: "t@example.invalid",
  GIT_COMMITTER_NAME: "t",
  GIT_COMMITTER_EMAIL: "t@example.invalid",
  GIT_CONFIG_NOSYSTEM: "1",
};

function git(dir: string, ...args: string[]): string {
  const r = Bun.spawnSync(["git", "-C", dir, "-c", "init.defaultBranch=main", ...args], { env: gitEnv });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.toString().trim();
}

/** make -C REPO buildroot-tree with these variables; the Makefile's own rule */
function buildrootTree(vars: Record<string, string>): { code: number; out: string; err: string } {
  const r = Bun.spawnSync(
    [
      "make",
      "-s",
      "--no-print-directory",
      "-C",
      REPO,
      "buildroot-tree",
      ...Object.entries(vars).map(([k, v]) => `${k}=${v}`),
    ],
    // BUILDROOT_DIR of the caller (make test-buildroot with a real tree) is not this test's: each sets its own
    { env: { ...gitEnv, MAKEFLAGS: "", MAKELEVEL: "", BUILDROOT_DIR: "" } },
  );
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

describe("make buildroot-tree: the pinned Buildroot by git commit", () => {
  let dir = "";
  let upstream = "";
  let tagged = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "aaos-br-checkout-"));
    // a stand-in for the Buildroot repository: a release tag on a commit that is not the pinned one
    upstream = join(dir, "upstream");
    Bun.spawnSync(["git", "-c", "init.defaultBranch=main", "init", "-q", upstream], { env: gitEnv });
    writeFileSync(join(upstream, "Makefile"), `export BR2_VERSION := ${PINNED_TAG}\n`);
    writeFileSync(join(upstream, "Config.in"), 'mainmenu "stand-in"\n');
    git(upstream, "add", ".");
    git(upstream, "commit", "-q", "-m", "release");
    git(upstream, "tag", "-a", PINNED_TAG, "-m", PINNED_TAG);
    writeFileSync(join(upstream, "Config.in"), 'mainmenu "stand-in, after the release"\n');
    git(upstream, "commit", "-q", "-am", "after the release");
    tagged = git(upstream, "rev-parse", `${PINNED_TAG}^{commit}`);
  });
  afterAll(() => dir && rmSync(dir, { recursive: true, force: true }));

  test("buildroot.mk pins tag 2026.05.1 at cb857ba4… and clones it from the project's GitLab", () => {
    const mk = readFileSync(join(REPO, "buildroot/buildroot.mk"), "utf8");
    expect(/^BUILDROOT_VERSION := (\S+)$/m.exec(mk)?.[1]).toBe(PINNED_TAG);
    expect(/^BUILDROOT_COMMIT := (\S+)$/m.exec(mk)?.[1]).toBe(PINNED_COMMIT);
    expect(/^BUILDROOT_GIT_URL \?= (\S+)$/m.exec(mk)?.[1]).toBe("https://gitlab.com/buildroot.org/buildroot.git");
    expect(existsSync(join(REPO, "buildroot/buildroot.hash"))).toBe(false);
  });

  test("a clone whose HEAD is not the pinned commit is refused, and nothing is left behind", () => {
    const cache = join(dir, "cache-refuse");
    const r = buildrootTree({ AAOS_CACHE: cache, BUILDROOT_GIT_URL: `file://${upstream}` });
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(
      `file://${upstream} tag ${PINNED_TAG} is commit ${tagged}, buildroot/buildroot.mk pins ${PINNED_COMMIT}: refusing it`,
    );
    expect(readdirSync(join(cache, "buildroot"))).toEqual([]);
  });

  test("a clone whose HEAD is the pinned commit is accepted (the pin set to the stand-in's commit), then reused", () => {
    const cache = join(dir, "cache-accept");
    const tree = join(cache, "buildroot", `buildroot-${PINNED_TAG}`);
    const vars = { AAOS_CACHE: cache, BUILDROOT_GIT_URL: upstream, BUILDROOT_COMMIT: tagged };
    const r = buildrootTree(vars);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain(`cloning Buildroot ${PINNED_TAG} from ${upstream}`);
    // the tag's commit, not the branch's newer one
    expect(git(tree, "rev-parse", "HEAD")).toBe(tagged);
    expect(readFileSync(join(tree, "Config.in"), "utf8")).toBe('mainmenu "stand-in"\n');
    expect(readdirSync(join(cache, "buildroot"))).toEqual([`buildroot-${PINNED_TAG}`]);
    // the cached tree is checked again, not cloned again
    const again = buildrootTree(vars);
    expect(again.code).toBe(0);
    expect(again.out).toBe("");

    // a tracked file changed in the cached tree: refused
    writeFileSync(join(tree, "Config.in"), 'mainmenu "edited"\n');
    const edited = buildrootTree(vars);
    expect(edited.code).not.toBe(0);
    expect(edited.err).toContain(`${tree} has local changes to Buildroot's own files: refusing it`);
    git(tree, "checkout", "-q", "--", "Config.in");
    expect(buildrootTree(vars).code).toBe(0);

    // the cached tree moved to another commit: refused
    writeFileSync(join(tree, "Config.in"), 'mainmenu "another commit"\n');
    git(tree, "commit", "-q", "-am", "another");
    const moved = git(tree, "rev-parse", "HEAD");
    const r2 = buildrootTree(vars);
    expect(r2.code).not.toBe(0);
    expect(r2.err).toContain(`${tree} is at commit ${moved}, Buildroot ${PINNED_TAG} is pinned at ${tagged}`);
    // …and the real pin refuses this tree too
    const r3 = buildrootTree({ AAOS_CACHE: cache, BUILDROOT_GIT_URL: upstream });
    expect(r3.code).not.toBe(0);
    expect(r3.err).toContain(`is pinned at ${PINNED_COMMIT}`);
  });

  test("a cached tree that is not a git checkout is refused", () => {
    const cache = join(dir, "cache-plain");
    const tree = join(cache, "buildroot", `buildroot-${PINNED_TAG}`);
    Bun.spawnSync(["mkdir", "-p", tree]);
    writeFileSync(join(tree, "Makefile"), `export BR2_VERSION := ${PINNED_TAG}\n`);
    const r = buildrootTree({ AAOS_CACHE: cache, BUILDROOT_GIT_URL: upstream, BUILDROOT_COMMIT: tagged });
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(`${tree} is not a git checkout of Buildroot: refusing it`);
  });

  test("BUILDROOT_DIR: a local tree is used as the operator asked, with a note when it is not the pinned commit", () => {
    const cache = join(dir, "cache-local");
    const r = buildrootTree({ AAOS_CACHE: cache, BUILDROOT_DIR: upstream });
    expect(r.code).toBe(0);
    const head = git(upstream, "rev-parse", "HEAD");
    expect(r.err).toContain(
      `note: BUILDROOT_DIR is commit ${head}, not the pinned ${PINNED_TAG} (${PINNED_COMMIT}); using it as you asked`,
    );
    expect(existsSync(cache)).toBe(false); // nothing cloned
    // the pinned commit: no note
    const quiet = buildrootTree({ AAOS_CACHE: cache, BUILDROOT_DIR: upstream, BUILDROOT_COMMIT: head });
    expect(quiet.code).toBe(0);
    expect(quiet.err).toBe("");
    // not a Buildroot tree at all: refused
    const bad = buildrootTree({ AAOS_CACHE: cache, BUILDROOT_DIR: join(dir, "nowhere") });
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain("is not a Buildroot tree");
  });

  test("an unreachable server: one line, and nothing is cloned", () => {
    const cache = join(dir, "cache-offline");
    // a closed local port stands in for a machine without internet
    const r = buildrootTree({ AAOS_CACHE: cache, BUILDROOT_GIT_URL: "http://127.0.0.1:9/buildroot.git" });
    expect(r.code).not.toBe(0);
    // one line of ours (make adds its own "*** Error" line)
    expect(r.err.split("\n").filter((l) => l.startsWith("buildroot-image:"))).toHaveLength(1);
    expect(r.err.split("\n").filter((l) => l && !/^make(\[\d+\])?: \*\*\*/.test(l))).toHaveLength(1);
    expect(r.err).toContain("http://127.0.0.1:9/buildroot.git is not reachable (no internet?)");
  });
});
