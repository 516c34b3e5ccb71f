#!/usr/bin/env node
// The `nest-egg` CLI in development: runs the TypeScript sources (src/main.ts) through tsx, so a
// clone runs without a build step. Production runs the compiled `node dist/main.js <command>`.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../src/main.ts', import.meta.url).href);
