// kernel/audit: the audit trail. Every spawn, grant, denial, tool call and
// result, approval request and decision, and stop becomes one record here.
//
// STORAGE. Segment files directly under the log's directory (the kernel uses
// <data>/audit): `00000000000000000001.jsonl`, named by the seq of their
// first record (20 digits, so names sort as numbers), one record per line,
// `segmentRecords` records each (default 10,000). query(since_seq) picks the
// segment by file name; nothing is indexed in memory. In memory the log
// holds only the durable head (seq, hash), the open segment's fd/size/count,
// the queue of appends in flight and the registered secrets: O(1) in the
// length of the log. Changing segmentRecords between runs is fine (names
// carry the first seq; the count comes from head.seq - first + 1).
//
// RECORD AND HASH. {seq, ts, kind, agent_id, ...fields, prev, hash}. seq
// starts at 1; genesis prev is 64 zeros. hash = sha256 (hex) of the
// canonical JSON of the record without `hash` (keys sorted by UTF-16 code
// unit at every level, no whitespace, JSON.stringify's strings and numbers;
// see canonical.ts). A line on disk is exactly that canonical JSON with
// `,"hash":"…"` added as the last member, so `JSON.parse(line)`, delete
// hash, canonicalise, sha256 reproduces it (any language can check a log).
// seq, ts, prev and hash are the log's: callers' fields of those names are
// dropped. agent_id defaults to null.
//
// VALUES. Sanitised when append() is called (a snapshot: later mutation of
// the caller's object does not change the record): undefined, functions and
// symbols dropped (null inside arrays), non-finite numbers → null, bigint →
// decimal string, Date → ISO string, Error → {message, name?, code?},
// Map → object, Set → array, bytes → {type:"bytes", length, base64},
// toJSON() honoured, a cycle → "[circular]", nesting past 64 → "[too deep]",
// a getter that throws → "[unserialisable: …]", strings over
// maxStringLength (64 Ki) cut with a "…[truncated N chars]" suffix.
//
// REDACTION (before hashing, so a secret is never in a record's bytes):
// the value under any key that names a credential (api_key, apiKey,
// x-api-key, authorization, password, secret, cookie, private_key, …_token
// variants; case-insensitive, separators ignored, at any depth) becomes
// "[redacted]"; any string containing a registered secret (registerSecret,
// ≥ 4 chars; credential-looking environment variables are registered at
// open) becomes "[redacted]", and so does any string containing an
// Anthropic-style key (sk-ant-…). Object keys containing a registered secret
// have it replaced.
//
// DURABILITY: group commit. append() snapshots the event and queues it in
// call order; one flusher takes everything queued (up to 4096 records),
// assigns seq/prev/hash in that order, writes it with one positional write
// per segment touched and one fdatasync, then resolves every caller. Appends
// arriving while a sync is in flight form the next group. A new segment
// file's directory entry is fsynced before records in it are acknowledged.
// So an acknowledged record is on disk: PID 1 never loses one. The number is
// fixed when the group is sealed, not at the call, so a failed write leaves
// no gap: the failed records are rejected (KernelError -32603), whatever of
// them reached the file is truncated away before the next write, and the
// chain continues from the durable head. durability "none" skips the
// fdatasync (tests, benchmarks). append() never throws synchronously; a
// non-object event or an empty kind rejects with -32602.
//
// CRASH RECOVERY (open). The newest segment is read backwards from its end
// to its last line that is a complete, self-consistent record (parses, its
// hash matches its content). Bytes after it — a torn partial line, or lines
// a crash left half-written (e.g. zero-filled pages) — were never
// acknowledged: they are copied to <dir>/quarantine/ (evidence is kept, not
// destroyed), truncated away, and an `audit.recovered` record {segment,
// bytes_dropped, invalid_lines, reason, quarantine} is appended before open
// resolves. A segment with no valid record at all is removed the same way
// and recovery looks at the one before. seq and the chain continue from the
// recovered head. A corrupted record followed by valid ones is not touched:
// verify() reports it.
//
// QUERY streams segments from the one holding since_seq (inclusive),
// filters agent_id (exact) and kind (exact, "prefix.*", or "*"), returns
// at most limit (default 100, max 1000) records oldest first, and next_seq:
// the since_seq to pass to continue (last returned + 1, or head + 1 when the
// log was read to its end). Only durable records are returned.
//
// VERIFY walks every segment from genesis: segment names continuous, each
// record valid JSON, seq = previous + 1, prev = previous hash, hash =
// sha256(canonical(record without hash)) (checked first on the line's own
// bytes, which are canonical as written; a line re-serialised without a
// change still passes through the canonical re-hash), and the last record = the head the
// kernel acknowledged (catches truncation while running). It reports the
// first broken record {seq, reason}. Limits: a chain without an external
// anchor cannot show that records were cut from the end of the log while
// the kernel was down, nor a log rewritten wholesale with fresh hashes;
// ship head() off the machine if that matters.
export { AuditLog, DEFAULT_SEGMENT_RECORDS, type AuditOpenOptions, type AuditQuery, type AuditRecord, type AuditVerifyResult } from "./log.ts";
export { GENESIS, REDACTED, canonicalJSON, isSensitiveKey, recordHash, sanitize } from "./canonical.ts";
export { listSegments, parseRecord, segmentName, type AuditIO } from "./segments.ts";
