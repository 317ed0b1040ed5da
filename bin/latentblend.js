#!/usr/bin/env node
// Entry point: the compiled CLI (built by `npm run build`, which `npm ci` runs via `prepare`).
import '../dist/cli/bin.js';
