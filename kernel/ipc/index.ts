// Messages between agents. A message goes into the recipient's bounded
// mailbox; the recipient reads it with the message_read tool. Who may send
// to whom is the sender's manifest `message_send` list of recipient names.
import { ErrorCode, KernelError } from "../errors.ts";
import { MAILBOX_LIMIT, type Agent, type ProcessTable } from "../proc/index.ts";

/** messages being recorded for each recipient: they hold a mailbox slot until delivered */
const incoming = new WeakMap<Agent, number>();

/**
 * Check a message and hold a slot for it in the recipient's mailbox
 * (synchronous, so concurrent sends cannot overfill it). The caller records
 * the send durably, then calls deliver() or, when the record failed,
 * release(): the message is visible to the recipient only once recorded.
 */
export function route(
  procs: ProcessTable,
  from: Agent,
  to: string,
): { target: Agent; deliver(message: string): void; release(): void } {
  const target = procs.find(to) ?? procs.byName(to)[0];
  if (!target || target.state === "stopped") {
    throw new KernelError(ErrorCode.NoSuchAgent, `no running agent "${to}"`, { to });
  }
  if (!from.manifest.message_send.includes(target.name)) {
    throw new KernelError(
      ErrorCode.CapabilityDenied,
      `capability denied: ${from.name} may not message ${target.name}`,
      {
        tool: "message_send",
        capability: `message_send: ${target.name}`,
        reason: `"${target.name}" is not in this agent's message_send list`,
      },
    );
  }
  const held = incoming.get(target) ?? 0;
  if (target.mailbox.length + held >= MAILBOX_LIMIT) {
    throw new KernelError(ErrorCode.AgentNotRunnable, `mailbox of ${target.id} is full (${MAILBOX_LIMIT} messages)`, {
      to: target.id,
    });
  }
  incoming.set(target, held + 1);
  let done = false;
  const release = () => {
    if (done) return;
    done = true;
    const n = (incoming.get(target) ?? 1) - 1;
    if (n > 0) incoming.set(target, n);
    else incoming.delete(target);
  };
  return {
    target,
    release,
    deliver(message) {
      if (done) return;
      release();
      target.mailbox.push({ from: from.id, from_name: from.name, message, sent_at: new Date().toISOString() });
    },
  };
}

// ---- typed calls ---------------------------------------------------------

/**
 * Deadlock refusal: an agent takes its inbox one item at a time, so a call
 * from `caller` to `callee` waits for everything `callee` is waiting on. If
 * that chain of waiting agents (each agent's `waitingOn`) comes back to the
 * caller, the call can never be answered: it is refused, the cycle named.
 */
export function waitCycle(procs: ProcessTable, callerId: string, calleeId: string): string[] | null {
  const path = [callerId, calleeId];
  let at: string | null = calleeId;
  for (let hops = 0; at !== null && hops < 10_000; hops++) {
    if (at === callerId) return path;
    at = procs.find(at)?.waitingOn ?? null;
    if (at !== null) path.push(at);
  }
  return null;
}

export function deadlockRefused(procs: ProcessTable, cycle: string[]): KernelError {
  const names = cycle.map((id) => procs.find(id)?.name ?? id);
  return new KernelError(ErrorCode.AgentNotRunnable, `deadlock refused: ${names.join(" → ")}`, {
    cycle: names,
    agent_ids: cycle,
  });
}
