// End-to-end test of hosted mode (docs/HOSTED.md) against a running Lightbulb server with
// accounts on and a fresh database: two organisations sign up in the browser, each creates a
// project by uploading files, and neither sees the other's; a labeller joins by invitation link.
//
//   LIGHTBULB_URL=http://127.0.0.1:5098 LIGHTBULB_SCREENSHOTS=out/screenshots npm run test:hosted
//
// (scripts/browser-test-hosted.sh starts such a server and runs this.)
//
// Environment:
//   LIGHTBULB_URL          server base URL (required); accounts must be on (--jwt-key)
//   LIGHTBULB_IMAGES       folder with 00001.png … 00040.png (default ../.deps/data/mnist/images)
//   LIGHTBULB_TRUTH        CSV `path,label` to label the digits correctly (optional; default
//                          ../.deps/data/mnist/truth-10class.csv when that file exists)
//   LIGHTBULB_SCREENSHOTS  directory for screenshots and page HTML on failure (optional)
//   CHROMIUM_PATH          browser binary (default /usr/bin/chromium)
//   LIGHTBULB_READY_TIMEOUT_S   how long to wait for GET /readyz to answer 200 first (default 60)
//   LIGHTBULB_INGEST_TIMEOUT_S  how long to wait for a project's labelling to open (default 300)
//
// Exits 0 when every step passes, 1 with a message naming the failed step otherwise.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { chromium } from 'playwright-core';

import {
  BASE,
  fail,
  here,
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

const IMAGES = process.env.LIGHTBULB_IMAGES ?? path.resolve(here, '../../.deps/data/mnist/images');
const INGEST_TIMEOUT_MS = Number(process.env.LIGHTBULB_INGEST_TIMEOUT_S ?? 300) * 1000;

const IMAGE_COUNT = 40;
const TEXT_COUNT = 10;
const LABELS_A = 3;
const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

const A = { org: 'acme', orgName: 'Acme Inc', name: 'alice', email: 'alice@acme.test', password: 'alice-password-1' };
const B = { org: 'globex', orgName: 'Globex Corp', name: 'bob', email: 'bob@globex.test', password: 'bob-password-12' };
const C = { name: 'carol', email: 'carol@acme.test', password: 'carol-password-1' };
const PROJECT_A = 'digits-a';
const PROJECT_B = 'notes-b';

const TEXTS = [
  ['pos', 'A wonderful film, I loved every minute of it.'],
  ['neg', 'Dull, slow and far too long.'],
  ['pos', 'The cast is superb and the story moving.'],
  ['neg', 'I walked out after half an hour.'],
  ['pos', 'Funny, warm and clever: see it.'],
  ['neg', 'The plot makes no sense at all.'],
  ['pos', 'A beautiful score and stunning pictures.'],
  ['neg', 'Wooden acting and a lazy script.'],
  ['pos', 'The best thing I have seen this year.'],
  ['neg', 'A waste of a good cast.'],
];

/** Auth calls a signed-out browser makes: no Authorization header expected on these. */
const PUBLIC_API = [
  /^\/api\/v1\/server$/,
  /^\/api\/v1\/auth\/(signup|login|refresh|accept)$/,
  /^\/api\/v1\/invitations\/[^/]+$/,
];

function imageFiles() {
  return Array.from({ length: IMAGE_COUNT }, (_, i) => path.join(IMAGES, `${String(i + 1).padStart(5, '0')}.png`));
}

function requireEnv() {
  if (!BASE) fail('LIGHTBULB_URL is not set (the base URL of a running Lightbulb server with accounts on)');
  const missing = imageFiles().filter((f) => !fs.existsSync(f));
  if (missing.length) fail(`LIGHTBULB_IMAGES=${IMAGES} lacks ${missing.length} of the test images, e.g. ${missing[0]}`);
  requireChromium();
}

/** Wait for GET /readyz to answer 200, then check that accounts are on. */
async function waitAccounts() {
  await waitReady();
  const response = await fetch(`${BASE}/api/v1/server`, { headers: { Accept: 'application/json' } });
  if (!response.ok) fail(`GET /api/v1/server answered ${response.status}: ${await response.text()}`);
  const server = await response.json();
  if (server.accounts !== true) fail(`GET /api/v1/server says accounts are off (${JSON.stringify(server)}): start it with --jwt-key`);
  return server;
}

/** The small text files of project B, in a fresh temporary folder. */
function writeTexts(dir) {
  return TEXTS.slice(0, TEXT_COUNT).map(([, text], i) => {
    const file = path.join(dir, `note-${String(i + 1).padStart(2, '0')}.txt`);
    fs.writeFileSync(file, `${text}\n`);
    return file;
  });
}

async function main() {
  requireEnv();
  const server = await waitAccounts();
  const truth = readTruth(TRUTH);
  console.log(`server: ${JSON.stringify(server)}; truth file: ${TRUTH || 'none'}`);

  const textDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lightbulb-notes-'));
  const texts = writeTexts(textDir);
  const browser = await chromium.launch(LAUNCH_OPTIONS);

  // One browser context per person: separate localStorage, so separate sessions.
  const people = [];
  const openAs = async (who) => {
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    const person = { who, context, page, logs: [], unauthorised: [], withUserHeader: [], sockets: [], uploads: [] };
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') person.logs.push(`[${who}] console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => person.logs.push(`[${who}] page error: ${e.message}`));
    page.on('request', (r) => {
      const type = r.resourceType();
      if (type !== 'fetch' && type !== 'xhr') return;
      const url = new URL(r.url());
      if (!url.pathname.startsWith('/api/')) return;
      const headers = r.headers();
      // The first request (GET /api/v1/server) is made before the app knows the mode, so it
      // carries the embedded mode's header; none after it may.
      if (headers['x-lightbulb-user'] && url.pathname !== '/api/v1/server') {
        person.withUserHeader.push(`${r.method()} ${url.pathname}`);
      }
      const isPublic = PUBLIC_API.some((re) => re.test(url.pathname));
      if (!isPublic && !/^Bearer \S+/.test(headers.authorization ?? '')) {
        person.unauthorised.push(`${r.method()} ${url.pathname}`);
      }
      if (r.method() === 'POST' && /\/files$/.test(url.pathname)) person.uploads.push(r);
    });
    page.on('websocket', (ws) => person.sockets.push(ws.url()));
    people.push(person);
    return person;
  };

  const steps = stepRunner();
  const { step } = steps;

  const visible = async (page, testId, what, timeout = STEP_MS) => {
    try {
      await page.getByTestId(testId).first().waitFor({ state: 'visible', timeout });
    } catch {
      const error = page.getByTestId('error');
      const shown = (await error.count()) > 0 ? ` (the page shows: ${await error.first().innerText()})` : '';
      fail(`${what}: [data-testid=${testId}] did not appear within ${timeout / 1000} s on ${page.url()}${shown}`);
    }
  };

  const assertNoError = async (page, what) => {
    const error = page.getByTestId('error');
    if ((await error.count()) > 0 && (await error.first().isVisible())) {
      fail(`${what}: the app shows an error: ${await error.first().innerText()}`);
    }
  };

  /**
   * The value of the input [data-testid=testId] once it equals `expected`, or what it last held after
   * `timeout` ms: controls fill in from requests that may finish after the view first shows.
   */
  const settledValue = async (page, testId, expected, timeout = STEP_MS) => {
    const input = page.getByTestId(testId);
    const deadline = Date.now() + timeout;
    let value = await input.inputValue();
    while (value !== expected && Date.now() < deadline) {
      await page.waitForTimeout(100);
      value = await input.inputValue();
    }
    return value;
  };

  /** Status of GET `url` sent from the page with its session's access token. */
  const statusWithToken = (page, url) =>
    page.evaluate(async (u) => {
      const session = JSON.parse(localStorage.getItem('lightbulb.session') ?? 'null');
      if (!session?.access_token) return -1;
      const response = await fetch(u, { headers: { Authorization: `Bearer ${session.access_token}` } });
      return response.status;
    }, url);

  const signUp = async (person, who) => {
    const { page } = person;
    await page.goto(`${BASE}/`);
    await visible(page, 'signin-form', 'a signed-out visitor gets the sign-in page');
    if (!new URL(page.url()).pathname.startsWith('/signin')) fail(`signed out, the app stayed on ${page.url()}`);
    await page.getByTestId('link-signup').click();
    await visible(page, 'signup-form', 'the sign-up page');
    await page.getByTestId('signup-organisation').fill(who.org);
    await page.getByTestId('signup-organisation-name').fill(who.orgName);
    await page.getByTestId('signup-name').fill(who.name);
    await page.getByTestId('signup-email').fill(who.email);
    await page.getByTestId('signup-password').fill(who.password);
    await page.getByTestId('signup-submit').click();
    await visible(page, 'projects-view', `${who.name} lands on the project list after signing up`);
    await assertNoError(page, 'after signing up');
    const org = await settledValue(page, 'org-switcher', who.org);
    if (org !== who.org) fail(`the organisation switcher shows "${org}", expected "${who.org}"`);
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('lightbulb.session') ?? 'null'));
    if (!stored?.access_token || !stored?.refresh_token) fail('no session in localStorage["lightbulb.session"] after sign-up');
    if (stored.role !== 'owner') fail(`the founder's session has role ${stored.role}, expected owner`);
  };

  /** Fill the new-project form, upload `files`, and wait on the progress view until labelling opens. */
  const createProject = async (person, { id, title, type, classes, files }) => {
    const { page } = person;
    await page.getByTestId('new-project').click();
    await visible(page, 'new-project-view', 'the new-project form');
    await page.getByTestId('new-id').fill(id);
    await page.getByTestId('new-title').fill(title);
    await page.getByTestId(`new-type-${type}`).check();
    await page.getByTestId('new-classes').fill(classes);
    const expected = type === 'images' ? 'mobilenet_v2' : 'minilm_l6';
    const encoder = await settledValue(page, 'new-encoder', expected);
    if (encoder !== expected) fail(`the encoder defaults to "${encoder}" for ${type}, expected ${expected}`);
    await page.getByTestId('upload-files').setInputFiles(files);
    const picked = await page.getByTestId('upload-selection').innerText();
    if (!picked.includes(`${files.length} files`)) fail(`after picking ${files.length} files the form says "${picked}"`);
    const before = person.uploads.length;
    await page.getByTestId('new-submit').click();
    try {
      await page.waitForURL((url) => url.pathname === `/projects/${id}/ingest`, { timeout: 60_000 });
    } catch {
      await assertNoError(page, `creating ${id}`);
      fail(`creating and uploading ${id} did not lead to its progress view within 60 s (at ${page.url()})`);
    }
    // The upload: the files went up as parts named `file`, each named by its relative path.
    const requests = person.uploads.slice(before);
    if (requests.length === 0) fail(`no POST /api/v1/projects/${id}/files was sent`);
    let stored = 0;
    for (const request of requests) {
      const response = await request.response();
      if (!response || response.status() !== 200) fail(`POST ${request.url()} answered ${response?.status()}`);
      const body = await response.json();
      stored += body.stored;
      if (body.rejected?.length) fail(`the server refused uploaded files: ${JSON.stringify(body.rejected)}`);
    }
    if (stored !== files.length) fail(`the server stored ${stored} of the ${files.length} files uploaded`);

    await visible(page, 'ingest-view', 'the progress view');
    const deadline = Date.now() + INGEST_TIMEOUT_MS;
    let lastStatus = '';
    for (;;) {
      if (await page.getByTestId('start-labelling').isVisible()) break;
      const status = page.getByTestId('ingest-status');
      if ((await status.count()) > 0) {
        const now = await status.getAttribute('data-status');
        if (now !== lastStatus) console.log(`  ${id}: ${now}`);
        lastStatus = now ?? '';
        if (now === 'failed') {
          const why = page.getByTestId('ingest-error');
          fail(`the import of ${id} failed: ${(await why.count()) ? await why.innerText() : 'no error shown'}`);
        }
      }
      if (Date.now() > deadline) {
        fail(`"Start labelling" did not appear for ${id} within ${INGEST_TIMEOUT_MS / 1000} s (status "${lastStatus}")`);
      }
      await page.waitForTimeout(500);
    }
    const files_ = await page.getByTestId('ingest-files').innerText();
    if (Number(files_.replace(/\D/g, '')) !== files.length) fail(`the progress view counts ${files_} files, expected ${files.length}`);
  };

  const currentItem = async (page, timeout = STEP_MS) => {
    const item = page.getByTestId('current-item');
    try {
      await item.waitFor({ state: 'visible', timeout });
    } catch {
      await assertNoError(page, 'waiting for an item');
      fail(`no item to label appeared within ${timeout / 1000} s`);
    }
    return { id: await item.getAttribute('data-item-id'), path: await item.getAttribute('data-item-path') };
  };

  /** The project cards of the list: their ids. */
  const listedProjects = async (page) => {
    await page.goto(`${BASE}/projects`);
    await visible(page, 'projects-view', 'the project list');
    await page.getByTestId('project-list').waitFor({ state: 'visible', timeout: STEP_MS }).catch(() => {});
    return page.locator('[data-testid^="project-card-"]').evaluateAll((els) =>
      els.map((el) => el.getAttribute('data-testid').slice('project-card-'.length)),
    );
  };

  try {
    const alice = await openAs('A');
    const bob = await openAs('B');

    await step('A signs up organisation "acme"', () => signUp(alice, A));

    await step(`A creates the image project "${PROJECT_A}" from ${IMAGE_COUNT} PNG files`, () =>
      createProject(alice, { id: PROJECT_A, title: 'Digits of Acme', type: 'images', classes: DIGITS.join(', '), files: imageFiles() }),
    );

    await step(`A labels ${LABELS_A} items`, async () => {
      const { page } = alice;
      await page.getByTestId('start-labelling').click();
      await visible(page, 'label-view', 'the labelling view');
      for (let i = 0; i < LABELS_A; i += 1) {
        // While the rest are embedded the first items may take a little longer to be offered.
        const before = await currentItem(page, i === 0 ? 60_000 : STEP_MS);
        // The image comes through its content URL with ?access_token= (an <img> sends no headers).
        try {
          await page.waitForFunction(
            () => {
              const img = document.querySelector('[data-testid="current-item"] img');
              return img instanceof HTMLImageElement && img.complete && img.naturalWidth > 0;
            },
            undefined,
            { timeout: STEP_MS },
          );
        } catch {
          const src = await page.locator('[data-testid="current-item"] img').getAttribute('src').catch(() => null);
          fail(`the image of item ${before.id} did not load (src ${src})`);
        }
        const src = await page.locator('[data-testid="current-item"] img').getAttribute('src');
        if (!/[?&]access_token=/.test(src ?? '')) fail(`the item image URL carries no access_token: ${src}`);
        const known = truth.get(before.path) ?? truth.get(path.basename(before.path ?? ''));
        const cls = known !== undefined && DIGITS.includes(known) ? known : DIGITS[i % DIGITS.length];
        await page.getByTestId(`class-${cls}`).click();
        try {
          await page.waitForFunction(
            (id) => document.querySelector('[data-testid="current-item"]')?.getAttribute('data-item-id') !== id,
            before.id,
            { timeout: STEP_MS },
          );
        } catch {
          await assertNoError(page, `labelling item ${before.id}`);
          fail(`labelling item ${before.id} as "${cls}" did not bring another item within 15 s`);
        }
      }
      // The labels are sent in the background: wait until the server counts them.
      const deadline = Date.now() + STEP_MS;
      let labelled = 0;
      while (labelled < LABELS_A) {
        labelled = await page.evaluate(async (pid) => {
          const session = JSON.parse(localStorage.getItem('lightbulb.session') ?? 'null');
          const response = await fetch(`/api/v1/projects/${pid}/stats`, {
            headers: { Authorization: `Bearer ${session?.access_token}` },
          });
          return response.ok ? (await response.json()).counts.labelled : -response.status;
        }, PROJECT_A);
        if (labelled < 0) fail(`GET stats of ${PROJECT_A} answered ${-labelled}`);
        if (labelled >= LABELS_A) break;
        if (Date.now() > deadline) fail(`the server counts ${labelled} labels, expected ${LABELS_A}`);
        await page.waitForTimeout(300);
      }
      await assertNoError(page, 'after labelling');
      const socket = alice.sockets.find((u) => u.includes(`/api/v1/projects/${PROJECT_A}/events`));
      if (!socket) fail('the labelling view opened no events WebSocket');
      if (!/[?&]access_token=/.test(socket)) fail(`the events WebSocket URL carries no access_token: ${socket}`);
    });

    await step('B signs up organisation "globex"', () => signUp(bob, B));

    await step(`B creates the text project "${PROJECT_B}" from ${TEXT_COUNT} .txt files`, () =>
      createProject(bob, { id: PROJECT_B, title: 'Notes of Globex', type: 'text', classes: 'pos\nneg', files: texts }),
    );

    await step('each organisation sees only its own projects', async () => {
      const seenByA = await listedProjects(alice.page);
      if (!seenByA.includes(PROJECT_A) || seenByA.includes(PROJECT_B)) {
        fail(`A's project list shows [${seenByA.join(', ')}], expected ${PROJECT_A} and not ${PROJECT_B}`);
      }
      const seenByB = await listedProjects(bob.page);
      if (!seenByB.includes(PROJECT_B) || seenByB.includes(PROJECT_A)) {
        fail(`B's project list shows [${seenByB.join(', ')}], expected ${PROJECT_B} and not ${PROJECT_A}`);
      }
      await bob.page.goto(`${BASE}/projects/${PROJECT_A}/label`);
      await visible(bob.page, 'project-not-found', `B opening /projects/${PROJECT_A}/label gets the not-found message`);
      if (await bob.page.getByTestId('label-view').isVisible()) fail(`B sees a labelling view for ${PROJECT_A}`);
      for (const suffix of ['', '/stats', '/next']) {
        const status = await statusWithToken(bob.page, `/api/v1/projects/${PROJECT_A}${suffix}`);
        if (status !== 404) fail(`B's GET /api/v1/projects/${PROJECT_A}${suffix} answered ${status}, expected 404`);
      }
      const status = await statusWithToken(alice.page, `/api/v1/projects/${PROJECT_B}`);
      if (status !== 404) fail(`A's GET /api/v1/projects/${PROJECT_B} answered ${status}, expected 404`);
    });

    let link = '';
    await step('A invites a labeller by link', async () => {
      const { page } = alice;
      await page.getByTestId('nav-members').click();
      await visible(page, 'members-view', 'the members page');
      await page.getByTestId('invite-email').fill(C.email);
      await page.getByTestId('invite-role-select').selectOption('labeller');
      await page.getByTestId('invite-submit').click();
      await visible(page, 'invite-link', 'the invitation link');
      link = await page.getByTestId('invite-link').inputValue();
      if (!link.startsWith(`${BASE}/invite/`) && !link.startsWith(`${new URL(BASE).origin}/invite/`)) {
        fail(`the invitation link "${link}" is not ${BASE}/invite/<token>`);
      }
      await visible(page, 'invitation-row', 'the pending invitation');
    });

    await step('the invited labeller accepts and sees acme\'s project, not the Members page', async () => {
      const carol = await openAs('C');
      const { page } = carol;
      await page.goto(link);
      await visible(page, 'invite-view', 'the invitation page');
      await visible(page, 'invite-role', 'the invitation details');
      const org = await page.getByTestId('invite-organisation').innerText();
      if (!org.includes(A.orgName) && !org.includes(A.org)) fail(`the invitation names the organisation "${org}"`);
      const role = await page.getByTestId('invite-role').innerText();
      if (!/labeller/i.test(role)) fail(`the invitation offers the role "${role}", expected labeller`);
      await page.getByTestId('invite-name').fill(C.name);
      await page.getByTestId('invite-password').fill(C.password);
      await page.getByTestId('invite-accept').click();
      await visible(page, 'projects-view', 'the project list after accepting');
      await visible(page, `project-${PROJECT_A}`, `${PROJECT_A} in the labeller's project list`);
      const seen = await page.locator('[data-testid^="project-card-"]').evaluateAll((els) =>
        els.map((el) => el.getAttribute('data-testid').slice('project-card-'.length)),
      );
      if (seen.includes(PROJECT_B)) fail(`the acme labeller sees ${PROJECT_B}`);
      await page.getByTestId('hosted-bar').waitFor({ state: 'visible', timeout: STEP_MS });
      if ((await page.getByTestId('nav-members').count()) > 0) fail('a labeller sees the Members link');
      if ((await page.getByTestId('new-project').count()) > 0) fail('a labeller sees the New project button');
      const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('lightbulb.session') ?? 'null'));
      if (stored?.role !== 'labeller') fail(`the invited member's session has role ${stored?.role}, expected labeller`);
      const members = await statusWithToken(page, '/api/v1/members');
      if (members !== 403) fail(`a labeller's GET /api/v1/members answered ${members}, expected 403`);
      await page.getByTestId(`project-${PROJECT_A}`).click();
      await visible(page, 'label-view', 'the labeller opening the project');
      if ((await page.getByTestId('nav-keys').count()) > 0) fail('a labeller sees the API keys link');
      if ((await page.getByTestId('nav-export').count()) > 0) fail('a labeller sees the Export link');
    });

    await step('every API request carried a bearer token and no X-Lightbulb-User', async () => {
      for (const person of people) {
        if (person.unauthorised.length) {
          fail(`requests of ${person.who} without Authorization: Bearer:\n  ${person.unauthorised.slice(0, 5).join('\n  ')}`);
        }
        if (person.withUserHeader.length) {
          fail(`requests of ${person.who} with X-Lightbulb-User:\n  ${person.withUserHeader.slice(0, 5).join('\n  ')}`);
        }
      }
    });

    console.log('PASS: two organisations isolated; a labeller joined by invitation');
    return 0;
  } catch (error) {
    await reportFailure(error, steps.current, {
      logs: people.flatMap((p) => p.logs),
      logTail: 30,
      prefix: 'hosted-failure',
      pages: people.map((p) => ({ page: p.page, suffix: `-${p.who}` })),
    });
    return 1;
  } finally {
    await browser.close().catch(() => {});
    fs.rmSync(textDir, { recursive: true, force: true });
  }
}

run(main);
