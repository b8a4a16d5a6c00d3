// What the browser tests share: running `calyx` commands and `calyx serve` on a test's own
// database, a headless Chromium, an axe-core accessibility scan, and screenshots at desktop and
// mobile widths. Not a test file itself (node --test runs only *.test.mjs).

import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CALYX_BIN = path.resolve(ROOT, process.env.CALYX_BIN || 'target/debug/calyx');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
/** Screenshots the README shows. */
export const IMAGES = path.join(ROOT, 'docs', 'images');
/** Every screenshot of a run, at both widths: the test artefacts. */
export const ARTIFACTS = path.join(ROOT, 'target', 'browser-screenshots');

// The child processes get the caller's environment without any CALYX_* settings, so a
// developer's own configuration cannot leak into the test; every setting is passed as a flag.
export const childEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('CALYX_')),
);


/** Runs a calyx CLI command on `dbUrl` with --json and returns the parsed object it prints. */
export function calyx(dbUrl, args, stdin) {
  return new Promise((resolve, reject) => {
    const child = execFile(
      CALYX_BIN,
      [...args, '--database-url', dbUrl, '--json'],
      { env: childEnv, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`calyx ${args.join(' ')} failed: ${err.message}\n${stderr}`));
          return;
        }
        try {
          resolve(JSON.parse(stdout));
        } catch (e) {
          reject(new Error(`calyx ${args.join(' ')} printed no JSON: ${stdout}\n${stderr}`));
        }
      },
    );
    if (stdin !== undefined) child.stdin.end(stdin);
    else child.stdin.end();
  });
}

/** Starts `calyx serve` on `dbUrl` and a free loopback port, with `extra` flags; resolves
 * once it prints its address. */
export function startServer(dbUrl, extra = []) {
  return new Promise((resolve, reject) => {
    const proc = spawn(CALYX_BIN, ['serve', '--database-url', dbUrl, '--listen', '127.0.0.1:0', ...extra], {
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      proc.kill('SIGTERM');
      reject(new Error(`calyx serve did not report its address within 30 s\n${stderr}`));
    }, 30_000);
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`calyx serve exited early (${code ?? signal})\n${stderr}`));
    });
    const lines = createInterface({ input: proc.stdout });
    lines.once('line', (line) => {
      clearTimeout(timer);
      const m = /^listening on (127\.0\.0\.1:\d+)$/.exec(line.trim());
      if (!m) {
        proc.kill('SIGTERM');
        reject(new Error(`unexpected first line from calyx serve: ${line}\n${stderr}`));
        return;
      }
      // Keep draining stdout so the server never blocks on a full pipe.
      lines.on('line', () => {});
      resolve({ proc, base: `http://${m[1]}`, stderr: () => stderr });
    });
  });
}

/** Stops the server with SIGTERM, waiting (bounded) for it to exit. */
export function stopServer(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      resolve();
    }, 10_000);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

/** Headless Debian Chromium. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
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
  });
}

const require = createRequire(import.meta.url);
let axeSource;

/**
 * Runs axe-core on the page and fails on any serious or critical violation. The script is
 * evaluated through the DevTools protocol, which the pages' CSP (no script at all) does not
 * govern, so the pages are scanned exactly as served.
 */
export async function assertAccessible(page, which) {
  axeSource ??= await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ['violations'] }),
  );
  const bad = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(bad, [], `${which}: accessibility violations on ${page.url()}`);
}

/** The two widths every page is photographed at. */
export const WIDTHS = {
  desktop: { width: 1280, height: 800 },
  mobile: { width: 390, height: 844 },
};

/**
 * Scans the page with axe at desktop and mobile widths and saves a full-page screenshot of
 * each under target/browser-screenshots/<name>-<width>.png (and, when `readme` is set, the
 * desktop viewport as docs/images/<readme>.png).
 */
export async function photograph(page, name, { readme } = {}) {
  await mkdir(ARTIFACTS, { recursive: true });
  const original = page.viewportSize();
  for (const [label, size] of Object.entries(WIDTHS)) {
    await page.setViewportSize(size);
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${label}.png`), fullPage: true });
    await assertAccessible(page, `${name} (${label})`);
    // Nothing may be wider than the viewport; name the widest culprit if something is.
    const overflow = await page.evaluate(() => {
      const width = document.documentElement.clientWidth;
      const over = document.documentElement.scrollWidth - width;
      if (over <= 0) return null;
      const wide = [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > width + 1)
        .filter((e) => !e.parentElement || e.parentElement.getBoundingClientRect().right <= width + 1);
      const e = wide[0];
      return `${over}px, first at <${e?.tagName.toLowerCase()} class="${e?.className}">${e?.textContent?.slice(0, 60)}`;
    });
    assert.equal(overflow, null, `${name} (${label}) overflows horizontally`);
    if (readme && label === 'desktop') {
      await mkdir(IMAGES, { recursive: true });
      // What a reader sees on opening the page (a long page would shrink to a strip).
      await page.screenshot({ path: path.join(IMAGES, `${readme}.png`) });
    }
  }
  if (original) await page.setViewportSize(original);
}
