// The dashboard's principals: an operator token and a read-only viewer token
// (kernel.yaml web.operator_token_file / viewer_token_file, or created on the
// data disk at first boot in <data>/state/web/, kernel-private), the sessions
// a login opens (a random id in an HttpOnly, SameSite=Strict cookie: no
// token ever travels in a URL or lives in the page), and the rate limit on
// failed logins, per client address. Every table here is bounded.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";

export type Role = "operator" | "viewer";

/** sessions open at once; a login past it closes the oldest */
export const MAX_SESSIONS = 256;
/** failed logins per client address within FAIL_WINDOW_MS before logins are refused (429) */
export const MAX_FAILURES = 5;
export const FAIL_WINDOW_MS = 60_000;
/** client addresses whose failures are remembered */
const MAX_CLIENTS = 4096;

export interface Tokens {
  operator: string;
  viewer: string;
  /** where each was read from (or created) */
  files: { operator: string; viewer: string };
}

/** the two tokens: read from the files kernel.yaml names, else from (or created in) <data>/state/web */
export function loadTokens(opts: {
  configDir: string;
  dataDir: string;
  operatorFile?: string | undefined;
  viewerFile?: string | undefined;
}): Tokens {
  const where = (f: string | undefined, role: Role) =>
    f === undefined ? join(opts.dataDir, "state", "web", `${role}.token`) : isAbsolute(f) ? f : join(opts.configDir, f);
  const files = { operator: where(opts.operatorFile, "operator"), viewer: where(opts.viewerFile, "viewer") };
  const read = (file: string, named: boolean): string => {
    if (existsSync(file)) {
      const t = readFileSync(file, "utf8").trim();
      if (t.length >= 16) return t;
      throw new Error(`${file}: a dashboard token must be at least 16 characters`);
    }
    if (named) throw new Error(`${file}: the dashboard token file kernel.yaml names does not exist`);
    // first boot: a fresh token, readable by root only
    const t = randomBytes(32).toString("base64url");
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, t + "\n", { mode: 0o600 });
    chmodSync(file, 0o600);
    return t;
  };
  const tokens = {
    operator: read(files.operator, opts.operatorFile !== undefined),
    viewer: read(files.viewer, opts.viewerFile !== undefined),
    files,
  };
  if (tokens.operator === tokens.viewer) throw new Error("the operator and viewer dashboard tokens must differ");
  return tokens;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

export interface Session {
  id: string;
  role: Role;
  expires: number;
}

export class Auth {
  private readonly sessions = new Map<string, Session>();
  private readonly failures = new Map<string, number[]>();
  private readonly operator: Buffer;
  private readonly viewer: Buffer;

  constructor(
    tokens: Tokens,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.operator = digest(tokens.operator);
    this.viewer = digest(tokens.viewer);
  }

  /** the role a token opens, compared in constant time; null: neither */
  roleOf(token: string): Role | null {
    const d = digest(token);
    if (timingSafeEqual(d, this.operator)) return "operator";
    if (timingSafeEqual(d, this.viewer)) return "viewer";
    return null;
  }

  /** ms until this client may try again (0: it may) */
  retryAfter(client: string): number {
    const now = this.now();
    const recent = (this.failures.get(client) ?? []).filter((t) => now - t < FAIL_WINDOW_MS);
    if (recent.length < MAX_FAILURES) return 0;
    return FAIL_WINDOW_MS - (now - recent[0]!);
  }

  failed(client: string): void {
    const now = this.now();
    const recent = (this.failures.get(client) ?? []).filter((t) => now - t < FAIL_WINDOW_MS);
    recent.push(now);
    this.failures.delete(client);
    this.failures.set(client, recent.slice(-MAX_FAILURES));
    while (this.failures.size > MAX_CLIENTS) this.failures.delete(this.failures.keys().next().value!);
  }

  open(role: Role, client: string): Session {
    this.failures.delete(client);
    const s: Session = { id: randomBytes(32).toString("base64url"), role, expires: this.now() + this.ttlMs };
    this.sessions.set(s.id, s);
    while (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    return s;
  }

  session(id: string | undefined): Session | null {
    if (!id) return null;
    const s = this.sessions.get(id);
    if (!s) return null;
    if (s.expires <= this.now()) {
      this.sessions.delete(id);
      return null;
    }
    return s;
  }

  close(id: string | undefined): void {
    if (id) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }
}
