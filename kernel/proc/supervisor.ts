// Supervision: each agent's inbox is taken one item at a time by a worker
// (pump), and a run that fails is handled by the manifest's restart policy.
//
//   never       an asynchronous item (agent.send, a typed call, a
//               notification) that fails puts the agent in `failed` with the
//               reason, until agent.restart; a synchronous agent.run's caller
//               gets the error itself and the agent stays ready
//   on-failure  the failed item is retried, resumed from its record (a tool
//               that completed is never run again), after an exponential
//               backoff (supervision.backoff_base doubling up to
//               backoff_max); crash_loop_failures failures within
//               crash_loop_window put the agent in `failed`
//   always      on-failure, and an ephemeral agent is brought back (ready,
//               same id) after each run instead of being stopped
//
// Every restart is an `agent.restart` audit record, every fall into failed an
// `agent.failed` record. An explicit stop is never restarted.
import type { Agent, InboxItem } from "./index.ts";
import type { InboxOutcome } from "./store.ts";

export interface SupervisionConfig {
  backoffBaseMs: number;
  backoffMaxMs: number;
  crashLoopFailures: number;
  crashLoopWindowMs: number;
}

/** what a run of one item ended with: an outcome, or a failure (the run threw) */
export type ItemRun = { ok: true; outcome: InboxOutcome } | { ok: false; reason: string; outcome: InboxOutcome };

export interface SupervisorHost {
  /** runs the item to its end; never throws */
  runItem(agent: Agent, item: InboxItem): Promise<ItemRun>;
  /** the item's outcome recorded (and told to its watchers); removes it from the inbox */
  finish(agent: Agent, item: InboxItem, state: "done" | "failed" | "cancelled", outcome: InboxOutcome): Promise<void>;
  /** the agent's state changed to failed or back to ready: kept durable for a persistent agent */
  persistState(agent: Agent): void;
  audit(e: { kind: "agent.restart" | "agent.failed"; agent_id: string; [k: string]: unknown }): Promise<unknown>;
  /** an ephemeral agent whose run ended (restart: never / on-failure) */
  stopAgent(agentId: string): Promise<unknown>;
  log: { error(o: object, msg: string): void };
  now(): number;
}

export class Supervisor {
  constructor(
    private readonly host: SupervisorHost,
    private readonly cfg: SupervisionConfig,
  ) {}

  /** the backoff before restart number n (1-based): base·2^(n-1), capped */
  backoffMs(n: number): number {
    return Math.min(this.cfg.backoffMaxMs, this.cfg.backoffBaseMs * 2 ** Math.max(0, n - 1));
  }

  /** start the agent's worker unless one runs; it takes the inbox until it is empty, the agent failed or stopped */
  pump(agent: Agent): void {
    if (agent.pumping) return;
    agent.pumping = true;
    void this.work(agent)
      .catch((err) => this.host.log.error({ err, agent_id: agent.id }, "the agent's worker failed"))
      .finally(() => {
        agent.pumping = false;
        // something arrived while the worker was finishing
        if (agent.state === "ready" && agent.inbox.some((i) => i.state === "queued")) this.pump(agent);
      });
  }

  private async work(agent: Agent): Promise<void> {
    while (agent.state === "ready") {
      const item = agent.inbox.find((i) => i.state === "queued" || i.state === "running");
      if (!item) return;
      if (item.body.kind === "request" && item.body.deadline <= this.host.now()) {
        await this.host.finish(agent, item, "cancelled", {
          error: { code: -32009, message: "the call timed out before the agent took it" },
        });
        continue;
      }
      agent.current = item;
      agent.state = "running";
      item.state = "running";
      let run: ItemRun;
      try {
        run = await this.host.runItem(agent, item);
      } finally {
        agent.current = null;
        if (agent.state === "running") agent.state = "ready";
      }
      if ((agent.state as string) === "stopped") {
        // the stop cancelled the rest of the inbox; this run ended with it
        // a request cut short by the stop was not answered: cancelled, not done
        const cut = item.body.kind === "request" && run.ok && run.outcome.result === undefined;
        await this.host.finish(
          agent,
          item,
          cut ? "cancelled" : run.ok ? "done" : "failed",
          cut
            ? {
                ...run.outcome,
                error: { code: -32008, message: `agent ${agent.id} (${agent.name}) was stopped before it answered` },
              }
            : run.outcome,
        );
        return;
      }
      if (item.abort.signal.aborted) {
        // cancelled by its caller (timeout, the caller stopped): finish() was told by whoever cancelled
        if (item.state === "running") await this.host.finish(agent, item, "cancelled", run.outcome);
        continue;
      }
      if (run.ok) {
        if (agent.manifest.lifecycle === "ephemeral" && agent.manifest.restart !== "always") {
          // stopped before its caller hears the end, as before: agent.run's answer finds it stopped
          await this.host
            .stopAgent(agent.id)
            .catch((err) => this.host.log.error({ err, agent_id: agent.id }, "could not stop an ephemeral agent"));
          await this.host.finish(agent, item, "done", run.outcome);
          return;
        }
        await this.host.finish(agent, item, "done", run.outcome);
        if (agent.manifest.lifecycle === "ephemeral") {
          if (agent.manifest.restart === "always") {
            agent.restarts++;
            await this.host.audit({
              kind: "agent.restart",
              agent_id: agent.id,
              restarts: agent.restarts,
              reason: "exited",
            });
            continue;
          }
          await this.host.stopAgent(agent.id);
          return;
        }
        continue;
      }
      // the run failed
      const policy = agent.manifest.restart;
      if (policy === "never") {
        if (agent.manifest.lifecycle === "ephemeral") {
          // its one run ended, failed: stopped, as after a run that succeeded
          await this.host
            .stopAgent(agent.id)
            .catch((err) => this.host.log.error({ err, agent_id: agent.id }, "could not stop an ephemeral agent"));
          await this.host.finish(agent, item, "failed", run.outcome);
          return;
        }
        await this.host.finish(agent, item, "failed", run.outcome);
        if (item.sync) continue; // agent.run: its caller has the error
        await this.fail(agent, run.reason);
        return;
      }
      const now = this.host.now();
      agent.failures = agent.failures.filter((t) => t > now - this.cfg.crashLoopWindowMs);
      agent.failures.push(now);
      if (agent.failures.length >= this.cfg.crashLoopFailures) {
        await this.host.finish(agent, item, "failed", run.outcome);
        await this.fail(
          agent,
          `crash loop: ${agent.failures.length} failures within ${Math.round(this.cfg.crashLoopWindowMs / 1000)}s; last: ${run.reason}`,
        );
        return;
      }
      agent.restarts++;
      const delay = this.backoffMs(agent.failures.length);
      await this.host.audit({
        kind: "agent.restart",
        agent_id: agent.id,
        restarts: agent.restarts,
        failures_in_window: agent.failures.length,
        delay_ms: delay,
        reason: run.reason,
        message_id: item.id,
      });
      agent.state = "restarting";
      item.state = "queued";
      await sleep(delay, agent.abort.signal);
      if ((agent.state as string) !== "restarting") return; // stopped meanwhile
      agent.state = "ready";
    }
  }

  private async fail(agent: Agent, reason: string): Promise<void> {
    agent.state = "failed";
    agent.failure = { reason, at: new Date(this.host.now()).toISOString() };
    try {
      this.host.persistState(agent);
    } catch (err) {
      this.host.log.error({ err, agent_id: agent.id }, "could not record the failed state");
    }
    await this.host.audit({ kind: "agent.failed", agent_id: agent.id, reason, restarts: agent.restarts });
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
