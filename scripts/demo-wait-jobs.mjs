// Demo helper: waits until the gateway's job driver (GET /jobs) has finished at least N runs and is idle,
// then prints each run. Exit 1 when a run failed or the deadline passed.
//   node scripts/demo-wait-jobs.mjs http://127.0.0.1:8080 2 900
const [base, wantArg = "2", deadlineArg = "900"] = process.argv.slice(2);
const want = Number(wantArg);
const deadline = Date.now() + Number(deadlineArg) * 1000;
let last = "";
for (;;) {
  let snapshot;
  try {
    snapshot = await (await fetch(`${base}/jobs`, { signal: AbortSignal.timeout(5000) })).json();
  } catch (err) {
    snapshot = undefined;
  }
  if (snapshot) {
    const line = snapshot.topics.map((t) => `${t.topic} ${t.state}${t.current ? ` (${t.current.reason}, attempt ${t.current.attempt})` : ""}`).join(", ");
    if (line !== last) console.log(`  jobs: ${line}`);
    last = line;
    const idle = snapshot.running === 0 && snapshot.topics.every((t) => t.state === "idle");
    if (snapshot.history.length >= want && idle) {
      let failed = false;
      for (const run of [...snapshot.history].reverse()) {
        const r = run.result ?? {};
        const counts = run.status === "published" ? `, ${r.read} read: ${r.trusted} trusted, ${r.untrusted} untrusted, tag ${r.tag}` : "";
        console.log(`  ${run.topic}: ${run.status} in ${(run.durationMs / 1000).toFixed(1)} s (trigger ${run.reason}, attempt ${run.attempt})${counts}${run.error ? `: ${run.error}` : ""}`);
        if (run.state !== "succeeded") failed = true;
      }
      process.exit(failed ? 1 : 0);
    }
  }
  if (Date.now() > deadline) {
    console.error(`the WAP jobs did not finish within ${deadlineArg} s`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 1000));
}
