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
// length of the log. Beside the segments: HEAD (the anchor, below) and
// quarantine/ (bytes recovery cut, kept as evidence). Changing segmentRecords between runs is fine (names
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
// maxStringLength UTF-8 bytes (64 Ki) cut on a character boundary with a
// "…[N more bytes cut]" suffix (kernel/cut.ts, the kernel's one way to cut).
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
// HEAD: the chain's anchor outside the segments. <dir>/HEAD is one line of
// exactly 121 bytes, `aaos-audit-head 1 <seq> <hash> <check>\n`: seq as 20
// decimal digits, hash as 64 hex, check = the first 16 hex of sha256 of
// everything before " <check>" (a torn or damaged HEAD reads as unreadable,
// never as another head). It names a record the log had made durable: it is
// rewritten in place (one positional write, no sync) after each group's
// fdatasync, after the callers are answered; fsynced at open, at segment
// roll-over and at close(), and right after open recorded a report. So it
// can lag the log after a power cut (by what was written since its last
// fsync: at most one segment, in practice the kernel's writeback interval)
// but never lead it; a killed process loses nothing (the page cache keeps
// it). A fresh log anchors genesis (seq 0) at open, before its first
// record. Writing HEAD is best effort: a failure is retried at the next
// commit and never fails an append. With durability "none" nothing is
// synced, so after a power cut HEAD may lead the log and open reports
// tampering that is really lost data: that mode is for tests.
//
// CRASH RECOVERY (open). The newest segment is read backwards from its end
// to its last line that is a complete, self-consistent record (parses, its
// hash matches its content). Bytes after it (a torn partial line, lines a
// crash left half-written such as zero-filled pages, or records edited
// after the fact) are copied to <dir>/quarantine/ (evidence is kept, not
// destroyed), truncated away, and an `audit.recovered` record {segment,
// offset, bytes_dropped, invalid_lines, reason, quarantine, seqs?:
// [first,last] of the dropped lines that still parse as records,
// acknowledged} is appended before open resolves. A segment with no valid
// record at all is removed the same way and recovery looks at the one
// before. A corrupted record followed by valid ones is not touched:
// verify() reports it.
//
// TAMPERING (open). The recovered head is then compared with HEAD:
//  - head.seq >= anchor.seq and the record at anchor.seq has the anchor's
//    hash: fine (HEAD lagged; it is brought up to date).
//  - head.seq < anchor.seq: acknowledged records were cut, edited (and so
//    quarantined) or deleted (a whole segment) while the kernel was down.
//    An `audit.tampered` record {anchor: {seq, hash}, found: {seq, hash},
//    missing: [found.seq + 1, anchor.seq], reason} is appended, and the
//    dropped ranges' audit.recovered say acknowledged: true. NUMBERING: the
//    tampered record gets seq anchor.seq + 1 and opens a segment of its own
//    (named by that seq); its prev is the hash of the record really there
//    (found), so the hash chain is continuous while the seqs of the lost
//    records are never handed out again: a seq someone noted (or shipped
//    off the machine with head()) names one record for good, and a deleted
//    segment's file name never comes back. verify() accepts exactly this
//    jump (segment first = anchor.seq + 1, record kind audit.tampered,
//    found = the previous record) and no other.
//  - the record at anchor.seq has another hash, or is missing: the log was
//    rewritten from there on; `audit.tampered` {anchor, found, reason} is
//    appended (no jump). Not repeated when the newest segment already holds
//    an audit.tampered for this very anchor (a crash before HEAD was
//    rewritten).
//  - HEAD missing or unreadable beside a log with records: `audit.unanchored`
//    {found, reason, head_file?} is appended and HEAD rewritten. This is not
//    proof of tampering (a log from a kernel before anchors, or a damaged
//    HEAD after a power cut), so it does not make verify fail; it is listed.
// While a report is not yet in the chain, HEAD is not rewritten: the anchor
// is the evidence until then. Kinds audit.* are the log's own: append()
// refuses them (-32602) so a caller cannot forge or fake a report.
//
// KINDS: kinds.ts lists every kind the kernel writes (AuditKind); the table
// in docs/api.md says when each is written and what it holds.
//
// DEGRADED (a full, read-only or failing data disk). open() reads before it
// writes: when a write it needs (the quarantine copy, a truncation, the
// reports, the directory) fails, it still resolves, with the recovery and
// its records kept pending in memory and degraded() = {reason, since}.
// query() and verify() answer from what is durable (pending reports are
// listed with record: null). append() first retries what is pending (in
// order: repair of a failed write, quarantine + truncation, the reports,
// then the caller's records, all in one group); while the disk refuses, it
// rejects with KernelError -32603 "audit log cannot be written: ENOSPC: no
// space left on device; free space on the data disk" (EDQUOT, EROFS, EIO
// have their own advice; data {errno, cause}). The same holds when a write
// fails while the log runs. The first append that succeeds clears
// degraded(): service resumes by itself once space is freed. A failed
// write never leaves a gap or a half record: it is cut before the next
// write, or at close().
//
// QUERY streams segments from the one holding since_seq (inclusive),
// filters agent_id (exact) and kind (exact, "prefix.*", or "*"), returns
// at most limit (default 100, max 1000) records oldest first, and next_seq:
// the since_seq to pass to continue (last returned + 1, or head + 1 when the
// log was read to its end). Only durable records are returned; a seq in a
// reported gap simply has no record.
//
// VERIFY walks every segment from genesis: segment names continuous (but
// for a reported gap), each record valid JSON, seq = previous + 1, prev =
// previous hash, hash = sha256(canonical(record without hash)) (checked
// first on the line's own bytes, which are canonical as written; a line
// re-serialised without a change still passes through the canonical
// re-hash), and the last record = the head the kernel acknowledged
// (catches truncation while running). Result: {ok, events, head, broken?,
// anchor, quarantined, tampered, unanchored}. broken is the first record
// that does not check out, else the first tampering: {seq: the first lost
// (or rewritten) seq, reason: "tampered: … (audit.tampered at seq N)"}.
// anchor is what HEAD holds now (null: missing or unreadable).
// quarantined lists every audit.recovered range: {segment, offset, bytes,
// file, seqs?, acknowledged, reason, record}; tampered every audit.tampered
// {record, anchor, found, missing?, reason}; unanchored every
// audit.unanchored {record, found, reason}; record is the reporting
// record's seq (null: pending, the log is degraded). ok is false when the
// chain is broken, when any tampered entry exists, or when a quarantined
// range is acknowledged; a torn tail past the anchored head (a crash) is
// listed and keeps ok true. The reports are records in the chain, so a
// tampering stays reported for good: no later restart or record clears it.
// Limits: HEAD sits beside the log and is not secret, so whoever can edit
// the segments can rewrite HEAD too (or remove it: unanchored, listed, ok);
// a log rewritten wholesale with fresh hashes and a matching HEAD passes.
// Ship head() off the machine if that matters.
export {
  AuditLog,
  DEFAULT_SEGMENT_RECORDS,
  type AuditAppendEvent,
  type AuditHeadRef,
  type AuditOpenOptions,
  type AuditQuarantined,
  type AuditQuery,
  type AuditRecord,
  type AuditTampered,
  type AuditUnanchored,
  type AuditVerifyResult,
} from "./log.ts";
export { AUDIT_KINDS, type AuditEventKind, type AuditKind, type AuditLogKind } from "./kinds.ts";
export { GENESIS, REDACTED, canonicalJSON, isSensitiveKey, recordHash, sanitize } from "./canonical.ts";
export { listSegments, parseRecord, segmentName, type AuditIO } from "./segments.ts";
export { ANCHOR_BYTES, ANCHOR_FILE, formatAnchor, parseAnchor } from "./anchor.ts";
