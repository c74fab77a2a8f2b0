// What the browser tests share (browser.test.mjs for embedded mode, hosted.test.mjs for hosted
// mode): their common environment, the browser's launch options, the step runner, failure
// reports with screenshots, the truth file and the wait for GET /readyz.
//
// Environment read here:
//   LIGHTBULB_URL          server base URL (required)
//   LIGHTBULB_TRUTH        CSV `path,label` with the true classes (optional; defaults to
//                          ../.deps/data/mnist/truth-10class.csv when that file exists)
//   LIGHTBULB_SCREENSHOTS  directory for screenshots and page HTML on failure (optional)
//   CHROMIUM_PATH          browser binary (default /usr/bin/chromium)
//   LIGHTBULB_READY_TIMEOUT_S  how long to wait for GET /readyz to answer 200 first (default 60)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const BASE = (process.env.LIGHTBULB_URL ?? '').replace(/\/+$/, '');
export const SHOTS = process.env.LIGHTBULB_SCREENSHOTS ?? '';
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const READY_TIMEOUT_MS = Number(process.env.LIGHTBULB_READY_TIMEOUT_S ?? 60) * 1000;
const DEFAULT_TRUTH = path.resolve(here, '../../.deps/data/mnist/truth-10class.csv');
export const TRUTH = process.env.LIGHTBULB_TRUTH ?? (fs.existsSync(DEFAULT_TRUTH) ? DEFAULT_TRUTH : '');

/** How long one wait for the page may take. */
export const STEP_MS = 15_000;

/** Options of `chromium.launch` and `chromium.launchPersistentContext`. */
export const LAUNCH_OPTIONS = {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};
export const VIEWPORT = { width: 1280, height: 800 };

export class TestFailure extends Error {}
export const fail = (message) => {
  throw new TestFailure(message);
};

/** Fail unless the browser binary is there. */
export function requireChromium() {
  if (!fs.existsSync(CHROMIUM)) {
    fail(`no browser at ${CHROMIUM}: apt-get install -y --no-install-recommends chromium (or set CHROMIUM_PATH)`);
  }
}

/** The true class of each path in a CSV `path,label` (an empty map without a file). */
export function readTruth(file) {
  const truth = new Map();
  if (!file) return truth;
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/);
  for (const line of lines.slice(1)) {
    const comma = line.lastIndexOf(',');
    if (comma < 0) continue;
    const p = line.slice(0, comma).replace(/^"|"$/g, '');
    truth.set(p, line.slice(comma + 1).trim().replace(/^"|"$/g, ''));
  }
  return truth;
}

/** Wait for GET /readyz to answer 200 (projects loaded, database up). */
export async function waitReady() {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  for (;;) {
    try {
      const response = await fetch(`${BASE}/readyz`);
      if (response.ok) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = error.cause?.message ?? error.message;
    }
    if (Date.now() > deadline) fail(`${BASE}/readyz did not answer 200 within ${READY_TIMEOUT_MS / 1000} s (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Runs named steps, logging each with its time; `current` names the one running (for reports). */
export function stepRunner() {
  const runner = {
    current: 'start',
    step: async (name, fn) => {
      runner.current = name;
      const started = Date.now();
      console.log(`▶ ${name}`);
      await fn();
      console.log(`✓ ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    },
  };
  return runner;
}

/**
 * Report a failed step: the message, the last `logTail` browser console lines, and (with
 * LIGHTBULB_SCREENSHOTS) a screenshot and the HTML of each page, named
 * `{prefix}-{step}{suffix}.png` / `.html`.
 */
export async function reportFailure(error, step, { logs, logTail, prefix, pages }) {
  const message = error instanceof TestFailure ? error.message : error?.stack ?? String(error);
  console.error(`\nFAIL in step "${step}": ${message}`);
  if (logs.length) console.error(`browser console:\n  ${logs.slice(-logTail).join('\n  ')}`);
  if (!SHOTS) return;
  try {
    fs.mkdirSync(SHOTS, { recursive: true });
    const stem = path.join(SHOTS, `${prefix}-${step.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '')}`);
    for (const { page, suffix } of pages) {
      await page.screenshot({ path: `${stem}${suffix}.png`, fullPage: true });
      fs.writeFileSync(`${stem}${suffix}.html`, await page.content());
      console.error(`screenshot: ${stem}${suffix}.png`);
    }
  } catch (shotError) {
    console.error(`could not save a screenshot: ${shotError}`);
  }
}

/** Run `main` (which resolves to an exit code) and exit with its code, or 1 if it throws. */
export function run(main) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.error(`FAIL: ${error instanceof TestFailure ? error.message : error?.stack ?? error}`);
      process.exit(1);
    },
  );
}
