// What every browser script shares: its environment, Debian's Chromium in a throwaway
// profile, named steps and checks, screenshots, the Content-Security-Policy watch, and on a
// failure a screenshot of each open page and a non-zero exit naming the step.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export const env = (name) => {
  const value = process.env[name];
  if (!value) { throw new Error(`${name} is not set`); }
  return value;
};

export function step(name) { console.log(`-- ${name}`); }

export function check(condition, message) {
  if (!condition) { throw new Error(message); }
}

/// Runs axe-core (pinned in package.json) on `page` as it is and fails naming each
/// violation, its rule and where. The page's Content-Security-Policy allows only its own
/// scripts, so axe is evaluated through the DevTools protocol rather than added as a
/// <script> (which the policy would block, and the CSP watch would count as a failure).
export async function accessible(page, what) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) {
    await page.evaluate(AXE);
  }
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) =>
      `${v.id} (${v.impact}): ${v.help}\n      ${v.nodes.slice(0, 4).map((n) => n.target.join(" ")).join("\n      ")}`);
  });
  check(found.length === 0, `axe found ${found.length} violation(s) on ${what}:\n   ${found.join("\n   ")}`);
}

/// Whether the page is wider than the window (something pushed off to the side).
export async function overflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

/// Runs `body({ context, page, shot, submits })` in headless Chromium at 1280 × 860 with
/// `options` (e.g. permissions), then exits: 0 after "all steps passed", 1 on a failure.
export async function drive(options, body) {
  const artifacts = env("TOLLGATE_ARTIFACTS");
  mkdirSync(artifacts, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), "tollgate-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1280, height: 860 },
    ...options,
  });
  let failed = false;
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    // The page works within its Content-Security-Policy: anything it blocks is a failure.
    const blocked = [];
    page.on("console", (msg) => {
      if (msg.type() === "error" && /Content Security Policy/i.test(msg.text())) {
        blocked.push(msg.text());
      }
    });
    page.setDefaultTimeout(10_000);
    const shot = async (name) => {
      await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
      writeFileSync(join(artifacts, `${name}.html`), await page.content());
    };
    // A form posts and the answer (a 303 back to the tab, or the tab with a refusal)
    // loads: the URL alone can't tell, it is often the same.
    const submits = async (action) => {
      await Promise.all([page.waitForNavigation({ waitUntil: "load" }), action()]);
    };
    await body({ context, page, shot, submits, artifacts });
    check(blocked.length === 0, `the CSP blocked nothing the page uses: ${blocked.join("; ")}`);
    console.log("all steps passed");
  } catch (e) {
    failed = true;
    console.error(`FAILED: ${e.stack || e}`);
    for (const p of context.pages()) {
      await p.screenshot({ path: join(artifacts, "failure.png"), fullPage: true }).catch(() => {});
      console.error(`   at ${p.url()}`);
    }
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}
