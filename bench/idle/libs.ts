// bench/memory.ts's second baseline: a compiled Bun program with the kernel's
// four libraries loaded (each module evaluated, nothing built with it).
import Anthropic from "@anthropic-ai/sdk";
import pino from "pino";
import * as yaml from "yaml";
import { z } from "zod";

(globalThis as { keep?: unknown }).keep = [Anthropic, pino, yaml, z];
console.log("ready");
setInterval(() => {}, 1 << 30);
