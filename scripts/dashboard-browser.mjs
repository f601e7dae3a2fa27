// Opens the Superset dashboard in a real headless Chromium (Debian's `chromium` package, driven by
// puppeteer-core; no browser is downloaded), logs in, waits until every chart has rendered, and takes a
// PNG screenshot. Used by scripts/demo and by test/analytics/dashboard.test.ts.
//
//   node scripts/dashboard-browser.mjs OUT.png     (SUPERSET_URL, SUPERSET_ADMIN_USER, SUPERSET_ADMIN_PASSWORD)
//
// Prints the screenshot's path; exits 1 when a chart is in error, still loading after the deadline, or
// the image is one flat colour.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import puppeteer from "puppeteer-core";

export const CHROMIUM = process.env.SIMGATE_CHROMIUM ?? "/usr/bin/chromium";

export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (scripts/setup installs Debian's chromium package)`);
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container: no user namespaces for Chromium's sandbox.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"],
    defaultViewport: { width: 1600, height: 1500 },
  });
}

export async function login(page, base, user, password) {
  await page.goto(`${base}/login/`, { waitUntil: "networkidle2", timeout: 60_000 });
  await page.type("input#username, input[name=username]", user);
  await page.type("input#password, input[name=password]", password);
  await Promise.all([
    page.waitForNavigation({ waitUntil: "networkidle2", timeout: 60_000 }),
    page.keyboard.press("Enter"),
  ]);
  if (new URL(page.url()).pathname.startsWith("/login")) throw new Error(`login to ${base} as ${user} failed`);
}

/** The state of every chart on the page: its title, whether it shows a loading spinner, an error, and
 *  what it drew (canvas or svg pixels, table cells). */
export async function chartStates(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('[data-test="dashboard-component-chart-holder"]')].map((holder) => {
      const title = (holder.querySelector(".header-title") ?? holder.querySelector('[data-test="slice-header"]'))?.textContent?.trim() ?? "";
      const loading = holder.querySelector('[data-test="loading-indicator"], .loading, [aria-label="Loading"]') !== null;
      const error = holder.querySelector('.alert-danger, .ant-alert-error, [data-test="error-message"], [role="alert"]');
      const canvases = [...holder.querySelectorAll("canvas")].filter((c) => c.width > 0 && c.height > 0);
      const cells = holder.querySelectorAll("table tbody td").length;
      return { title, loading, error: error ? error.textContent.trim().slice(0, 300) : null, canvases: canvases.length, cells };
    }),
  );
}

/** Waits until `expected` charts are on the page, none loading, each drew something; throws on an error box. */
export async function waitForCharts(page, expected, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  let states = [];
  for (;;) {
    states = await chartStates(page);
    const failed = states.filter((s) => s.error);
    if (failed.length > 0) throw new Error(`charts in error: ${JSON.stringify(failed)}`);
    const rendered = states.filter((s) => !s.loading && (s.canvases > 0 || s.cells > 0));
    if (states.length === expected && rendered.length === expected) return states;
    if (Date.now() > deadline) throw new Error(`charts not rendered within ${timeoutMs} ms: ${JSON.stringify(states)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Distinct colours (sampled) of a PNG below its top eighth (the page header), decoded by the browser
 *  itself: a flat image, or a dashboard whose charts are blank, has a handful. */
export async function distinctColours(page, png) {
  const data = `data:image/png;base64,${Buffer.from(png).toString("base64")}`;
  return page.evaluate(async (src) => {
    const img = new Image();
    img.src = src;
    await img.decode();
    const canvas = document.createElement("canvas");
    canvas.width = img.width;
    canvas.height = img.height;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, img.width, img.height).data;
    const seen = new Set();
    for (let i = 4 * img.width * Math.floor(img.height / 8); i < px.length; i += 4 * 97) seen.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
    return seen.size;
  }, data);
}

/** Logs in, opens the dashboard, waits for its charts, saves a full-page screenshot; returns the states. */
export async function screenshotDashboard({ base, user, password, slug = "parking", expected = 6, out }) {
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await login(page, base, user, password);
    await page.goto(`${base}/superset/dashboard/${slug}/`, { waitUntil: "networkidle2", timeout: 120_000 });
    await waitForCharts(page, expected);
    await new Promise((r) => setTimeout(r, 2000)); // chart animations settle
    // The viewport holds the whole dashboard; a full-page capture resizes it and Superset redraws (blank).
    const png = await page.screenshot({ path: out, type: "png" });
    // The charts must still be drawn once the picture is taken (a re-render would blank them).
    const states = await waitForCharts(page, expected, 1);
    const colours = await distinctColours(page, png);
    if (colours < 32) throw new Error(`the screenshot ${out} is (nearly) flat below its header (${colours} colours): charts not drawn`);
    return { states, colours };
  } finally {
    await browser.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = resolve(process.argv[2] ?? "dashboard.png");
  const base = process.env.SUPERSET_URL ?? "http://127.0.0.1:8088";
  try {
    await screenshotDashboard({ base, user: process.env.SUPERSET_ADMIN_USER ?? "admin", password: process.env.SUPERSET_ADMIN_PASSWORD ?? "", out });
    console.log(out);
  } catch (err) {
    console.error(`dashboard-browser: ${err.message}`);
    process.exit(1);
  }
}
