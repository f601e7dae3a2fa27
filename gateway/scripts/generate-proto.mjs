// Generates the TypeScript code of the wire contract from proto/ with protobufjs (static module + types).
// Output: src/generated/simgate.js and src/generated/simgate.d.ts. Never edit them by hand.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const gatewayDir = resolve(here, "..");
const protoFile = resolve(gatewayDir, "../proto/simgate/v1/simgate.proto");
const outDir = join(gatewayDir, "src/generated");
const require = createRequire(import.meta.url);
const cliDir = dirname(require.resolve("protobufjs-cli/package.json"));

mkdirSync(outDir, { recursive: true });
const js = join(outDir, "simgate.js");
const dts = join(outDir, "simgate.d.ts");
execFileSync(process.execPath, [join(cliDir, "bin/pbjs"), "-t", "static-module", "-w", "es6", "--force-number",
  "--no-verify", "--no-delimited", "-o", js, protoFile], { stdio: "inherit" });
// protobufjs/minimal is CommonJS: Node's ESM loader exposes it as the default export, and NodeNext
// resolution wants the explicit file extension.
writeFileSync(js, readFileSync(js, "utf8").replace(/import \* as \$protobuf from "protobufjs\/minimal";/,
  'import $protobuf from "protobufjs/minimal.js";'));
execFileSync(process.execPath, [join(cliDir, "bin/pbts"), "-o", dts, js], { stdio: "inherit" });
// With --force-number no 64-bit Long type is used, so its CommonJS-style import is dropped (not valid in ESM).
writeFileSync(dts, readFileSync(dts, "utf8")
  .replace(/from "protobufjs"/g, 'from "protobufjs/minimal.js"')
  .replace(/^import Long = require\("long"\);\n/m, ""));
console.log(`generated ${js} and ${dts} from ${protoFile}`);
