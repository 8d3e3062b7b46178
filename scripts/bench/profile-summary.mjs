#!/usr/bin/env node
// Where a V8 CPU profile's time went, as text: the share of the sampled wall time (and ms) by function and
// by source file, self time only. For profiles from `--cpu-prof` (scripts/bench/broker.sh --cpu-prof DIR,
// or a produce-cost.mjs variant with `--cpu-prof` among its Node flags). Native calls show as
// `writeBuffers`, `fdatasync` and the like: time the main thread spent inside them, on a CPU or not.
//
//   node scripts/bench/profile-summary.mjs FILE.cpuprofile... [--top 30]   (each file summarised on its own)
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: "string", default: "30" } },
});
if (positionals.length === 0) {
  console.error("usage: node scripts/bench/profile-summary.mjs FILE.cpuprofile... [--top 30]");
  process.exit(2);
}
const top = Number(values.top);
for (const path of positionals) summarise(path);

function summarise(path) {
  const profile = JSON.parse(readFileSync(path, "utf8"));
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map();
  let totalMicros = 0;
  profile.samples.forEach((id, index) => {
    const micros = profile.timeDeltas[index] ?? 0;
    totalMicros += micros;
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + micros);
  });
  const byFunction = new Map();
  const byFile = new Map();
  for (const [id, micros] of selfMicros) {
    const frame = nodes.get(id).callFrame;
    const file = (frame.url || "(native)").replace(/^.*\/packages\//, "").replace(/^.*\/node_modules\//, "");
    const name = `${frame.functionName || "(anonymous)"} ${file}${frame.url ? `:${frame.lineNumber + 1}` : ""}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
    byFile.set(file, (byFile.get(file) ?? 0) + micros);
  }
  const show = (title, totals) => {
    console.log(`\n${title}`);
    for (const [name, micros] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      const share = ((100 * micros) / totalMicros).toFixed(1).padStart(5);
      console.log(`${share}%  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${name}`);
    }
  };
  console.log(`${path}: ${(totalMicros / 1000).toFixed(0)} ms sampled`);
  show("self time by function", byFunction);
  show("self time by file", byFile);
}
