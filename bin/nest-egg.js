#!/usr/bin/env node
// The `nest-egg` CLI: loads the TypeScript sources through tsx, so a clone runs without a build step.
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';

register();
const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
await import(main);
