// Opens every page of the built book in headless Chromium, as a reader
// would, and fails on anything a reader would notice.
//
// Usage: node .ci/browser-check.mjs [target/book]
//
// Serves the built book on loopback (python3 -m http.server on 127.0.0.1),
// then for every chapter in book/SUMMARY.md (and the title page):
// - the page loads with HTTP 200, no script error, no console error and no
//   failed request for any of its own resources;
// - every code listing has text in it (mdBook renders a missing anchor as
//   an empty listing, silently);
// - every image has loaded and has a size;
// - every link that stays in the book leads to a page that answers 200,
//   and every #anchor exists on the page it points to;
// - every image has alt text;
// - each model chapter (chNN-*.html) shows its timeline picture,
//   images/chNN-*-timeline.svg, and the measuring page all of them at
//   one scale (images/chNN-*-timeline-scale.svg);
// and a screenshot of the page's first screen is saved in
// target/browser-check/ (plus, for pages with a diagram, the diagram in
// the dark "navy" theme, and for pages with a timeline picture, the
// picture in the light and navy themes). Finally the search box must
// find "epoll".
//
// Driver: playwright-core (no bundled browser), installed by .ci/run into
// target/ci-tools, driving the system's Chromium ($CHROMIUM, default
// /usr/bin/chromium).
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(repo, "target/ci-tools/package.json"));
const { chromium } = require("playwright-core");

const bookDir = path.resolve(repo, process.argv[2] ?? "target/book");
const shotsDir = path.join(repo, "target/browser-check");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const SEARCH_WORD = "epoll";
// Generous: two cores shared with a cargo build.
const TIMEOUT_MS = 30_000;

// A model chapter's page: the name its timeline picture is drawn under.
const MODEL_PAGE = /^(ch\d\d-[a-z0-9-]+)\.html$/;

const failures = [];
function fail(page, message) {
  failures.push(`${page}: ${message}`);
  console.error(`FAIL ${page}: ${message}`);
}

/// The pages to open: the title page and every chapter SUMMARY.md lists.
function chapterPages() {
  const summary = readFileSync(path.join(repo, "book/SUMMARY.md"), "utf8");
  const pages = ["index.html"];
  for (const match of summary.matchAll(/\]\(([^)]+)\.md\)/g)) {
    pages.push(`${match[1]}.html`);
  }
  return pages;
}

/// The timeline pictures `name` must show, given every page of the book:
/// its own for a model chapter, every model's at one scale for the
/// measuring chapter, none elsewhere.
function expectedTimelines(name, pages) {
  const models = pages
    .map((page) => MODEL_PAGE.exec(page)?.[1])
    .filter(Boolean);
  const own = MODEL_PAGE.exec(name)?.[1];
  if (own) return [`images/${own}-timeline.svg`];
  if (name === "measuring.html") {
    return models.map((model) => `images/${model}-timeline-scale.svg`);
  }
  return [];
}

/// Starts python3's static file server on a free loopback port.
function serve(directory) {
  return new Promise((resolve, reject) => {
    const server = spawn(
      "python3",
      ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
       "--directory", directory],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let seen = "";
    const timer = setTimeout(() => {
      server.kill();
      reject(new Error(`http.server did not start: ${seen}`));
    }, TIMEOUT_MS);
    server.stdout.on("data", (chunk) => {
      seen += chunk;
      const port = /port (\d+)/.exec(seen);
      if (port) {
        clearTimeout(timer);
        resolve({ server, origin: `http://127.0.0.1:${port[1]}` });
      }
    });
    // Request log lines; keep them out of the report.
    server.stderr.on("data", () => {});
    server.on("exit", (code) => reject(new Error(`http.server exited ${code}`)));
  });
}

async function checkPage(context, origin, name, linkCache, timelines) {
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`script error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("requestfailed", (r) => {
    if (r.url().startsWith(origin)) {
      problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
    }
  });
  page.on("response", (r) => {
    if (r.url().startsWith(origin) && r.status() >= 400) {
      problems.push(`HTTP ${r.status()} for ${r.url()}`);
    }
  });

  const response = await page.goto(`${origin}/${name}`, {
    waitUntil: "load",
    timeout: TIMEOUT_MS,
  });
  if (!response || response.status() !== 200) {
    problems.push(`page answered ${response?.status()}`);
  }

  const facts = await page.evaluate(() => {
    const listings = [...document.querySelectorAll("main pre code")];
    const images = [...document.querySelectorAll("main img")];
    const links = [...document.querySelectorAll("a[href]")].map((a) => a.href);
    return {
      title: document.title,
      listings: listings.length,
      empty: listings
        .map((c, i) => [i + 1, c.textContent.trim()])
        .filter(([, text]) => text === "")
        .map(([i]) => i),
      images: images.map((img) => ({
        src: img.getAttribute("src"),
        alt: (img.getAttribute("alt") ?? "").trim(),
        ok: img.complete && img.naturalWidth > 0 && img.naturalHeight > 0,
      })),
      links,
      ids: [...document.querySelectorAll("[id]")].map((e) => e.id),
    };
  });

  for (const i of facts.empty) problems.push(`code listing #${i} is empty`);
  for (const img of facts.images) {
    if (!img.ok) problems.push(`image did not load: ${img.src}`);
    if (!img.alt) problems.push(`image has no alt text: ${img.src}`);
  }
  const shown = new Set(facts.images.map((img) => img.src));
  for (const src of timelines) {
    if (!shown.has(src)) problems.push(`no timeline picture ${src}`);
  }

  // Internal links: the target page must answer 200, and its #anchor must
  // exist. Pages are fetched once and remembered.
  let links = 0;
  for (const href of new Set(facts.links)) {
    if (!href.startsWith(origin)) continue;
    links += 1;
    const url = new URL(href);
    const target = url.origin + url.pathname;
    if (!linkCache.has(target)) {
      const reply = await context.request.get(target);
      const body = reply.ok() ? await reply.text() : "";
      const ids = new Set(
        [...body.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]),
      );
      linkCache.set(target, { status: reply.status(), ids });
    }
    const { status, ids } = linkCache.get(target);
    if (status !== 200) {
      problems.push(`link ${href} answered ${status}`);
    } else if (url.hash && !ids.has(decodeURIComponent(url.hash.slice(1)))) {
      problems.push(`link ${href}: no such anchor`);
    }
  }

  const shot = path.join(shotsDir, name.replace(/\.html$/, ".png"));
  await page.screenshot({ path: shot });
  await page.close();

  for (const p of problems) fail(name, p);
  console.log(
    `${problems.length ? "FAIL" : "ok  "} ${name.padEnd(22)} ` +
      `${facts.listings} listings, ${facts.images.length} images, ` +
      `${links} internal links  "${facts.title}"`,
  );
  return { listings: facts.listings, images: facts.images.length, links };
}

/// Shows the page's first diagram in the dark "navy" theme and saves it,
/// so a person can see that the figures read on a dark page too.
async function darkScreenshot(context, origin, name) {
  const page = await context.newPage();
  await page.addInitScript(() => localStorage.setItem("mdbook-theme", "navy"));
  await page.goto(`${origin}/${name}`, { waitUntil: "load" });
  const figure = page.locator("main img").first();
  await figure.scrollIntoViewIfNeeded();
  const shot = path.join(shotsDir, name.replace(/\.html$/, "-navy.png"));
  await page.screenshot({ path: shot });
  await page.close();
}

/// Shows the page's timeline picture in the light and the navy theme and
/// saves each view, so a person can check that the picture reads on both.
async function timelineScreenshots(context, origin, name, src) {
  for (const theme of ["light", "navy"]) {
    const page = await context.newPage();
    await page.addInitScript(
      (t) => localStorage.setItem("mdbook-theme", t),
      theme,
    );
    await page.goto(`${origin}/${name}`, { waitUntil: "load" });
    const picture = page.locator(`main img[src="${src}"]`).first();
    await picture.scrollIntoViewIfNeeded();
    const stem = name.replace(/\.html$/, "");
    const shot = path.join(shotsDir, `${stem}-timeline-${theme}.png`);
    await page.screenshot({ path: shot });
    await page.close();
  }
}

/// Types the word in mdBook's search box and counts the results shown.
async function checkSearch(context, origin) {
  const page = await context.newPage();
  await page.goto(`${origin}/index.html`, { waitUntil: "load" });
  // "s" opens the search bar, as a reader would press it.
  await page.keyboard.press("s");
  const bar = page.locator("#mdbook-searchbar");
  await bar.waitFor({ state: "visible", timeout: TIMEOUT_MS });
  // mdBook searches on keyup, so type it rather than paste it.
  await bar.pressSequentially(SEARCH_WORD, { delay: 50 });
  const results = page.locator("#mdbook-searchresults li");
  try {
    await results.first().waitFor({ state: "visible", timeout: TIMEOUT_MS });
  } catch {
    // Fall through: counted as zero below.
  }
  const count = await results.count();
  await page.screenshot({ path: path.join(shotsDir, "search.png") });
  await page.close();
  if (count === 0) fail("search", `no results for "${SEARCH_WORD}"`);
  console.log(
    `${count ? "ok  " : "FAIL"} search "${SEARCH_WORD}": ${count} results`,
  );
  return count;
}

async function main() {
  rmSync(shotsDir, { recursive: true, force: true });
  mkdirSync(shotsDir, { recursive: true });
  const { server, origin } = await serve(bookDir);
  const browser = await chromium.launch({
    executablePath,
    timeout: TIMEOUT_MS,
    // As root there is no sandbox; the rest keep Chromium from reaching
    // for the network, which this machine does not have.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  const pages = chapterPages();
  let totals = { listings: 0, images: 0, links: 0 };
  let results = 0;
  try {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
    });
    const linkCache = new Map();
    for (const name of pages) {
      try {
        const timelines = expectedTimelines(name, pages);
        const t = await checkPage(context, origin, name, linkCache, timelines);
        if (t.images > 0) await darkScreenshot(context, origin, name);
        if (timelines.length > 0) {
          await timelineScreenshots(context, origin, name, timelines[0]);
        }
        totals.listings += t.listings;
        totals.images += t.images;
        totals.links += t.links;
      } catch (e) {
        fail(name, `could not check: ${e.message}`);
      }
    }
    try {
      results = await checkSearch(context, origin);
    } catch (e) {
      fail("search", `could not search: ${e.message}`);
    }
  } finally {
    await browser.close();
    server.kill();
  }
  const checks = pages.length + 1;
  const failedChecks = new Set(failures.map((f) => f.split(":")[0])).size;
  console.log(
    `browser check: ${pages.length} pages, ${totals.listings} listings, ` +
      `${totals.images} images, ${totals.links} internal links, ` +
      `${results} search results for "${SEARCH_WORD}"; screenshots in ` +
      `target/browser-check/`,
  );
  console.log(`browser check: ${checks - failedChecks} passed, ` +
    `${failedChecks} failed`);
  process.exit(failures.length ? 1 : 0);
}

main().catch((e) => {
  console.error(`browser check: ${e.stack ?? e}`);
  process.exit(1);
});
