#!/usr/bin/env node
// simgate: the command-line entry point. Subcommands are registered here, each from its own module;
// only main exits the process.
import { Command } from "commander";
import { simgate } from "../generated/simgate.js";
import { jobsPluginFactory } from "../jobs/jobs-plugin.js";
import { registerGatewayCommand } from "./gateway-command.js";
import { registerReplayCommand } from "./replay-command.js";
import { registerSimulateCommand } from "./simulate-command.js";

const program = new Command();
program.name("simgate").description("simgate: simulation data gateway").version("0.1.0");
program
  .command("contract")
  .description("print the wire contract's package and message names")
  .action(() => {
    console.log(Object.keys(simgate.v1).join("\n"));
  });
registerGatewayCommand(program, [jobsPluginFactory]);
registerSimulateCommand(program);
registerReplayCommand(program);

program
  .parseAsync(process.argv)
  .then(() => process.exit(typeof process.exitCode === "number" ? process.exitCode : 0))
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
