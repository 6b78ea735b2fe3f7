// Drives the Manage Tokens page in headless Chromium as a person would, against a real
// control plane and a real gateway started by tests/browser.rs, which passes:
//   TOLLGATE_PAGE_URL      the control plane (its /ui page)
//   TOLLGATE_GATEWAY_URL   the gateway's public listener (logs route: POST /?token=…)
//   TOLLGATE_ACCOUNT_ID    the admin's (pro) account, 14 of its 15 tokens enabled
//   TOLLGATE_SHIP_TOKEN    one of its log shipping tokens that stays enabled
//   TOLLGATE_ADMIN_EMAIL / TOLLGATE_ADMIN_PASSWORD
//   TOLLGATE_ARTIFACTS     where screenshots go
// Exits non-zero on the first step that fails, naming it.
import { join } from "node:path";
import { accessible, check, drive, env, step } from "./driver.mjs";

const PAGE = env("TOLLGATE_PAGE_URL");
const GATEWAY = env("TOLLGATE_GATEWAY_URL");
const ACCOUNT = env("TOLLGATE_ACCOUNT_ID");
const ADMIN_EMAIL = env("TOLLGATE_ADMIN_EMAIL");
const ADMIN_PASSWORD = env("TOLLGATE_ADMIN_PASSWORD");
const SHIP_TOKEN = env("TOLLGATE_SHIP_TOKEN");
const USER_EMAIL = "dan@example.com";
const USER_PASSWORD = "dan's long enough password";

/// Polls `probe` until it returns true, for at most `ms`; the time it took.
async function within(ms, what, probe) {
  const started = Date.now();
  for (;;) {
    if (await probe()) { return Date.now() - started; }
    if (Date.now() - started > ms) { throw new Error(`${what}: not within ${ms} ms`); }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function shipLogs(token) {
  const res = await fetch(`${GATEWAY}/?token=${encodeURIComponent(token)}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ message: "hello from the browser test" }) + "\n",
  });
  return res.status;
}

await drive({ permissions: ["clipboard-read", "clipboard-write"] }, async ({ context, page, shot, submits, artifacts }) => {
  const tab = (slug) => `${PAGE}/ui/accounts/${ACCOUNT}/${slug}`;
  const row = (name) => page.locator("tbody tr", { has: page.locator("td.name", { hasText: name }) });
  const alertText = async () => (await page.locator('[role="alert"]').innerText()).trim();

  step("sign in as the admin");
  await page.goto(`${PAGE}/ui`);
  check(page.url().endsWith("/ui/login"), `not sent to the login page: ${page.url()}`);
  await page.getByLabel("Email").fill(ADMIN_EMAIL);
  await page.getByLabel("Password").fill("not the password");
  await submits(() => page.getByRole("button", { name: "Sign in" }).click());
  check((await alertText()).toLowerCase().includes("the email or password is not correct"),
        "a wrong password is refused inline");
  await shot("login");
  await page.getByLabel("Password").fill(ADMIN_PASSWORD);
  await submits(() => page.getByRole("button", { name: "Sign in" }).click());
  await page.waitForURL(tab("logs"));

  step("create a log shipping token: enabled by default");
  await page.getByLabel("Name", { exact: true }).fill("browser-test");
  await submits(() => page.getByRole("button", { name: "+ New log shipping token" }).click());
  check(await row("browser-test").count() === 1, "the new token is listed");
  check(await row("browser-test").getByRole("switch").getAttribute("aria-checked") === "true",
        "the new token is enabled");
  check((await page.locator(".limit .count").innerText()).includes("15 of 15 enabled"), "the limit shows 15 of 15");

  step("rename it in place");
  await row("browser-test").getByRole("link", { name: /Rename/ }).click();
  const renameBox = page.getByLabel(/New name for log shipping token “browser-test”/);
  check(await renameBox.isVisible(), "the rename box opens in the row");
  await renameBox.fill("browser-renamed");
  await submits(() => renameBox.press("Enter"));
  check(await row("browser-renamed").count() === 1, "renamed");

  step("copy the token from the page and ship with it");
  const tokenButton = row("browser-renamed").locator("button.token");
  await tokenButton.click();
  await row("browser-renamed").locator(".copied", { hasText: "Copied" }).waitFor();
  let copied = await page.evaluate(() => navigator.clipboard.readText().catch(() => ""));
  if (!copied) {
    copied = await page.evaluate(() => document.documentElement.getAttribute("data-last-copied"));
    console.log("   (clipboard not readable here: used the text the page copied)");
  }
  check(/^[A-Za-z0-9]{32}$/.test(copied), `copied a token: ${copied}`);
  check(copied === (await tokenButton.getAttribute("data-copy")), "copied the row's token");
  const accepted = await within(2000, "the gateway accepts the copied token", async () => (await shipLogs(copied)) === 200);
  console.log(`   gateway accepted it after ${accepted} ms`);

  step("the plan's limit, in its own words");
  await page.getByLabel("Name", { exact: true }).fill("one-too-many");
  await submits(() => page.getByRole("button", { name: "+ New log shipping token" }).click());
  const limit = await alertText();
  check(limit.toLowerCase().includes("the pro plan allows 15 enabled shipping tokens; disable one first"),
        `limit message: ${limit}`);
  check(limit.includes("tokens/ENABLED_LIMIT"), "the rule's code is shown");
  await shot("logs-limit");

  step("disable it on the page: the gateway refuses it within 2 s");
  await page.goto(tab("logs"));
  await submits(() => row("browser-renamed").getByRole("switch").click());
  check(await row("browser-renamed").getByRole("switch").getAttribute("aria-checked") === "false", "disabled");
  const refused = await within(2000, "the gateway refuses the disabled token", async () => (await shipLogs(copied)) === 401);
  console.log(`   gateway refused it after ${refused} ms`);
  await shot("logs");

  step("delete it, after a confirmation naming it");
  await row("browser-renamed").getByRole("button", { name: /Delete/ }).click();
  const dialog = page.locator("dialog#confirm");
  await dialog.waitFor();
  check((await dialog.innerText()).includes("browser-renamed"), "the confirmation names the token");
  await shot("confirm-delete");
  await submits(() => dialog.getByRole("button", { name: "Delete" }).click());
  check(await row("browser-renamed").count() === 0, "deleted");

  step("a tab for a kind the account doesn't hold says where those tokens live");
  await page.goto(tab("metrics"));
  check((await page.locator(".callout").innerText()).includes("Metrics shipping tokens live in the metrics accounts"), "metrics: where");
  await shot("metrics");
  await page.locator(".callout").getByRole("link", { name: /acme-metrics/ }).click();
  await page.waitForURL(/\/metrics$/);
  check((await page.locator("h2").first().innerText()) === "Metrics shipping tokens", "the metrics account's tokens");
  check((await page.locator(".limit .count").innerText()).includes("1 of 15 enabled"), "its plan limit");
  await shot("metrics-account");

  step("the account switcher lists the tied accounts");
  await page.locator("details.switcher summary").click();
  const offered = await page.locator("details.switcher li").allInnerTexts();
  check(offered.some((t) => t.includes("acme-traces")) && offered.some((t) => t.includes("acme")), `switcher: ${offered}`);
  await page.screenshot({ path: join(artifacts, "switcher.png") });
  await page.keyboard.press("Escape");
  check(!(await page.locator("details.switcher").evaluate((d) => d.open)), "Escape closes the switcher");
  check(await page.locator("details.switcher summary").evaluate((s) => s === document.activeElement),
    "the focus is back on the switcher's button");
  await page.locator("details.switcher summary").click();
  await page.locator("details.switcher li a", { hasText: "acme-traces" }).click();
  await page.waitForURL(/\/traces$/);
  check((await page.locator(".limit .count").innerText()).includes("1 of 15 enabled"), "the tracing account's tokens");

  step("a shared token with a filter");
  await page.goto(tab("shared"));
  await page.getByLabel("Description").fill("test environment");
  await page.getByLabel("Field").fill("env");
  await page.getByLabel("Value").fill("test");
  await submits(() => page.getByRole("button", { name: "+ Add filter" }).click());
  await page.getByText("+ Add shared token").click();
  await page.getByLabel("Token name").fill("status-page");
  await page.locator("details.add").getByLabel(/env: test/).check();
  await submits(() => page.locator("details.add").getByRole("button", { name: "Add", exact: true }).click());
  const shared = row("status-page");
  check((await shared.locator("td.logic").innerText()).includes("env: test"), "its filter logic");
  await page.getByText("+ Add shared token").click();
  await page.getByLabel("Token name").fill("wide-open");
  await submits(() => page.locator("details.add").getByRole("button", { name: "Add", exact: true }).click());
  check((await row("wide-open").innerText()).includes("No filter"), "a token without a filter is flagged");
  await shot("shared");

  step("a shared token's live tail opens from the page, without a login, filtered");
  await page.getByText("+ Add shared token").click();
  await page.getByLabel("Token name").fill("live-demo");
  await page.locator("details.add").getByLabel(/env: test/).check();
  await submits(() => page.locator("details.add").getByRole("button", { name: "Add", exact: true }).click());
  const [tail] = await Promise.all([
    context.waitForEvent("page"),
    row("live-demo").getByRole("link", { name: /Open live tail/ }).click(),
  ]);
  tail.setDefaultTimeout(10_000);
  check(tail.url().startsWith(`${GATEWAY}/tail#token=`), `the gateway's page, the token in the fragment: ${tail.url()}`);
  await tail.locator("#status", { hasText: "Live" }).waitFor();
  check((await tail.locator("#filters").innerText()).includes("env: test"), "the filter it enforces is shown");
  const ship = (lines) => fetch(`${GATEWAY}/?token=${SHIP_TOKEN}&type=web`, {
    method: "POST",
    body: lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
  });
  check((await ship([{ env: "prod", msg: "outside the filter" }, { env: "test", msg: "first match" }])).status === 200, "shipped");
  await tail.locator("#records li", { hasText: "first match" }).waitFor();
  check(await tail.locator("#records li", { hasText: "outside the filter" }).count() === 0, "a record outside the filter is not shown");

  step("pause holds new records back; resume shows them");
  await tail.getByRole("button", { name: "Pause" }).click();
  await tail.locator("#status", { hasText: "Paused" }).waitFor();
  await ship([{ env: "test", msg: "while paused" }]);
  await tail.locator("#counts", { hasText: "1 new while paused" }).waitFor();
  check(await tail.locator("#records li", { hasText: "while paused" }).count() === 0, "held while paused");
  await tail.getByRole("button", { name: "Resume" }).click();
  await tail.locator("#records li", { hasText: "while paused" }).waitFor();
  check((await tail.locator("#account").innerText()) === "acme (account " + ACCOUNT + ")",
    `the account by its name: ${await tail.locator("#account").innerText()}`);
  check(/^\d{4}-\d\d-\d\d \d\d:\d\d UTC \(in (\d+ days|1 day|\d+ h)\)$/.test(await tail.locator("#expires").innerText()),
    `the expiry in UTC, counted as the main page counts it: ${await tail.locator("#expires").innerText()}`);
  await accessible(tail, "the live-tail page");
  await tail.screenshot({ path: join(artifacts, "live-tail.png") });

  step("deleting the token on the page ends its open tail with a clear message");
  await row("live-demo").getByRole("button", { name: /Delete/ }).click();
  await submits(() => page.locator("dialog#confirm").getByRole("button", { name: "Delete" }).click());
  const ended = await within(3000, "the open tail says its token was deleted", async () =>
    (await tail.locator("#message").innerText()).includes("its shared token was deleted"));
  console.log(`   the tail ended ${ended} ms after the delete answered`);
  check((await tail.locator("#status").innerText()).includes("Ended"), "the status says ended");
  await accessible(tail, "the live-tail page, ended");
  await tail.screenshot({ path: join(artifacts, "live-tail-ended.png") });
  await tail.close();

  step("a log drop filter: made on the page, said and focused, switched off, deleted after a confirmation");
  await page.goto(tab("drop-filters"));
  await page.getByLabel("Log type").fill("nginx");
  await page.getByLabel("Field 1", { exact: true }).fill("status");
  await page.getByLabel("Value 1", { exact: true }).fill("500");
  await page.getByLabel("Field 2", { exact: true }).fill("env");
  await page.getByLabel("Value 2", { exact: true }).fill("test");
  await submits(() => page.getByRole("button", { name: "Add log drop filter" }).click());
  const made = page.locator("#flash");
  check((await made.innerText()).includes("Log drop filter “status = 500 AND env = \"test\"” on logs of type nginx created"),
        `the tab says what was made: ${await made.innerText()}`);
  const filterRow = page.locator("table.drop-filters tbody tr").first();
  await page.locator("#announce", { hasText: "created" }).waitFor();
  check(await filterRow.evaluate((r) => r === document.activeElement), "the focus is on the new filter's row");
  check((await filterRow.innerText()).includes("nothing"), "nothing dropped yet today");
  await shot("drop-filters");
  await submits(() => filterRow.getByRole("switch").click());
  check(await filterRow.getByRole("switch").getAttribute("aria-checked") === "false", "deactivated");
  check((await page.locator("#flash").innerText()).includes("deactivated"), "the tab says it");
  await filterRow.getByRole("button", { name: /Delete/ }).click();
  const dropConfirm = page.locator("dialog#confirm");
  await dropConfirm.waitFor();
  check((await dropConfirm.innerText()).includes("These logs stop being dropped"), "the confirmation says what stops being dropped");
  await submits(() => dropConfirm.getByRole("button", { name: "Delete" }).click());
  check((await page.locator("#flash").innerText()).includes("deleted"), "deleted, and said");
  check(await page.locator("#flash").evaluate((f) => f === document.activeElement), "the focus is on the message");

  step("a metrics drop filter on the tied metrics account, from the main account's tab");
  await page.getByRole("link", { name: /acme-metrics's metrics drop filters/ }).click();
  await page.waitForURL(/\/drop-filters$/);
  await page.getByLabel("Name").fill("dev histograms");
  await page.getByLabel("Label 1", { exact: true }).fill("__name__");
  await page.getByLabel("Comparison 1", { exact: true }).selectOption("REGEX_MATCH");
  await page.getByLabel("Value 1", { exact: true }).fill("(unclosed");
  await submits(() => page.getByRole("button", { name: "Add metrics drop filter" }).click());
  const regexRefused = (await page.locator("form#new-metrics-drop-filter [role=alert]").innerText()).trim();
  check(regexRefused.includes("is not a valid regular expression") && regexRefused.includes("drop-filters/INVALID_REGEX"),
        `the API's refusal, in the form: ${regexRefused}`);
  check(await page.getByLabel("Value 1", { exact: true }).inputValue() === "(unclosed", "what was typed is kept");
  const focused = await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 120));
  check(focused.includes(`name="name"`), `the refused form has the focus: ${focused}`);
  await page.getByLabel("Value 1", { exact: true }).fill(".*_bucket");
  await page.getByLabel("Label 2", { exact: true }).fill("env");
  await page.getByLabel("Value 2", { exact: true }).fill("dev");
  await submits(() => page.getByRole("button", { name: "Add metrics drop filter" }).click());
  check((await page.locator("table.drop-filters").innerText()).includes('__name__ =~ ".*_bucket" AND env = "dev"'),
        "the expression, as label matchers");
  await shot("drop-filters-metrics");

  step("a new API token is shown once");
  await page.goto(tab("api"));
  await page.getByLabel("Name", { exact: true }).fill("terraform");
  await submits(() => page.getByRole("button", { name: "+ New API token" }).click());
  const secretBox = page.locator(".callout.secret");
  await secretBox.waitFor();
  check((await secretBox.innerText()).includes("won't be shown again"), "the once-only warning");
  await shot("api");
  // The tab as a phone shows it, for a person to look at.
  await page.setViewportSize({ width: 375, height: 800 });
  await shot("api-phone");
  await page.setViewportSize({ width: 1280, height: 860 });

  step("invite a user; the setup link is shown to hand over");
  await page.goto(tab("users"));
  await page.getByText("+ Invite user").click();
  await page.getByLabel("Email").fill(USER_EMAIL);
  await page.getByLabel("Full name").fill("Dan User");
  await page.getByLabel("Role", { exact: true }).selectOption("user");
  await submits(() => page.getByRole("button", { name: "Invite", exact: true }).click());
  const invite = page.locator(".callout.secret");
  await invite.waitFor();
  const link = await invite.locator("button.token").getAttribute("data-copy");
  check(link && link.includes("/ui/setup/"), `a setup link: ${link}`);
  await shot("users");

  step("sign out; the user sets a password and signs in");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForURL(`${PAGE}/ui/login`);
  await page.goto(link);
  check((await page.locator("main").innerText()).includes(`Set a password for ${USER_EMAIL}`), "the setup page names the user");
  await page.getByLabel("Password", { exact: true }).fill(USER_PASSWORD);
  await page.getByLabel("Confirm password").fill(USER_PASSWORD);
  await shot("setup");
  await page.getByRole("button", { name: "Set password" }).click();
  await page.waitForURL(/\/ui\/login\?ready=1$/);
  await page.getByLabel("Email").fill(USER_EMAIL);
  await page.getByLabel("Password").fill(USER_PASSWORD);
  await submits(() => page.getByRole("button", { name: "Sign in" }).click());
  await page.waitForURL(tab("shared"));
  const tabs = await page.locator("nav.tabs a").allInnerTexts();
  check(tabs.length === 1 && tabs[0] === "Shared tokens", `a user sees only shared tokens: ${tabs}`);
  check(await row("status-page").count() === 1, "the user sees the shared tokens");
  check((await row("status-page").locator("td.logic").innerText()).includes("env: test"), "with their filter logic");
  check(await page.getByRole("button", { name: /Delete/ }).count() === 0, "and can't delete them");
  await shot("user-shared");
});
