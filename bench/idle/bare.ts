// bench/memory.ts's baseline: a compiled Bun program that only stays alive.
console.log("ready");
setInterval(() => {}, 1 << 30);
