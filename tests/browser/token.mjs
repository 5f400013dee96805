// A dashboard bound off 127.0.0.1 with a token refuses requests without it,
// and works (page, API, event stream) with it in the URL.
import { check, env, withBrowser } from './lib.mjs';

const url = env('DASHBOARD_URL');
const token = env('DASHBOARD_TOKEN');
const agents = env('AGENTS').split(',');
const T = { timeout: 30000 };

await withBrowser(async (b) => {
  const page = await b.context.newPage();
  b.watch(page);
  for (const target of [url, url + 'api/runs', url + '?token=wrong-' + token]) {
    const response = await page.goto(target);
    check(response.status() === 401, `${target} without the token: ${response.status()}`);
  }
  await b.shot(page, 'token-1-refused');

  const response = await page.goto(url + '?token=' + encodeURIComponent(token));
  check(response.status() === 200, 'with the token: ' + response.status());
  // No live run: the page opens on the run history.
  await page.waitForSelector('#runs tr[data-run] a', T);
  await b.shot(page, 'token-2-history');
  await page.click('#runs tr[data-run] a');
  await page.waitForSelector('#gantt', T);
  await page.waitForSelector('#conn.live', T); // the event stream took the token too
  for (const id of agents) {
    check(await page.locator(`#gantt .g-row[data-agent="${id}"]`).count() === 1, `the Gantt has a row for ${id}`);
  }
  check(new URL(page.url()).searchParams.get('token') === token, 'the token stays in the URL across views');
  await b.shot(page, 'token-3-run');
});
