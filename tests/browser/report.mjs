// The HTML report opens from a file, with no server and no network, and shows
// the overview, the Gantt chart, agent details with their output, the history.
import { pathToFileURL } from 'node:url';
import { check, env, withBrowser } from './lib.mjs';

const file = env('REPORT_FILE');
const agents = env('AGENTS').split(',');
const T = { timeout: 30000 };

await withBrowser(async (b) => {
  const page = await b.context.newPage();
  b.watch(page);
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector('#gantt', T);
  for (const id of agents) {
    check(await page.locator(`#gantt .g-row[data-agent="${id}"]`).count() === 1, `the Gantt has a row for ${id}`);
    check(await page.locator(`.card[data-agent="${id}"]`).count() === 1, `a card for ${id}`);
  }
  check((await page.locator('#run-outcome').getAttribute('data-outcome')) === 'failed', 'the run failed');
  await b.shot(page, 'report-1-overview');
  await page.click('.card[data-agent="B"]');
  await page.waitForSelector('#agent[data-agent="B"][data-status="failed"]', T);
  const errors = await page.locator('#errors').textContent();
  check(errors.includes('[ERROR: Agent B failed]') && errors.includes('Impact: Blocks D in wave 2'), 'errors: ' + errors);
  const output = await page.locator('#output').textContent();
  check(output.includes('[STATUS: PROGRESS-20%] trying'), 'output: ' + output);
  await b.shot(page, 'report-2-agent');
  await page.click('#nav a:first-child');
  await page.waitForSelector('#runs tr[data-run]', T);
  await b.shot(page, 'report-3-history');
});
