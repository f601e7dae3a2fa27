#!/usr/bin/env node
// The `simgate` command (package.json "bin"). It runs the built CLI in dist/; being a committed file, it
// exists when `npm ci` links the command, before anything is built (a bin pointing into dist/ was not
// linked in a fresh clone, so `npx simgate` failed).
import { existsSync } from "node:fs";

const main = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(main)) {
  console.error("simgate: the gateway is not built yet: run `npm run build -w gateway` (or `bash scripts/setup`)");
  process.exit(1);
}
await import(main.href);
