// Drives the dashboard in a real headless Chromium and checks what a user sees against the
// ledger the Rust test seeded. Usage: node dashboard.mjs <config.json>; exits non-zero on the
// first failed check, printing what it saw. Screenshots go to config.screenshots.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
mkdirSync(cfg.screenshots, { recursive: true });
const log = (...a) => console.log("[browser]", ...a);

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  log("ok:", what);
}
async function textOf(page, sel) {
  return (await page.locator(sel).first().textContent()).trim();
}
async function waitText(page, sel, expected, what, timeout = 5000) {
  try {
    await page.waitForFunction(([s, e]) => { const n = document.querySelector(s); return n && n.textContent.trim() === e; }, [sel, expected], { timeout });
  } catch {
    throw new Error(`check failed: ${what}: ${sel} shows ${JSON.stringify(await textOf(page, sel).catch(() => null))}, expected ${JSON.stringify(expected)}`);
  }
  log("ok:", what, "=", expected);
}
async function shot(page, name) {
  await page.screenshot({ path: join(cfg.screenshots, name + ".png"), fullPage: true });
}
async function chat(key) {
  const r = await fetch(cfg.api + "/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + key },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hello from the browser test" }] }),
  });
  await r.text();
  return r.status;
}

const browser = await chromium.launch({ executablePath: cfg.chromium, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("dialog", (d) => d.accept());

  // ---- sign-in ----
  await page.goto(cfg.api + "/dashboard");
  await page.locator("#login").waitFor({ state: "visible" });
  check(await page.locator("main").isHidden(), "no data is shown before signing in");
  await page.fill("#token", "not-the-token");
  await page.click("#login button[type=submit]");
  await page.locator("#login-error").filter({ hasText: "not valid" }).waitFor();
  check(true, "a wrong token is refused with a message");
  await page.fill("#token", cfg.adminToken);
  await page.click("#login button[type=submit]");
  await page.locator("#login").waitFor({ state: "hidden" });
  const cookies = await ctx.cookies();
  const sess = cookies.find((c) => c.name === "ekai_session");
  check(sess && sess.httpOnly && sess.sameSite === "Strict", "the session cookie is httpOnly and SameSite=Strict");
  check(!(await page.evaluate(() => document.cookie)).includes("ekai_session"), "page script cannot read the session cookie");
  check(!(await page.evaluate(() => JSON.stringify(sessionStorage) + JSON.stringify(localStorage))).includes(cfg.adminToken), "the token is not kept in page storage");

  // ---- overview: the seeded totals ----
  const want = cfg.expected;
  await waitText(page, "#k-requests", want.requests, "overview requests");
  await waitText(page, "#k-tokens", want.tokens, "overview tokens");
  await waitText(page, "#k-cost", want.cost, "overview cost");
  await waitText(page, "#k-err", want.errorRate, "overview error rate");
  const provRows = await page.locator("#by-provider .row .name").allTextContents();
  check(JSON.stringify(provRows) === JSON.stringify(want.providers), "cost by provider lists " + want.providers.join(", ") + " (saw " + provRows.join(", ") + ")");
  check(await page.locator("#chart svg rect.bar").count() > 0, "the chart draws bars");
  await shot(page, "overview");

  // ---- budget ----
  await page.fill("#budget-amount", "50");
  await page.click("#budget-form button[type=submit]");
  await page.locator("#budget-view").filter({ hasText: "of $50.0000" }).waitFor();
  const budget = await (await page.request.get(cfg.api + "/budget")).json();
  check(Number(budget.amountUsd) === 50, "the budget set in the UI is the gateway's cap (GET /budget says " + budget.amountUsd + ")");

  // ---- requests ----
  await page.click("nav [data-tab=requests]");
  await page.locator("#req-table tbody tr").first().waitFor();
  const rows = await page.locator("#req-table tbody tr").count();
  check(rows === Number(want.requests), `the requests table shows the ${want.requests} seeded requests (saw ${rows})`);
  await page.locator("#req-table tbody tr").first().click();
  const detail = await page.locator("#detail-body").textContent();
  check(detail.includes('"request_id"'), "a row opens its detail");
  await page.click("#detail button");
  await page.fill("#f-provider", "anthropic");
  await page.click("#req-filters button[type=submit]");
  await page.waitForFunction((n) => document.querySelectorAll("#req-table tbody tr").length === n, want.anthropicRequests);
  check(true, "the provider filter narrows the table to " + want.anthropicRequests + " rows");
  const csvHref = await page.getAttribute("#csv-link", "href");
  const csv = await (await page.request.get(cfg.api + csvHref)).text();
  check(csv.trim().split("\n").length === want.anthropicRequests + 1, "CSV export carries the filtered rows");
  await shot(page, "requests");

  // ---- providers & models ----
  await page.click("nav [data-tab=providers]");
  await page.locator("#providers .card h2", { hasText: "openai" }).waitFor();
  check(true, "the providers page lists openai");
  await page.click("nav [data-tab=models]");
  await page.locator("#models-table tbody tr", { hasText: "gpt-4o-mini" }).first().waitFor();
  check(true, "the models page lists gpt-4o-mini with its price");
  await shot(page, "models");

  // ---- clients: create (key shown once), use, revoke ----
  await page.click("nav [data-tab=clients]");
  await page.locator("#clients-table tbody tr").first().waitFor();
  await page.fill("#c-name", "browser-test-client");
  await page.fill("#c-rpm", "100");
  await page.click("#client-form button[type=submit]");
  await page.locator("#new-key").waitFor({ state: "visible" });
  const key = (await page.locator("#new-key-value").textContent()).trim();
  check(key.startsWith("ek-"), "the new key is shown once (" + key.slice(0, 8) + "…)");
  const row = page.locator("#clients-table tbody tr", { hasText: "browser-test-client" });
  await row.waitFor();
  check((await row.textContent()).includes("100 req/min"), "the client's limits are listed");
  await shot(page, "clients");

  // ---- live: a request through the gateway appears without reload ----
  await page.click("nav [data-tab=live]");
  await page.locator("#live-status", { hasText: "connected" }).waitFor();
  const before = await page.locator("#live-table tbody tr").count();
  const sent = Date.now();
  check((await chat(key)) === 200, "the new client's key works through the gateway");
  await page.waitForFunction((n) => document.querySelectorAll("#live-table tbody tr").length > n, before, { timeout: 5000 });
  const liveMs = Date.now() - sent;
  log("live row appeared after", liveMs, "ms");
  check(liveMs < 2000, "the request appeared live within 2 s (" + liveMs + " ms)");
  await shot(page, "live");

  // revoke from the UI; the key stops working
  await page.click("nav [data-tab=clients]");
  await page.locator("#clients-table tbody tr", { hasText: "browser-test-client" }).getByRole("button", { name: /Revoke/ }).click();
  await page.locator("#clients-table tbody tr", { hasText: "browser-test-client" }).filter({ hasText: "revoked" }).waitFor();
  check((await chat(key)) === 401, "a revoked key is refused");

  // ---- phone width ----
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click("nav [data-tab=overview]");
  await page.locator("#k-requests").waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, "no horizontal scrolling at 390 px (overflow " + overflow + " px)");
  await shot(page, "overview-phone");

  // ---- sign out ----
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.click("#logout");
  await page.locator("#login").waitFor({ state: "visible" });
  const after = await page.request.get(cfg.api + "/admin/stats/overview");
  check(after.status() === 401, "after signing out the session no longer opens the API");

  check(pageErrors.length === 0, "no script errors (" + pageErrors.join("; ") + ")");
  log("all checks passed");
} finally {
  await browser.close();
}
