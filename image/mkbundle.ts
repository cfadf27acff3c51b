// Write an upgrade bundle (kernel/sys/bundle.ts): the kernel and the system
// slot's erofs, their sizes and sha256 in a manifest, signed with an ed25519
// key when one is given. `make upgrade-bundle` runs it.
//
//   bun image/mkbundle.ts --bzimage out/bzImage --sys out/sys.erofs --version V [--key ed25519.pem] --out F
//   bun image/mkbundle.ts --keygen DIR     writes DIR/upgrade.key (private, PEM) and DIR/upgrade.pub
import { createHash, generateKeyPairSync } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BUNDLE_FORMAT, encodeHeader, type BundleManifest } from "../kernel/sys/bundle.ts";

const { values: v } = parseArgs({
  options: {
    bzimage: { type: "string" },
    sys: { type: "string" },
    version: { type: "string" },
    key: { type: "string" },
    out: { type: "string" },
    keygen: { type: "string" },
  },
  strict: true,
});

if (v.keygen) {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  mkdirSync(v.keygen, { recursive: true });
  writeFileSync(join(v.keygen, "upgrade.key"), privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  writeFileSync(join(v.keygen, "upgrade.pub"), publicKey.export({ type: "spki", format: "pem" }));
  console.log(
    `${join(v.keygen, "upgrade.key")} (keep it off the appliance), ${join(v.keygen, "upgrade.pub")} (AAOS-CFG)`,
  );
  process.exit(0);
}
for (const k of ["bzimage", "sys", "version", "out"] as const)
  if (!v[k]) {
    console.error(`mkbundle: --${k} missing`);
    process.exit(2);
  }

const parts = [
  { name: "bzImage" as const, path: v.bzimage! },
  { name: "sys.erofs" as const, path: v.sys! },
];
const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
const manifest: BundleManifest = {
  format: BUNDLE_FORMAT,
  version: v.version!,
  created_at: new Date().toISOString(),
  files: parts.map((p) => ({ name: p.name, size: statSync(p.path).size, sha256: sha(p.path) })),
};
const header = encodeHeader(manifest, v.key ? readFileSync(v.key, "utf8") : undefined);
const tmp = `${v.out}.tmp`;
const fd = openSync(tmp, "w");
try {
  writeSync(fd, header);
  for (const p of parts) writeSync(fd, readFileSync(p.path));
} finally {
  closeSync(fd);
}
renameSync(tmp, v.out!);
const total = statSync(v.out!).size;
const digest = sha(v.out!);
// beside it, for system.upgrade {url, sha256} and `aaosctl upgrade`
writeFileSync(`${v.out}.sha256`, `${digest}  ${v.out!.split("/").pop()}\n`);
console.log(
  `${v.out}: aaOS ${manifest.version}, ${total} bytes, ${v.key ? "signed (ed25519)" : "unsigned"}, sha256 ${digest}`,
);
