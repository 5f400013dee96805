// Shared by the dashboard's browser tests: launch headless Chromium through
// playwright-core (found at LLMO_PLAYWRIGHT_MODULES), refuse any request that
// leaves this machine, save screenshots under LLMO_ARTIFACTS.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// Without the background-networking flags Chromium keeps calling home, which a
// closed network turns into a flood of failing requests.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

export function check(condition, message) {
  if (!condition) throw new Error('check failed: ' + message);
}

export async function launch() {
  const modules = env('LLMO_PLAYWRIGHT_MODULES');
  const entry = pathToFileURL(path.join(modules, 'playwright-core', 'index.mjs')).href;
  const { chromium } = await import(entry);
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmo-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.LLMO_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: CHROMIUM_ARGS,
  });
  const external = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    const local = url.protocol === 'file:' || url.protocol === 'data:' ||
      url.hostname === 'localhost' || /^127\./.test(url.hostname) || url.hostname === '[::1]';
    if (local) return route.continue();
    external.push(url.href);
    return route.abort();
  });
  const problems = [];
  const watch = (page) => {
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('console', (m) => { if (m.type() === 'error' && !/401|Unauthorized|ERR_CONNECTION_REFUSED|EventSource/.test(m.text())) problems.push('console error: ' + m.text()); });
  };
  const artifacts = env('LLMO_ARTIFACTS');
  fs.mkdirSync(artifacts, { recursive: true });
  return {
    context,
    watch,
    external,
    problems,
    shot: (page, name) => page.screenshot({ path: path.join(artifacts, name + '.png'), fullPage: true }),
    close: async () => {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

// Runs `body` with a browser; prints the failure and exits 1 on any error.
export async function withBrowser(body) {
  let browser;
  try {
    browser = await launch();
    await body(browser);
    check(browser.external.length === 0, 'requests left the machine: ' + browser.external.join(', '));
    check(browser.problems.length === 0, browser.problems.join('\n'));
    console.log('ok');
  } catch (e) {
    console.error(e && e.stack ? e.stack : String(e));
    process.exitCode = 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
}
