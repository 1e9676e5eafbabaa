// Rewrites the configuration table in README.md from src/config.ts (test/config.test.ts checks it).
import { readFileSync, writeFileSync } from 'node:fs';
import { describeConfig } from '../src/config.js';

const path = new URL('../README.md', import.meta.url);
const readme = readFileSync(path, 'utf8');
const start = '<!-- config-table -->';
const end = '<!-- /config-table -->';
const a = readme.indexOf(start);
const b = readme.indexOf(end);
if (a < 0 || b < a) throw new Error('README.md lacks the config-table markers');
writeFileSync(path, `${readme.slice(0, a + start.length)}\n${describeConfig()}\n${readme.slice(b)}`);
