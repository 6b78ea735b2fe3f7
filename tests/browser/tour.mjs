// Visits every tab of the Manage Tokens page as each role sees it, at 1,280 and 375 px, in
// headless Chromium, against a control plane started by tests/browser.rs with tokens,
// filters and users of every kind and the longest names allowed. It passes:
//   TOLLGATE_PAGE_URL      the control plane (its /ui page)
//   TOLLGATE_ACCOUNT_ID    the main account (admin root@, user bob@, read-only rob@)
//   TOLLGATE_METRICS_ID    its metrics account
//   TOLLGATE_COMMUNITY_ID  a community account with one token (admin cat@)
//   TOLLGATE_LONG_NAME     the 256-character name in each table
//   TOLLGATE_PASSWORD      every user's password
//   TOLLGATE_ARTIFACTS     where screenshots go (tour-<role>-<tab>[-phone].png)
// On each page: axe-core finds no violation, nothing overflows sideways, no table scrolls.
// On the way: a reload or Back after each kind of POST makes nothing twice, the word after
// a change is read out and the focus is on what changed, Back after signing out shows no
// token, and the community account's only token is rotated.
import { accessible, check, drive, env, overflow, step } from "./driver.mjs";

const PAGE = env("TOLLGATE_PAGE_URL");
const ACCOUNT = env("TOLLGATE_ACCOUNT_ID");
const METRICS = env("TOLLGATE_METRICS_ID");
const COMMUNITY = env("TOLLGATE_COMMUNITY_ID");
const LONG = env("TOLLGATE_LONG_NAME");
const PASSWORD = env("TOLLGATE_PASSWORD");
const TABS = ["logs", "metrics", "traces", "api", "shared", "users", "volume", "drop-filters"];

await drive({}, async ({ page, shot, submits }) => {
  const url = (account, slug) => `${PAGE}/ui/accounts/${account}/${slug}`;
  const widths = async (width) => page.setViewportSize({ width, height: width < 500 ? 800 : 860 });

  /// The page as it is, at both widths: accessible, nothing pushed sideways, no table
  /// wider than its box (the longest names wrap in their cells); a screenshot of each.
  const look = async (name) => {
    for (const width of [1280, 375]) {
      await widths(width);
      const over = await overflow(page);
      check(over <= 0, `${name} at ${width} px is ${over} px too wide`);
      const scrolling = await page.evaluate(() =>
        [...document.querySelectorAll(".table-wrap")]
          .filter((w) => !w.closest("details.numbers") && w.scrollWidth > w.clientWidth + 1)
          .map((w) => w.querySelector("caption")?.textContent ?? w.className));
      check(scrolling.length === 0, `${name} at ${width} px: these tables scroll sideways: ${scrolling}`);
      const outside = await page.evaluate(() =>
        [...document.querySelectorAll("td.actions button, td.actions a, td button.switch")]
          .filter((b) => b.getBoundingClientRect().right > window.innerWidth)
          .map((b) => b.getAttribute("aria-label") ?? b.textContent));
      check(outside.length === 0, `${name} at ${width} px: out of reach: ${outside}`);
      await accessible(page, `${name} at ${width} px`);
      await shot(`tour-${name}${width < 500 ? "-phone" : ""}`);
    }
    await widths(1280);
  };
  const signIn = async (email) => {
    await page.goto(`${PAGE}/ui/login`);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await submits(() => page.getByRole("button", { name: "Sign in" }).click());
  };
  const signOut = () => submits(() => page.getByRole("button", { name: "Log out" }).click());
  const flash = async () => (await page.locator("#flash").innerText()).trim();
  /// After a change: the sentence is read out and the focus is on the row it names.
  const saidAndFocused = async (words) => {
    check((await flash()).includes(words), `the tab says "${words}": ${await flash()}`);
    await page.locator("#announce", { hasText: words }).waitFor();
    const focus = await page.locator("#flash").getAttribute("data-focus");
    const on = await page.evaluate(() => document.activeElement?.id);
    check(focus === null ? on === "flash" : on === focus, `the focus is on ${focus ?? "the message"}, not ${on}`);
  };
  /// A reload and Back after a POST send nothing again: `count` is the same after each.
  const reloadAndBackMakeNothing = async (what, count) => {
    const before = await count();
    await page.reload();
    check(await page.locator("#flash").count() === 0, `${what}: a reload shows the tab without the word`);
    check(await count() === before, `${what}: a reload made nothing (${before} → ${await count()})`);
    await page.goBack();
    await page.goForward();
    check(await count() === before, `${what}: Back and Forward made nothing`);
  };

  step("the sign-in page");
  await page.goto(`${PAGE}/ui/login`);
  check(await page.locator("input:user-invalid").count() === 0, "no field is marked wrong before anything is typed");
  await look("login");

  step("an admin: every tab of the main account");
  await signIn("root@example.com");
  for (const slug of TABS) {
    await page.goto(url(ACCOUNT, slug));
    await look(`admin-${slug}`);
  }
  const firstToken = await page.goto(url(ACCOUNT, "logs"))
    .then(() => page.locator("button.token code").first().innerText());
  step("and its metrics account");
  await page.goto(url(METRICS, "metrics"));
  await look("admin-metrics-account");
  await page.goto(url(METRICS, "drop-filters"));
  await look("admin-metrics-drop-filters");

  step("a change is said, read out and focused; a reload or Back makes nothing twice");
  await page.goto(url(ACCOUNT, "logs"));
  const tokenRows = () => page.locator("table.tokens tbody tr").count();
  await page.getByLabel("Name", { exact: true }).fill("tour-made");
  await submits(() => page.getByRole("button", { name: "+ New log shipping token" }).click());
  await saidAndFocused("Log shipping token “tour-made” created and enabled");
  await look("admin-flash");
  await reloadAndBackMakeNothing("a new shipping token", tokenRows);
  await page.getByLabel("Name", { exact: true }).fill(LONG);
  await submits(() => page.getByRole("button", { name: "+ New log shipping token" }).click());
  check((await page.locator("#new-token [role=alert]").innerText()).includes("tokens/DUPLICATE_NAME"),
    "a taken name is refused in the form");
  check(await page.getByLabel("Name", { exact: true }).inputValue() === LONG, "with the name typed kept");
  await look("admin-refused");
  await reloadAndBackMakeNothing("a refused shipping token", tokenRows);

  await page.goto(url(ACCOUNT, "api"));
  const apiRows = () => page.locator("table.api-tokens tbody tr").count();
  await page.getByLabel("Name", { exact: true }).fill("tour-api");
  await submits(() => page.getByRole("button", { name: "+ New API token" }).click());
  check(await page.locator(".callout.secret button.token").count() === 1, "the secret is shown");
  await look("admin-api-secret");
  await reloadAndBackMakeNothing("a new API token", apiRows);
  check(await page.locator(".callout.secret").count() === 0, "the secret is shown once");

  await page.goto(url(ACCOUNT, "users"));
  const userRows = () => page.locator("table.users tbody tr").count();
  await page.getByText("+ Invite user").click();
  await page.getByLabel("Email").fill("tour@example.com");
  await page.getByLabel("Full name").fill("Tour Guide");
  await submits(() => page.getByRole("button", { name: "Invite", exact: true }).click());
  check((await page.locator(".callout.secret").innerText()).includes("Invitation for tour@example.com"), "the setup link");
  await reloadAndBackMakeNothing("an invitation", userRows);

  await page.goto(url(ACCOUNT, "drop-filters"));
  const filterRows = () => page.locator("table.drop-filters tbody tr").count();
  await page.getByText("+ New log drop filter").click();
  await page.getByLabel("Field 1", { exact: true }).fill("env");
  await page.getByLabel("Value 1", { exact: true }).fill("tour");
  await submits(() => page.getByRole("button", { name: "Add log drop filter" }).click());
  await saidAndFocused("created");
  await reloadAndBackMakeNothing("a new drop filter", filterRows);

  await page.goto(url(ACCOUNT, "shared"));
  const sharedRows = () => page.locator("table.filters tbody tr").count();
  await page.getByLabel("Description").fill("tour");
  await page.getByLabel("Field").fill("team");
  await page.getByLabel("Value").fill("tour");
  await submits(() => page.getByRole("button", { name: "+ Add filter" }).click());
  await saidAndFocused("Token filter “team: tour” added");
  await reloadAndBackMakeNothing("a new token filter", sharedRows);

  step("the confirmation dialog");
  await page.locator("table.shared tbody tr").first().getByRole("button", { name: /Delete/ }).click();
  await page.locator("dialog#confirm").waitFor();
  await accessible(page, "the confirmation dialog");
  await page.keyboard.press("Escape");

  step("signed out, Back shows no token");
  await page.goto(url(ACCOUNT, "logs"));
  await signOut();
  await page.goBack();
  check(!(await page.content()).includes(firstToken), "Back after signing out shows no token");
  check(page.url().includes("/ui/login"), `Back after signing out is the sign-in page: ${page.url()}`);

  for (const [role, email] of [["user", "bob@example.com"], ["read-only", "rob@example.com"]]) {
    step(`a ${role} user: the shared tokens, and nothing else`);
    await signIn(email);
    check(page.url().endsWith("/shared"), `lands on shared tokens: ${page.url()}`);
    const tabs = await page.locator("nav.tabs a").allInnerTexts();
    check(tabs.length === 1 && tabs[0] === "Shared tokens", `sees only shared tokens: ${tabs}`);
    await look(`${role}-shared`);
    for (const slug of ["metrics", "traces"]) {
      const answer = await page.goto(url(ACCOUNT, slug));
      check(answer.status() === 403, `${slug} is refused to a ${role} user: ${answer.status()}`);
    }
    await accessible(page, `a ${role} user refused a tab`);
    await signOut();
  }

  step("a community account rotates its only token");
  await signIn("cat@example.com");
  await page.goto(url(COMMUNITY, "logs"));
  check((await page.locator("form.create .hint").innerText()).includes("rotate it"), "the plan's limit says how to replace it");
  const row = page.locator("table.tokens tbody tr").first();
  const before = await row.locator("button.token code").innerText();
  await row.getByRole("button", { name: /Rotate/ }).click();
  const dialog = page.locator("dialog#confirm");
  await dialog.waitFor();
  const asked = await dialog.innerText();
  check(asked.includes(`…${before.slice(-4)}`) && asked.includes("A new token named “default” replaces it"),
    `the confirmation names both: ${asked}`);
  await submits(() => dialog.getByRole("button", { name: "Rotate" }).click());
  const after = await row.locator("button.token code").innerText();
  check(after !== before && /^[A-Za-z0-9]{32}$/.test(after), "a new token");
  await saidAndFocused(`rotated: the new token ends …${after.slice(-4)}`);
  await look("community-logs");
});
