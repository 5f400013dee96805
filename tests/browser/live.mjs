// The page of a live run updates as its agents progress, without a reload.
// The run's shell agents wait for files this script writes into RELEASE_DIR.
import fs from 'node:fs';
import path from 'node:path';
import { check, env, withBrowser } from './lib.mjs';

const url = env('DASHBOARD_URL');
const release = env('RELEASE_DIR');
const agents = env('AGENTS').split(',');
const T = { timeout: 30000 };
const card = (id, attr) => `.card[data-agent="${id}"]${attr || ''}`;

await withBrowser(async (b) => {
  const page = await b.context.newPage();
  b.watch(page);
  await page.goto(url);
  // The page opens on the live run.
  await page.waitForSelector(card('A', '[data-progress="10"]'), T);
  await page.evaluate(() => { window.llmoSamePage = true; });
  for (const id of agents) {
    check(await page.locator(`#gantt .g-row[data-agent="${id}"]`).count() === 1, `the Gantt has a row for ${id}`);
  }
  check(await page.locator('#gantt .g-row[data-agent="A"] .g-bar.o-running').count() === 1, 'A has a running bar');
  await b.shot(page, 'live-1-running');

  fs.writeFileSync(path.join(release, 'a1'), '');
  await page.waitForSelector(card('A', '[data-progress="60"]'), T);
  check(await page.evaluate(() => window.llmoSamePage === true), 'the page was not reloaded');
  await page.waitForSelector(card('C', '[data-status="completed"]'), T);
  await b.shot(page, 'live-2-progress');

  fs.writeFileSync(path.join(release, 'a2'), '');
  await page.waitForSelector(card('A', '[data-status="completed"]'), T);
  await page.waitForSelector(card('B', '[data-status="running"]'), T);
  check(await page.locator('#gantt .g-row[data-agent="A"] .g-bar.o-completed').count() === 1, 'A has a completed bar');
  check(await page.locator('#gantt .g-row.critical').count() >= 1, 'the critical path is highlighted');

  // Agent detail: status history and the output tail, still without a reload.
  await page.click(card('A'));
  await page.waitForSelector('#agent[data-agent="A"][data-status="completed"]', T);
  await page.waitForFunction(() => document.querySelector('#output').textContent.includes('sixty'), null, T);
  const history = await page.locator('#status-history').textContent();
  check(history.includes('PROGRESS-10%') && history.includes('PROGRESS-60%') && history.includes('COMPLETE'), 'status history: ' + history);
  await b.shot(page, 'live-3-agent');

  await page.click('.crumbs a:nth-child(2)');
  await page.waitForSelector('#gantt', T);
  fs.writeFileSync(path.join(release, 'b1'), '');
  await page.waitForSelector('#run-outcome[data-outcome="succeeded"]', T);
  for (const id of agents) {
    check(await page.locator(card(id, '[data-status="completed"]')).count() === 1, `${id} completed on the page`);
    check(await page.locator(`#gantt .g-row[data-agent="${id}"] .g-bar.o-completed`).count() === 1, `${id} has a completed bar`);
  }
  check(await page.evaluate(() => window.llmoSamePage === true), 'the page was not reloaded');
  await b.shot(page, 'live-4-finished');
});
