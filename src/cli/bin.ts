#!/usr/bin/env node
/** Process entry point of the `latentblend` command. */
import { runCli } from './main.ts';

process.exitCode = await runCli(process.argv.slice(2));
