// Cutting long text to a bound: the one way the kernel does it. Used for the
// tool inputs and outputs the kernel puts in audit records (kernel.ts), for
// every string the audit log stores (audit/canonical.ts), and for the tool
// results the agent loop shows the model (llm/loop.ts). Each caller keeps
// its own limit (they differ on purpose); the mechanism and the marker live
// here.
//
// The limit counts UTF-8 bytes. The text is cut on a character boundary
// (never inside a UTF-8 sequence or a surrogate pair), so the kept part is
// at most `limit` bytes, and cutMarker() follows it, saying how many
// bytes were left out: "…[1234 more bytes cut]".

const encoder = new TextEncoder();

/** the marker that ends a cut text; `bytes` were left out */
export function cutMarker(bytes: number): string {
  return `…[${bytes} more bytes cut]`;
}

/** `text` if it is at most `limit` UTF-8 bytes, else its longest prefix that is, and the marker */
export function cut(text: string, limit: number): string {
  // a UTF-16 unit is at most 3 UTF-8 bytes: short text needs no counting
  if (text.length * 3 <= limit) return text;
  const total = Buffer.byteLength(text, "utf8");
  if (total <= limit) return text;
  const { read, written } = encoder.encodeInto(text, new Uint8Array(Math.max(0, limit)));
  return text.slice(0, read) + cutMarker(total - written);
}
