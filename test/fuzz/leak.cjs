// A deliberate leak, only to show that `npm run fuzz` fails on one (FUZZ_LEAK=1 preloads this file into
// the gateway): it keeps a copy of the first 4 KiB of everything the gateway hashes (image bytes, event
// fingerprints), a few KiB per accepted event. Never used otherwise.
"use strict";
const crypto = require("node:crypto");
const kept = [];
const update = crypto.Hash.prototype.update;
crypto.Hash.prototype.update = function (data, encoding) {
  kept.push(typeof data === "string" ? data.slice(0, 4096) + "" : Buffer.from(data.subarray(0, 4096)));
  return update.call(this, data, encoding);
};
globalThis.simgateFuzzLeak = kept;
