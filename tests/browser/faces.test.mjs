// Real-browser tests of the operator console and the developer portal, end to end, as people
// use them: an operator sets up an organization, an API with scope descriptions, the
// organization's entitlement and admin, and disables a client; the organization's admin
// registers an application in the portal, copies its secret, runs the curl sample of the
// integration guide exactly as the page shows it, and rotates the secret; another
// organization's admin sees none of it. Every page visited is scanned with axe-core and
// photographed at desktop and mobile widths (target/browser-screenshots/); the README's
// screenshots (docs/images/console.png, portal.png, docs.png) are made here.
//
// Run from the repo root: `node --test tests/browser/` (scripts/browser-test installs what
// is missing and builds the binary first).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { calyx as calyxOn, launchBrowser, photograph, startServer, stopServer } from './harness.mjs';

const BRAND = 'Acme Giving';
const OPERATOR = ['ops', 'operator password 1'];
const AUDIENCE = 'https://orders.acme.test/';
const SCOPES = 'read:orders: Read your orders\nwrite:orders: Create and change your orders';

let workDir;
let dbUrl;
let server;
let browser;
// Made by the console test, used by the portal tests.
const globex = { admin: ['globex-dev', 'globex admin password'] };
const initech = { admin: ['initech-dev', 'initech admin password'] };

const calyx = (args, stdin) => calyxOn(dbUrl, args, stdin);

async function token(clientId, secret) {
  const resp = await fetch(`${server.base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: secret,
      audience: AUDIENCE,
    }),
  });
  return { status: resp.status, body: await resp.json() };
}

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // A sub-resource that fails (a stylesheet, an image) is named, not only counted.
  page.on('response', (r) => {
    if (r.status() >= 400) {
      problems.push(`${r.status()} for ${r.url()}`);
    }
  });
  return { context, page, problems };
}

/** Opens `to`, is sent to the sign-in page, signs in as `who`, and lands back on `to`. */
async function signInAt(page, to, [username, password]) {
  await page.goto(`${server.base}${to}`);
  await page.waitForURL(/\/signin\?next=/);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${server.base}${to}`);
}

/** Follows a link of the header's navigation. */
async function nav(page, name) {
  await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name, exact: true }).click();
}

/** Clicks a submit button and waits for the page it leads to. */
async function submit(page, name) {
  await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name }).click()]);
}

describe('console and developer portal in a real browser', () => {
  before(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'calyx-faces-'));
    dbUrl = `sqlite://${path.join(workDir, 'calyx.db')}`;
    await calyx(['operator', 'create', '--username', OPERATOR[0], '--password-stdin'], OPERATOR[1]);
    server = await startServer(dbUrl, ['--brand-name', BRAND, '--brand-color', '#7a1f5c']);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    if (server) await stopServer(server.proc);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  test('console: an operator sets up an organization, API, entitlement and admin, and disables a client', async () => {
    const { context, page, problems } = await newPage();
    try {
      await signInAt(page, '/console/', OPERATOR);
      await photograph(page, 'console-overview');

      // An organization.
      await nav(page, 'Organizations');
      await page.getByLabel('Name').fill('Globex');
      await submit(page, 'Create organization');
      // The new organization's page.
      await page.getByRole('heading', { name: 'Globex' }).waitFor();
      globex.orgPath = new URL(page.url()).pathname;
      await photograph(page, 'console-org');

      // An API with scope descriptions.
      await nav(page, 'APIs');
      await page.locator('#api-name').fill('Orders API');
      await page.locator('#api-audience').fill(AUDIENCE);
      await page.locator('#api-scopes').fill(SCOPES);
      await submit(page, 'Create API');
      assert.match(await page.locator('main').innerText(), /Orders API/);
      await photograph(page, 'console-apis');

      // The organization is entitled to read:orders, and gets an admin.
      await page.goto(`${server.base}${globex.orgPath}`);
      await page.locator('#entitle-api').selectOption({ label: `Orders API (${AUDIENCE})` });
      await page.locator('#entitle-scopes').fill('read:orders');
      await submit(page, 'Entitle');
      assert.match(await page.locator('main').innerText(), /read:orders/);
      await page.locator('#admin-username').fill(globex.admin[0]);
      await page.locator('#admin-email').fill('dev@globex.test');
      await page.locator('#admin-password').fill(globex.admin[1]);
      await submit(page, 'Create organization admin');
      assert.match(await page.locator('main').innerText(), new RegExp(globex.admin[0]));

      // A client, its secret shown once; it gets tokens, then is disabled.
      await nav(page, 'Clients');
      await page.locator('#client-org').selectOption({ label: 'Globex' });
      await page.locator('#client-name').fill('Globex nightly sync');
      await page.getByLabel('client_credentials').check();
      await submit(page, 'Register client');
      const secret = (await page.locator('.secret code').innerText()).trim();
      const clientId = (await page.locator('dl.facts code').first().innerText()).trim();
      assert.ok(secret.length >= 32 && clientId, 'the secret and id are shown');
      await page.getByRole('link', { name: 'I have copied it: continue' }).click();
      await page.locator('#grant-api').selectOption({ label: `Orders API (${AUDIENCE})` });
      await page.locator('#grant-scopes').fill('read:orders write:orders');
      await submit(page, 'Add grant');
      for (let i = 0; i < 3; i++) {
        const got = await token(clientId, secret);
        assert.equal(got.status, 200, JSON.stringify(got.body));
      }
      assert.ok(!(await page.content()).includes(secret), 'the secret is not shown again');
      await submit(page, 'Disable client');
      await page.locator('h1 .badge', { hasText: 'Disabled' }).waitFor();
      const refused = await token(clientId, secret);
      assert.equal(refused.status, 401, JSON.stringify(refused.body));
      assert.equal(refused.body.error, 'invalid_client');
      // Usage is flushed every few seconds; reload until the chart has its bars.
      for (let i = 0; i < 40; i++) {
        await page.reload();
        if ((await page.locator('svg.chart rect.bar').count()) > 0) break;
        await page.waitForTimeout(250);
      }
      await photograph(page, 'console-client', { readme: 'console' });

      // The audit log names the operator.
      await nav(page, 'Audit log');
      assert.match(await page.locator('main').innerText(), /client\.disabled/);
      await photograph(page, 'console-audit');
      // Every other section is scanned and photographed too.
      for (const section of ['Overview', 'Users', 'Keys', 'Webhooks', 'Branding', 'Maintenance']) {
        await nav(page, section);
        await page.getByRole('heading', { level: 1 }).waitFor();
        await photograph(page, `console-${section.toLowerCase()}`);
      }
      await nav(page, 'Users');
      await page.getByRole('link', { name: globex.admin[0] }).first().click();
      await page.getByRole('heading', { level: 1, name: globex.admin[0] }).waitFor();
      await photograph(page, 'console-user');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('portal: the admin registers an app, its curl sample gets a token, a rotation retires the old secret', async () => {
    assert.ok(globex.orgPath, 'the console test made the organization');
    const { context, page, problems } = await newPage();
    try {
      await signInAt(page, '/developers/', globex.admin);
      await photograph(page, 'portal-apps');
      await page.getByRole('link', { name: 'Register an application' }).click();
      await page.getByLabel('Name', { exact: true }).fill('Globex Reporting');
      await page.getByLabel('Description').fill('Nightly order reports for Globex');
      await page.getByLabel('Client credentials').check();
      await photograph(page, 'portal-register');
      await submit(page, 'Register');
      await photograph(page, 'portal-registered', { readme: 'portal' });
      const secret = (await page.locator('#client-secret').innerText()).trim();
      globex.appId = (await page.locator('#client-id').innerText()).trim();
      globex.appPath = new URL(page.url()).pathname.includes('/apps/')
        ? new URL(page.url()).pathname
        : `/developers/apps/${globex.appId}`;
      // Grant it what Globex is entitled to.
      await page.getByLabel('read:orders').check();
      await submit(page, 'Save the grant on Orders API');
      await page.goto(`${server.base}/developers/apps/${globex.appId}`);
      assert.equal(await page.getByLabel('read:orders').isChecked(), true);
      await photograph(page, 'portal-app');

      // The guide, filled in for this app; its curl sample run exactly as shown.
      await page.getByRole('link', { name: "Integration guide with this application's values" }).click();
      await page.locator('code[data-sample="curl"]').waitFor();
      await photograph(page, 'docs', { readme: 'docs' });
      const curl = await page.locator('code[data-sample="curl"]').innerText();
      assert.match(curl, new RegExp(globex.appId));
      const printed = await new Promise((resolve, reject) => {
        execFile('bash', ['-c', curl], { env: { ...process.env, CALYX_CLIENT_SECRET: secret } },
          (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
      });
      const jwt = printed.trim();
      const claims = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
      assert.equal(claims.aud, AUDIENCE);
      assert.equal(claims.client_id, globex.appId);

      // Rotate with no grace: the old secret stops, the new one works.
      await page.goto(`${server.base}/developers/apps/${globex.appId}`);
      await page.locator('#grace').selectOption({ label: 'None: the old secret stops working now' });
      await submit(page, 'Rotate secret');
      const rotated = (await page.locator('#client-secret').innerText()).trim();
      assert.notEqual(rotated, secret);
      assert.equal((await token(globex.appId, secret)).status, 401);
      assert.equal((await token(globex.appId, rotated)).status, 200);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test("isolation: another organization's admin sees none of it", async () => {
    assert.ok(globex.appId, 'the portal test registered the app');
    const { org_id: org } = await calyx(['org', 'create', '--name', 'Initech']);
    await calyx(
      ['user', 'create', '--org', org, '--username', initech.admin[0], '--password-stdin', '--role', 'org_admin'],
      initech.admin[1],
    );
    const { context, page } = await newPage();
    try {
      await signInAt(page, '/developers/', initech.admin);
      const list = await page.locator('main').innerText();
      assert.doesNotMatch(list, /Globex Reporting/);
      const resp = await page.goto(`${server.base}/developers/apps/${globex.appId}`);
      assert.equal(resp.status(), 404);
      await photograph(page, 'portal-not-found');
      await page.goto(`${server.base}/developers/docs`);
      assert.doesNotMatch(await page.locator('main').innerText(), /orders\.acme\.test/);
      const console = await page.goto(`${server.base}/console/`);
      assert.equal(console.status(), 403);
      await photograph(page, 'console-forbidden');
    } finally {
      await context.close();
    }
  });

  test('the public guide and a broken sign-in link are accessible too', async () => {
    const { context, page } = await newPage();
    try {
      await page.goto(`${server.base}/developers/docs`);
      assert.match(await page.locator('main').innerText(), /orders\.acme\.test/);
      assert.match(await page.locator('code[data-sample="curl"]').innerText(), /YOUR_CLIENT_ID/);
      await photograph(page, 'docs-public');
      const resp = await page.goto(`${server.base}/authorize?response_type=code&state=s&client_id=nobody`);
      assert.equal(resp.status(), 400);
      await photograph(page, 'authorize-error');
    } finally {
      await context.close();
    }
  });
});
