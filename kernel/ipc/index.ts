// Messages between agents. A message goes into the recipient's bounded
// mailbox; the recipient reads it with the message_read tool. Who may send
// to whom is the sender's manifest `message_send` list of recipient names.
import { ErrorCode, KernelError } from "../errors.ts";
import { MAILBOX_LIMIT, type Agent, type ProcessTable } from "../proc/index.ts";

export function deliver(procs: ProcessTable, from: Agent, to: string, message: string): Agent {
  const target = procs.find(to) ?? procs.byName(to)[0];
  if (!target || target.state === "stopped") {
    throw new KernelError(ErrorCode.NoSuchAgent, `no running agent "${to}"`, { to });
  }
  if (!from.manifest.message_send.includes(target.name)) {
    throw new KernelError(ErrorCode.CapabilityDenied, `capability denied: ${from.name} may not message ${target.name}`, {
      tool: "message_send",
      capability: `message_send: ${target.name}`,
      reason: `"${target.name}" is not in this agent's message_send list`,
    });
  }
  if (target.mailbox.length >= MAILBOX_LIMIT) {
    throw new KernelError(ErrorCode.AgentNotRunnable, `mailbox of ${target.id} is full (${MAILBOX_LIMIT} messages)`, { to: target.id });
  }
  target.mailbox.push({ from: from.id, from_name: from.name, message, sent_at: new Date().toISOString() });
  return target;
}

