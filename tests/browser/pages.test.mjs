// Real-browser tests of the pages for people around the authorization flow: the branding
// (set with the --brand-* flags) on the login, consent, account, sign-in and 404 pages; a
// remembered consent; taking access back on the account page; "Not you?"; signing out.
// Every page is scanned with axe-core (no serious or critical violation) and photographed at
// desktop and mobile widths into target/browser-screenshots/.
//
// Run from the repo root: `node --test tests/browser/` (scripts/browser-test installs what
// is missing and builds the binary first).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { calyx as calyxOn, launchBrowser, photograph, startServer, stopServer } from './harness.mjs';

const AUDIENCE = 'https://crm.example.com/';
const REDIRECT_URI = 'https://app.example.com/cb';
const USERNAME = 'jane';
const PASSWORD = 'correct horse battery';
const APP_NAME = 'Donor App';
const BRAND = 'Acme Giving';
const ACCENT = '#7a1f5c';

let workDir;
let dbUrl;
let server;
let browser;
let clientId;

const calyx = (args, stdin) => calyxOn(dbUrl, args, stdin);

function authorizeUrl(extra = {}) {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    state: randomBytes(9).toString('base64url'),
    redirect_uri: REDIRECT_URI,
    ...extra,
  });
  return `${server.base}/authorize?${q}`;
}

/** A fresh context whose requests to the app's host are answered locally. */
async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const landed = [];
  await page.route('https://app.example.com/**', async (route) => {
    landed.push(route.request().url());
    await route.fulfill({ status: 200, contentType: 'text/plain', body: 'back at the app' });
  });
  return { context, page, problems, landed };
}

/** The brand is in the header, and the accent of the branding is applied. */
async function assertBranded(page, which) {
  const got = await page.evaluate(() => ({
    brand: document.querySelector('header .brand')?.textContent?.trim(),
    accent: getComputedStyle(document.documentElement).getPropertyValue('--accent').trim(),
  }));
  assert.equal(got.brand, BRAND, `${which}: brand name in the header`);
  assert.equal(got.accent, ACCENT, `${which}: accent colour from /assets/brand.css`);
  assert.match(await page.title(), new RegExp(`${BRAND}$`), `${which}: title names the brand`);
}

async function logIn(page) {
  await page.getByLabel('Username').fill(USERNAME);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('pages around the flow, branded, in a real browser', () => {
  before(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'calyx-pages-'));
    dbUrl = `sqlite://${path.join(workDir, 'calyx.db')}`;
    const { org_id: org } = await calyx(['org', 'create', '--name', 'Acme']);
    await calyx([
      'api', 'create', '--audience', AUDIENCE, '--name', 'CRM API',
      '--scopes', 'Standard StandardEditFinancialData',
    ]);
    const client = await calyx([
      'client', 'create', '--org', org, '--name', APP_NAME,
      '--grant-type', 'authorization_code', '--grant-type', 'refresh_token',
      '--redirect-uri', REDIRECT_URI,
    ]);
    clientId = client.client_id;
    await calyx([
      'grant', 'create', '--client', clientId, '--audience', AUDIENCE,
      '--scopes', 'Standard StandardEditFinancialData', '--default',
    ]);
    await calyx(
      [
        'user', 'create', '--org', org, '--username', USERNAME, '--password-stdin',
        '--audience', AUDIENCE, '--scopes', 'Standard StandardEditFinancialData',
      ],
      PASSWORD,
    );
    server = await startServer(dbUrl, ['--brand-name', BRAND, '--brand-color', ACCENT]);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    if (server) await stopServer(server.proc);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  test('branded login and consent; the approval is remembered; the account page takes it back', async () => {
    const { context, page, problems, landed } = await newPage();
    try {
      await page.goto(authorizeUrl());
      await assertBranded(page, 'login page');
      await photograph(page, 'login-branded');
      await logIn(page);
      await page.getByRole('button', { name: 'Allow' }).waitFor();
      await assertBranded(page, 'consent page');
      await photograph(page, 'consent-branded');
      await page.getByRole('button', { name: 'Allow' }).click();
      await page.waitForURL(/app\.example\.com/);
      assert.equal(landed.length, 1);
      assert.ok(new URL(landed[0]).searchParams.get('code'), landed[0]);

      // Remembered: the next sign-in goes straight back to the app with a code. (Asked
      // with the context's cookies, not by navigating: a navigation's redirect to the app's
      // host is not intercepted.)
      const again = await context.request.get(authorizeUrl(), { maxRedirects: 0 });
      assert.equal(again.status(), 303);
      const back = new URL(again.headers().location);
      assert.equal(`${back.origin}${back.pathname}`, REDIRECT_URI);
      assert.ok(back.searchParams.get('code'), back.href);

      // The account page lists it; Remove access forgets it.
      await page.goto(`${server.base}/account`);
      await assertBranded(page, 'account page');
      assert.match(await page.locator('main').innerText(), new RegExp(APP_NAME));
      await photograph(page, 'account');
      await page.getByRole('button', { name: `Remove access of ${APP_NAME}` }).click();
      await page.waitForURL(`${server.base}/account`);
      assert.match(await page.locator('main').innerText(), /have not allowed any application/);

      // So the consent page is shown again.
      await page.goto(authorizeUrl());
      await page.getByRole('button', { name: 'Allow' }).waitFor();
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('Not you? signs out and asks again; Sign out ends the session', async () => {
    const { context, page, problems } = await newPage();
    try {
      await page.goto(authorizeUrl({ prompt: 'consent' }));
      await logIn(page);
      await page.getByRole('button', { name: 'Not you?' }).click();
      await page.getByLabel('Username').waitFor();
      assert.match(await page.locator('main').innerText(), /Sign in/);
      const cookies = await context.cookies();
      assert.ok(!cookies.some((c) => c.name === 'calyx_session' && c.value), 'signed out');

      await logIn(page);
      await page.getByRole('button', { name: 'Allow' }).waitFor();
      await page.goto(`${server.base}/account`);
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL(/\/signin\?signed_out=1/);
      await assertBranded(page, 'sign-in page');
      assert.match(await page.locator('main').innerText(), /You have signed out/);
      await photograph(page, 'signed-out');
      await page.goto(`${server.base}/account`);
      await page.waitForURL(/\/signin/);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('a failed sign-in and a page that does not exist are branded and accessible', async () => {
    const { context, page } = await newPage();
    try {
      await page.goto(`${server.base}/signin`);
      await page.getByLabel('Username').fill(USERNAME);
      await page.getByLabel('Password').fill('not the password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').waitFor();
      assert.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true');
      await photograph(page, 'signin-error');

      const resp = await page.goto(`${server.base}/no/such/page`);
      assert.equal(resp.status(), 404);
      await assertBranded(page, '404 page');
      await photograph(page, 'not-found');
    } finally {
      await context.close();
    }
  });
});
