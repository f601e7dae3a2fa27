#!/usr/bin/env node
// simgate: the command-line entry point. Subcommands are registered here; only main exits the process.
import { Command } from "commander";
import { simgate } from "../generated/simgate.js";

const program = new Command();
program.name("simgate").description("simgate: simulation data gateway").version("0.1.0");
program
  .command("contract")
  .description("print the wire contract's package and message names")
  .action(() => {
    console.log(Object.keys(simgate.v1).join("\n"));
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
