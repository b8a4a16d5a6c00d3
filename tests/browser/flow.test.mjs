// Real-browser end-to-end test of the authorization code flow: headless Debian Chromium,
// driven by playwright-core, signs a user in on Calyx's login page, decides on the consent
// page, and is sent to the app's redirect URI. The app's host does not exist (and this
// machine has no network), so requests to it are intercepted and answered by the test.
//
// Run from the repo root: `node --test tests/browser/` (scripts/browser-test installs what
// is missing and builds the binary first). Environment:
//   CALYX_BIN       the calyx binary (default target/debug/calyx; relative paths are taken
//                   from the repo root)
//   CHROMIUM_PATH   the browser (default /usr/bin/chromium)
//
// Side effect: screenshots of the login and consent pages are written to
// docs/images/login.png and docs/images/consent.png.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  IMAGES,
  assertAccessible,
  calyx as calyxOn,
  launchBrowser,
  startServer as startOn,
  stopServer,
} from './harness.mjs';

const AUDIENCE = 'https://crm.example.com/';
const REDIRECT_URI = 'https://app.example.com/cb';
const USERNAME = 'jane';
const PASSWORD = 'correct horse battery';
const APP_NAME = 'Donor App';

let workDir;
let dbUrl;
let server; // { proc, base, stderr }
let browser;
let clientId;
let clientSecret;

const calyx = (args, stdin) => calyxOn(dbUrl, args, stdin);

function authorizeUrl(state, extra = {}) {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    state,
    redirect_uri: REDIRECT_URI,
    ...extra,
  });
  return `${server.base}/authorize?${q}`;
}

/**
 * A fresh browser context and page whose requests to the app's host are answered locally.
 * `redirected` resolves with the first URL the browser was sent to on that host.
 * `problems` collects CSP violations, console errors and failed requests seen on Calyx's pages.
 */
async function newPage() {
  const context = await browser.newContext({
    viewport: { width: 480, height: 720 },
    deviceScaleFactor: 1,
    locale: 'en-US',
  });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (req) => {
    if (req.url().startsWith(server.base)) {
      problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`);
    }
  });
  let resolveRedirect;
  const redirected = new Promise((r) => {
    resolveRedirect = r;
  });
  await page.route('https://app.example.com/**', async (route) => {
    resolveRedirect(route.request().url());
    await route.fulfill({ status: 200, contentType: 'text/plain', body: 'ok' });
  });
  return { context, page, problems, redirected };
}

/** Waits for `promise`, failing with `what` after `ms`. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Asserts the stylesheet applied and nothing overflows the viewport horizontally. */
async function assertStyled(page, which) {
  const layout = await page.evaluate(() => {
    const card = document.querySelector('main.card');
    const style = card ? getComputedStyle(card) : null;
    return {
      hasCard: !!card,
      cardBg: style?.backgroundColor,
      brand: document.querySelector('header .brand')?.textContent?.trim(),
      bodyBg: getComputedStyle(document.body).backgroundColor,
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
    };
  });
  assert.ok(layout.hasCard, `${which}: no main.card`);
  assert.equal(layout.cardBg, 'rgb(255, 255, 255)', `${which}: /assets/calyx.css not applied`);
  assert.equal(layout.brand, 'Calyx', `${which}: the header shows the brand`);
  assert.equal(layout.bodyBg, 'rgb(243, 245, 249)', `${which}: /assets/calyx.css not applied`);
  assert.ok(
    layout.scrollWidth <= layout.clientWidth,
    `${which}: page overflows horizontally (${layout.scrollWidth} > ${layout.clientWidth})`,
  );
}

/** Opens /authorize and signs in; returns with the consent page shown. */
async function signIn(page, state, { screenshot, extra } = {}) {
  const resp = await page.goto(authorizeUrl(state, extra));
  assert.equal(resp?.status(), 200, 'GET /authorize should show the login page');
  const csp = resp.headers()['content-security-policy'] || '';
  assert.match(csp, /default-src 'none'/, 'login page should carry a strict CSP');

  assert.match(await page.title(), new RegExp(`^Sign in to continue to ${APP_NAME}`));
  await assert.doesNotReject(
    page.getByRole('heading', { name: 'Sign in' }).waitFor({ timeout: 5_000 }),
  );
  const username = page.getByLabel('Username');
  const password = page.getByLabel('Password');
  assert.equal(await username.getAttribute('id'), 'username');
  assert.equal(await password.getAttribute('id'), 'password');
  assert.equal(await password.getAttribute('type'), 'password');
  assert.match(await page.locator('main').innerText(), new RegExp(APP_NAME));
  await assertStyled(page, 'login page');
  await assertAccessible(page, 'login page');

  await username.fill(USERNAME);
  await password.fill(PASSWORD);
  if (screenshot) {
    await page.screenshot({ path: path.join(IMAGES, 'login.png'), fullPage: true });
  }

  await Promise.all([
    page.waitForURL((u) => u.pathname === '/authorize/login', { waitUntil: 'load' }),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  await page.getByRole('button', { name: 'Allow' }).waitFor({ timeout: 10_000 });
}

describe('authorization code flow in a real browser', () => {
  before(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'calyx-browser-'));
    dbUrl = `sqlite://${path.join(workDir, 'calyx.db')}`;
    await mkdir(IMAGES, { recursive: true });

    const { org_id: org } = await calyx(['org', 'create', '--name', 'Acme']);
    await calyx([
      'api', 'create', '--audience', AUDIENCE, '--name', 'CRM API',
      '--scopes', 'Standard StandardEditFinancialData OrgAdmin',
    ]);
    const client = await calyx([
      'client', 'create', '--org', org, '--name', APP_NAME,
      '--grant-type', 'authorization_code', '--grant-type', 'refresh_token',
      '--redirect-uri', REDIRECT_URI,
      '--website-uri', 'https://app.example.com/',
      '--privacy-policy-uri', 'https://app.example.com/privacy',
      '--tos-uri', 'https://app.example.com/terms',
    ]);
    clientId = client.client_id;
    clientSecret = client.client_secret;
    assert.ok(clientId && clientSecret, 'client create should print client_id and client_secret');
    await calyx([
      'grant', 'create', '--client', clientId, '--audience', AUDIENCE,
      '--scopes', 'Standard StandardEditFinancialData OrgAdmin', '--default',
    ]);
    const user = await calyx(
      [
        'user', 'create', '--org', org, '--username', USERNAME, '--password-stdin',
        '--audience', AUDIENCE, '--scopes', 'Standard StandardEditFinancialData',
      ],
      PASSWORD,
    );
    assert.ok(user.user_id, 'user create should print user_id');

    server = await startOn(dbUrl);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    if (server) await stopServer(server.proc);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  test('sign in, Allow: redirected with code and state; the code buys tokens', async () => {
    const state = randomBytes(12).toString('base64url');
    const { context, page, problems, redirected } = await newPage();
    try {
      await signIn(page, state, { screenshot: true });

      // The consent page.
      assert.match(await page.title(), new RegExp(`^Allow ${APP_NAME} access\\?`));
      const main = page.locator('main');
      const text = await main.innerText();
      assert.match(text, new RegExp(`Allow ${APP_NAME} to access your account\\?`));
      assert.match(text, /Signed in as/);
      assert.match(text, /CRM API/);
      const links = {
        Website: 'https://app.example.com/',
        'Privacy policy': 'https://app.example.com/privacy',
        'Terms of service': 'https://app.example.com/terms',
      };
      for (const [name, href] of Object.entries(links)) {
        const link = page.getByRole('link', { name });
        assert.equal(await link.count(), 1, `consent page should link "${name}"`);
        assert.equal(await link.getAttribute('href'), href);
      }
      await page.getByRole('button', { name: 'Deny' }).waitFor();
      await assertStyled(page, 'consent page');
      await assertAccessible(page, 'consent page');
      await page.screenshot({ path: path.join(IMAGES, 'consent.png'), fullPage: true });

      await page.getByRole('button', { name: 'Allow' }).click();
      const landed = await within(redirected, 15_000, 'the redirect to the app');
      assert.ok(landed.startsWith(`${REDIRECT_URI}?`), `redirected to ${landed}`);
      const params = new URL(landed).searchParams;
      const code = params.get('code');
      assert.ok(code, `no code in ${landed}`);
      assert.equal(params.get('state'), state);
      assert.equal(params.get('error'), null);
      assert.deepEqual(problems, [], 'the pages should load with no errors or CSP violations');

      // The app exchanges the code for tokens.
      const resp = await fetch(`${server.base}/v2/oauth/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: REDIRECT_URI,
        }),
      });
      const body = await resp.text();
      assert.equal(resp.status, 200, `token exchange: ${body}`);
      const tokens = JSON.parse(body);
      assert.ok(tokens.access_token, `no access_token in ${body}`);
      assert.ok(tokens.refresh_token, `no refresh_token in ${body}`);
      assert.match(String(tokens.token_type), /^bearer$/i);
    } finally {
      await context.close();
    }
  });

  test('sign in, Deny: redirected with error=access_denied and state', async () => {
    const state = randomBytes(12).toString('base64url');
    const { context, page, problems, redirected } = await newPage();
    try {
      // The first test's approval is remembered: ask again.
      await signIn(page, state, { extra: { prompt: 'consent' } });
      await page.getByRole('button', { name: 'Deny' }).click();
      const landed = await within(redirected, 15_000, 'the redirect to the app');
      assert.ok(landed.startsWith(`${REDIRECT_URI}?`), `redirected to ${landed}`);
      const params = new URL(landed).searchParams;
      assert.equal(params.get('error'), 'access_denied');
      assert.equal(params.get('state'), state);
      assert.equal(params.get('code'), null);
      assert.deepEqual(problems, [], 'the pages should load with no errors or CSP violations');
    } finally {
      await context.close();
    }
  });
});
