// Drives the Manage Tokens page's Volume tab in headless Chromium, against a control plane
// started by tests/browser.rs with a month of usage, which passes:
//   TOLLGATE_PAGE_URL      the control plane (its /ui page)
//   TOLLGATE_ACCOUNT_ID    the main account (100 GB a day)
//   TOLLGATE_FIXED_ID      its fixed sub-account (30 GB, capped today)
//   TOLLGATE_FLEXIBLE_ID   its flexible sub-account (20 GB reserved, cap 50, past its soft
//                          limit today)
//   TOLLGATE_ADMIN_EMAIL / TOLLGATE_ADMIN_PASSWORD   the main account's admin
//   TOLLGATE_ARTIFACTS     where screenshots go
// Exits non-zero on the first step that fails, naming it.
import { check, drive, env, step } from "./driver.mjs";

const PAGE = env("TOLLGATE_PAGE_URL");
const ACCOUNT = env("TOLLGATE_ACCOUNT_ID");
const FIXED = env("TOLLGATE_FIXED_ID");
const FLEXIBLE = env("TOLLGATE_FLEXIBLE_ID");
const ADMIN_EMAIL = env("TOLLGATE_ADMIN_EMAIL");
const ADMIN_PASSWORD = env("TOLLGATE_ADMIN_PASSWORD");

await drive({}, async ({ page, shot, submits }) => {
  const tab = `${PAGE}/ui/accounts/${ACCOUNT}/volume`;
  const card = (id) => page.locator(`#volume-${id}`);
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

  step("sign in as the main account's admin and open the Volume tab");
  await page.goto(`${PAGE}/ui/login`);
  await page.getByLabel("Email").fill(ADMIN_EMAIL);
  await page.getByLabel("Password").fill(ADMIN_PASSWORD);
  await submits(() => page.getByRole("button", { name: "Sign in" }).click());
  await page.getByRole("link", { name: "Volume", exact: true }).click();
  await page.waitForURL(tab);
  check(await page.locator(".volume-card").count() === 3, "the main account and its two sub-accounts");
  check((await card(ACCOUNT).innerText()).includes("of 50 GB today"), "the main account draws on the 50 GB pool");
  check((await card(FIXED).innerText()).includes("30 GB of 30 GB today"), "the fixed account's day against its volume");

  step("the day's banners say what happened, in words");
  const capped = card(FIXED).getByRole("status");
  check((await capped.innerText()).includes("Capped today — logs are accepted and not forwarded until 00:00 UTC"),
        `the capped banner: ${await capped.innerText()}`);
  const soft = card(FLEXIBLE).getByRole("status");
  check((await soft.innerText()).includes("Soft limit crossed today (40 GB)"), `the soft-limit banner: ${await soft.innerText()}`);
  check(await card(ACCOUNT).getByRole("status").count() === 0, "no banner on the main account");

  step("each chart has a bar per day with its numbers, and a table of them");
  const bars = card(FIXED).locator("svg.chart g.day");
  check(await bars.count() === 30, "30 days");
  const last = await bars.last().locator("title").textContent();
  check(last.includes("30 GB (30,000,000,000 bytes), 100 % of the daily volume"), `today's bar: ${last}`);
  await card(FIXED).getByText("Daily numbers").click();
  const rows = card(FIXED).locator("details.numbers tbody tr");
  check(await rows.count() === 30, "30 rows");
  check((await rows.first().innerText()).includes("30,000,000,000"), "today first in the table");
  await card(FIXED).getByText("Daily numbers").click();
  await shot("volume");

  step("at 375 px nothing overflows sideways");
  await page.setViewportSize({ width: 375, height: 800 });
  check(await overflow() <= 0, `the page overflows by ${await overflow()} px`);
  await shot("volume-phone");
  await page.setViewportSize({ width: 1280, height: 860 });

  step("raise the flexible account's cap");
  await card(FLEXIBLE).getByText("Edit volume settings").click();
  await card(FLEXIBLE).getByLabel("Max daily GB").fill("45");
  await submits(() => card(FLEXIBLE).getByRole("button", { name: "Save" }).click());
  check(page.url().endsWith(`/volume#volume-${FLEXIBLE}`), `back on the tab at the account: ${page.url()}`);
  check((await card(FLEXIBLE).locator(".terms").innerText()).includes("capped at 45 GB"), "the new cap");

  step("reserve more than the plan has left: refused, what was typed kept");
  await card(FLEXIBLE).getByText("Edit volume settings").click();
  await card(FLEXIBLE).getByLabel("Max daily GB").fill("80");
  await card(FLEXIBLE).getByLabel("Reserved daily GB").fill("75");
  await submits(() => card(FLEXIBLE).getByRole("button", { name: "Save" }).click());
  const alert = card(FLEXIBLE).getByRole("alert");
  const said = (await alert.innerText()).trim();
  check(said.includes("would take 105 GB of the main account's 100 GB a day") && said.includes("volume/OVER_PLAN"),
        `the refusal: ${said}`);
  check(await card(FLEXIBLE).getByLabel("Reserved daily GB").inputValue() === "75", "the reserved volume typed is kept");
  check(await card(FLEXIBLE).getByLabel("Max daily GB").inputValue() === "80", "the cap typed is kept");
  check(await page.evaluate(() => document.activeElement?.name) === "maxDailyGB", "the form has the focus");
  await card(FLEXIBLE).scrollIntoViewIfNeeded();
  await shot("volume-refused");
});
