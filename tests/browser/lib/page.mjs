// lib/page.mjs — browser helpers for the dashboard tests: open a hash route
// and wait until its view is done (main#view data-route/data-state, set by
// app.js), check that nothing scrolls sideways, and measure a cold page
// load (time to first render, bytes transferred) in a fresh context.

// Opens `hash` (on `base`, or in place when base is null) and waits for the
// view to finish: data-route equals the hash and data-state is not loading.
export async function openView(page, base, hash, timeout = 60000) {
  if (base) await page.goto(`${base}/${hash}`);
  else await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForFunction((h) => {
    const v = document.getElementById('view');
    return v && v.dataset.route === h && v.dataset.state !== 'loading';
  }, hash, { timeout });
}

export async function noHorizontalScroll(page) {
  const { sw, w } = await page.evaluate(() => ({ sw: document.documentElement.scrollWidth, w: window.innerWidth }));
  if (sw > w) throw new Error(`the page scrolls sideways at ${w} px: scrollWidth ${sw}`);
}

// A cold load of base/hash: ms from navigation start to the view's first
// render (feature.js sets data-first-render) and to every lazy section done,
// requests and bytes transferred (Resource Timing transferSize: headers +
// encoded body), API bytes, and the largest answer.
export async function measureFeaturePage(browser, base, hash) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const page = await context.newPage();
  try {
    await page.goto(`${base}/${hash}`);
    await page.waitForFunction((h) => document.getElementById('view').dataset.route === h, hash, { timeout: 120000 });
    await page.waitForFunction(() => !document.querySelector('section[data-state=loading]'), null, { timeout: 120000 });
    return await page.evaluate(() => {
      const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
      const api = entries.filter((e) => new URL(e.name).pathname.startsWith('/v1/'));
      const largest = entries.reduce((a, e) => (e.transferSize > (a ? a.transferSize : -1) ? e : a), null);
      return {
        firstRender: Number(document.getElementById('view').dataset.firstRender),
        complete: performance.now(),
        requests: entries.length,
        bytes: entries.reduce((a, e) => a + e.transferSize, 0),
        apiBytes: api.reduce((a, e) => a + e.transferSize, 0),
        largest: largest ? `${new URL(largest.name).pathname} ${largest.transferSize} B` : '',
        // Each request: path, start and end (ms from navigation start), bytes.
        timeline: entries.map((e) => `${new URL(e.name).pathname} ${e.startTime.toFixed(0)}-${e.responseEnd.toFixed(0)} ms ${e.transferSize} B`),
      };
    });
  } finally {
    await context.close();
  }
}
