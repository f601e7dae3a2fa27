// `simgate gateway`: runs the gateway until SIGTERM/SIGINT, then drains and returns (main exits).
import type { Command } from "commander";
import { unknownEnvNames } from "../config/env.js";
import { loadConfig } from "../config/load-config.js";
import type { GatewayConfig } from "../config/schema.js";
import { startGateway } from "../service/gateway.js";
import type { GatewayPlugin } from "../plugins/plugin-api.js";
import { createLogger, type Logger } from "../telemetry/logger.js";
import { logProcessWarnings } from "../telemetry/process-warnings.js";

/** Plugins that other parts of the product register (e.g. the job driver), built with the resolved
 *  configuration and the logger. */
export type PluginFactory = (context: { config: GatewayConfig; logger: Logger }) => GatewayPlugin | Promise<GatewayPlugin>;

/** Exit code when SIGTERM's drain timed out with events still in flight. */
export const EXIT_DRAIN_TIMEOUT = 3;

export function registerGatewayCommand(program: Command, pluginFactories: readonly PluginFactory[] = []): void {
  program
    .command("gateway")
    .description("receive simulation events over gRPC and WebSocket; images to S3, records to Kafka")
    .option("-c, --config <file>", "JSON configuration file (also SIMGATE_CONFIG); environment variables override it")
    .action(async (opts: { config?: string }) => {
      const config = loadConfig({ configFile: opts.config });
      const logger = createLogger(config.log.level, config.gatewayId);
      logProcessWarnings(logger);
      const unknown = unknownEnvNames(process.env);
      if (unknown.length > 0) logger.warn({ variables: unknown }, `unknown environment variables ignored (a typo?): ${unknown.join(", ")}`);
      const plugins = await Promise.all(pluginFactories.map((f) => f({ config, logger })));
      const gateway = await startGateway(config, logger, { plugins }).catch((err: unknown) => {
        logger.fatal({ err: err instanceof Error ? err.message : String(err) }, "the gateway could not start");
        throw err;
      });
      await new Promise<void>((resolve) => {
        const onSignal = (signal: NodeJS.Signals): void => {
          logger.info({ signal }, "signal received");
          resolve();
        };
        process.once("SIGTERM", onSignal);
        process.once("SIGINT", onSignal);
      });
      const { abandoned } = await gateway.stop();
      // Exit codes: 0 = clean drain; 1 = failed to start or crashed; 3 = the drain timeout ran out with
      // events in flight (they were not acknowledged; the senders resend them).
      if (abandoned > 0) process.exitCode = EXIT_DRAIN_TIMEOUT;
    });
}
