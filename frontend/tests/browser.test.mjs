// End-to-end test of the browser app against a running Lightbulb server (docs/API.md).
//
//   LIGHTBULB_URL=http://127.0.0.1:5000 LIGHTBULB_TEST_IMAGE=path/to/digit.png \
//   LIGHTBULB_SCREENSHOTS=out/screenshots npm run test:browser
//
// Environment:
//   LIGHTBULB_URL          server base URL (required)
//   LIGHTBULB_TEST_IMAGE   image file to upload on the scoring page (required)
//   LIGHTBULB_SCREENSHOTS  directory for screenshots and page HTML on failure (optional)
//   LIGHTBULB_TRUTH        CSV `path,label` with the true classes, so the labels are right and the
//                          model becomes confident enough to offer batches (optional; defaults to
//                          ../.deps/data/mnist/truth-10class.csv when that file exists). Without
//                          it the test follows the model's guess, or cycles through the classes.
//   LIGHTBULB_PROJECT      project id (default: the first in GET /api/v1/projects)
//   CHROMIUM_PATH          browser binary (default /usr/bin/chromium)
//   LIGHTBULB_ACCURACY_TIMEOUT_S  how long to wait for the accuracy to appear (default 60)
//   LIGHTBULB_READY_TIMEOUT_S     how long to wait for GET /readyz to answer 200 first (default 60)
//
// Exits 0 when every step passes, 1 with a message naming the failed step otherwise.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { chromium } from 'playwright-core';

import {
  BASE,
  fail,
  LAUNCH_OPTIONS,
  readTruth,
  reportFailure,
  requireChromium,
  run,
  STEP_MS,
  stepRunner,
  TRUTH,
  VIEWPORT,
  waitReady,
} from './helpers.mjs';

const IMAGE = process.env.LIGHTBULB_TEST_IMAGE ?? '';
const ACCURACY_TIMEOUT_MS = Number(process.env.LIGHTBULB_ACCURACY_TIMEOUT_S ?? 60) * 1000;

/** The test labels at most this many items looking for a batch before it gives up. */
const MAX_LABELS = 150;
const FIRST_LABELS = 12;
const ACCURACY_LABELS = 30;

function requireEnv() {
  if (!BASE) fail('LIGHTBULB_URL is not set (the base URL of a running Lightbulb server, e.g. http://127.0.0.1:5000)');
  if (!IMAGE) fail('LIGHTBULB_TEST_IMAGE is not set (an image file to upload on the scoring page)');
  if (!fs.existsSync(IMAGE)) fail(`LIGHTBULB_TEST_IMAGE=${IMAGE} does not exist`);
  requireChromium();
}

async function getJson(url) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: 'application/json' } });
  } catch (error) {
    fail(`cannot reach ${url}: ${error.cause?.message ?? error.message}`);
  }
  if (!response.ok) fail(`GET ${url} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

async function main() {
  requireEnv();
  await waitReady();
  const { projects } = await getJson(`${BASE}/api/v1/projects`);
  if (!Array.isArray(projects) || projects.length === 0) fail('GET /api/v1/projects lists no project');
  const project = process.env.LIGHTBULB_PROJECT
    ? projects.find((p) => p.id === process.env.LIGHTBULB_PROJECT)
    : projects[0];
  if (!project) fail(`no project ${process.env.LIGHTBULB_PROJECT}`);
  const keyOf = new Map();
  for (const [key, cls] of Object.entries(project.shortcuts ?? {})) if (!keyOf.has(cls)) keyOf.set(cls, key);
  const missing = project.classes.filter((c) => !keyOf.has(c));
  if (missing.length) fail(`classes without a keyboard shortcut: ${missing.join(', ')}`);
  const truth = readTruth(TRUTH);
  const classes = new Set(project.classes);
  console.log(`project ${project.id}: ${project.classes.length} classes; truth file: ${TRUTH || 'none'}`);

  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lightbulb-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, { ...LAUNCH_OPTIONS, viewport: VIEWPORT });
  const page = context.pages()[0] ?? (await context.newPage());
  const logs = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') logs.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => logs.push(`page error: ${e.message}`));
  const headerless = [];
  page.on('request', (r) => {
    const type = r.resourceType();
    if ((type === 'fetch' || type === 'xhr') && new URL(r.url()).pathname.startsWith('/api/')) {
      if (!r.headers()['x-lightbulb-user']) headerless.push(`${r.method()} ${r.url()}`);
    }
  });

  const steps = stepRunner();
  const { step } = steps;

  const state = { labels: 0, seen: new Set(), byTruth: 0, byGuess: 0, byCycle: 0 };

  const currentItem = async () => {
    const item = page.getByTestId('current-item');
    try {
      await item.waitFor({ state: 'visible', timeout: STEP_MS });
    } catch {
      if (await page.getByTestId('label-done').isVisible()) fail('the labelling view says "done" before the test finished');
      fail('no item to label appeared within 15 s');
    }
    return { id: await item.getAttribute('data-item-id'), path: await item.getAttribute('data-item-path') };
  };

  const assertNoError = async () => {
    const error = page.getByTestId('error');
    if (await error.isVisible()) fail(`the app shows an error: ${await error.innerText()}`);
  };

  // The key for the item on screen: its true class if known, else the model's guess, else a cycle.
  const keyFor = async (item) => {
    const known = truth.get(item.path) ?? truth.get(path.basename(item.path ?? ''));
    if (known !== undefined && classes.has(known)) {
      state.byTruth += 1;
      return keyOf.get(known);
    }
    const guess = page.getByTestId('prediction');
    if (await guess.isVisible()) {
      const cls = await guess.getAttribute('data-label');
      if (cls && keyOf.has(cls)) {
        state.byGuess += 1;
        return keyOf.get(cls);
      }
    }
    state.byCycle += 1;
    return keyOf.get(project.classes[state.labels % project.classes.length]);
  };

  // Press the item's class key and check a new item replaced it.
  const labelOne = async () => {
    const before = await currentItem();
    const key = await keyFor(before);
    await page.keyboard.press(key);
    try {
      await page.waitForFunction(
        (id) => {
          const el = document.querySelector('[data-testid="current-item"]');
          return el !== null && el.getAttribute('data-item-id') !== id;
        },
        before.id,
        { timeout: STEP_MS },
      );
    } catch {
      await assertNoError();
      fail(`pressing "${key}" on item ${before.id} did not advance to another item within 15 s`);
    }
    const after = await currentItem();
    if (state.seen.has(after.id)) fail(`after labelling item ${before.id} the app showed item ${after.id} again`);
    state.seen.add(before.id);
    state.labels += 1;
    await assertNoError();
    return before;
  };

  const openView = async (view, testId) => {
    await page.getByTestId(`nav-${view}`).click();
    await page.getByTestId(testId).waitFor({ state: 'visible', timeout: STEP_MS });
  };

  try {
    await step('(a) label with the keyboard, then undo', async () => {
      // One project opens straight into labelling; several show a list to pick from.
      await page.goto(`${BASE}/`);
      const view = page.getByTestId('label-view');
      const list = page.getByTestId('project-list');
      await Promise.race([
        view.waitFor({ state: 'visible', timeout: STEP_MS }),
        list.waitFor({ state: 'visible', timeout: STEP_MS }),
      ]).catch(() => fail('the app showed neither the labelling view nor a project list'));
      if (await list.isVisible()) {
        await list.getByTestId(`project-${project.id}`).click();
        await view.waitFor({ state: 'visible', timeout: STEP_MS });
      }
      let last = null;
      for (let i = 0; i < FIRST_LABELS; i += 1) last = await labelOne();
      const shown = await currentItem();
      await page.keyboard.press('Backspace');
      try {
        await page.waitForFunction(
          (id) => document.querySelector('[data-testid="current-item"]')?.getAttribute('data-item-id') === id,
          last.id,
          { timeout: STEP_MS },
        );
      } catch {
        await assertNoError();
        fail(`undo did not bring back item ${last.id} (still showing ${shown.id})`);
      }
      await page.getByTestId('restored-label').waitFor({ state: 'visible', timeout: STEP_MS });
      state.seen.delete(last.id);
      state.labels -= 1;
      await labelOne();
    });

    await step('(b) accuracy appears in the live header', async () => {
      while (state.labels < ACCURACY_LABELS) await labelOne();
      const accuracy = page.getByTestId('header-accuracy');
      const isNumber = async () => /\d+(\.\d+)?\s*%/.test(await accuracy.innerText());
      let deadline = Date.now() + ACCURACY_TIMEOUT_MS;
      while (!(await isNumber())) {
        if (Date.now() > deadline) {
          // Maybe too few test labels yet: label some more, then wait again, within the budget.
          if (state.labels + 10 > MAX_LABELS) {
            fail(`no accuracy in the header after ${state.labels} labels (it shows "${await accuracy.innerText()}")`);
          }
          for (let i = 0; i < 10; i += 1) await labelOne();
          deadline = Date.now() + ACCURACY_TIMEOUT_MS / 2;
        }
        await page.waitForTimeout(500);
      }
      console.log(`  accuracy: ${await accuracy.innerText()} after ${state.labels} labels`);
    });

    await step('(c) confirm an auto-label batch', async () => {
      for (;;) {
        await openView('batches', 'batch-view');
        const tile = page.getByTestId('batch-item').first();
        const empty = page.getByTestId('batch-empty');
        await Promise.race([
          tile.waitFor({ state: 'visible', timeout: STEP_MS }),
          empty.waitFor({ state: 'visible', timeout: STEP_MS }),
        ]).catch(() => fail('the batch view showed neither a batch nor "no batch ready"'));
        if (await tile.isVisible()) break;
        if (state.labels >= MAX_LABELS) fail(`no batch became ready after ${state.labels} labels`);
        await openView('label', 'label-view');
        for (let i = 0; i < 10 && state.labels < MAX_LABELS; i += 1) await labelOne();
        // Give the server a moment to retrain on the new labels.
        await page.waitForTimeout(2_000);
      }
      const tiles = page.getByTestId('batch-item');
      const size = await tiles.count();
      const first = tiles.first();
      const rejectedId = Number(await first.getAttribute('data-item-id'));
      if ((await first.getAttribute('aria-pressed')) !== 'true') fail('batch items are not pre-selected');
      await first.click();
      if ((await first.getAttribute('aria-pressed')) !== 'false') fail('clicking a batch item did not deselect it');
      const confirmed = page.waitForResponse(
        (r) => r.request().method() === 'POST' && /\/batches\/[^/]+\/confirm$/.test(new URL(r.url()).pathname),
        { timeout: STEP_MS },
      );
      await page.getByTestId('batch-confirm').click();
      const response = await confirmed;
      const sent = response.request().postDataJSON();
      if (!Array.isArray(sent.rejected) || !sent.rejected.includes(rejectedId)) {
        fail(`the confirm request did not reject item ${rejectedId}: ${JSON.stringify(sent)}`);
      }
      if (response.status() !== 200) fail(`POST confirm answered ${response.status()}: ${await response.text()}`);
      const body = await response.json();
      if (body.rejected !== 1 || body.confirmed !== size - 1) {
        fail(`POST confirm of ${size} items with one rejected answered ${JSON.stringify(body)}`);
      }
      await page.getByTestId('batch-result').waitFor({ state: 'visible', timeout: STEP_MS });
      console.log(`  confirmed ${body.confirmed} of ${size} after ${state.labels} labels`);
    });

    await step('(d) score an uploaded image', async () => {
      await openView('score', 'score-view');
      await page.getByTestId('score-file').setInputFiles(IMAGE);
      await page.getByTestId('score-submit').click();
      const results = page.getByTestId('score-results');
      try {
        await results.waitFor({ state: 'visible', timeout: 30_000 });
      } catch {
        await assertNoError();
        fail('no class probabilities appeared within 30 s');
      }
      const rows = page.getByTestId('score-row');
      const n = await rows.count();
      if (n !== project.classes.length) fail(`expected ${project.classes.length} class probabilities, saw ${n}`);
      const values = await page
        .locator('[data-testid="score-row"] [role="meter"]')
        .evaluateAll((els) => els.map((el) => Number(el.getAttribute('aria-valuenow'))));
      if (values.some((v) => !(v >= 0 && v <= 1))) fail(`probabilities out of range: ${values.join(', ')}`);
      console.log(`  prediction: ${await page.getByTestId('score-prediction').innerText()}`);
    });

    await step('every API request carried X-Lightbulb-User', async () => {
      if (headerless.length) fail(`requests without X-Lightbulb-User:\n  ${headerless.slice(0, 5).join('\n  ')}`);
    });

    console.log(
      `PASS: ${state.labels} labels (${state.byTruth} from the truth file, ${state.byGuess} from the model's guess, ${state.byCycle} cycled)`,
    );
    return 0;
  } catch (error) {
    await reportFailure(error, steps.current, { logs, logTail: 20, prefix: 'failure', pages: [{ page, suffix: '' }] });
    return 1;
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

run(main);
