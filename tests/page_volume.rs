//! The Manage Tokens page's Volume tab over HTTP, against the real control plane on
//! SQLite: a main account with a 100 GB plan, a fixed and a flexible sub-account, usage
//! reported as gateways report it (`POST /v1/feed/usage`), days marked capped or past the
//! soft limit, and the sub-accounts' volume settings edited on the page under the API's
//! rules (docs/volume.md, docs/manage-tokens-page.md).

mod common;

use common::control::ControlPlane;
use common::page::{Browser, PASSWORD, Page, utc_date};
use common::volume::{
    ADMIN, Acme, DAY_MS, GB, Mark, acme, mark_day, report_capped, report_usage, sub_account,
    today_ms,
};

const USER: &str = "USER_ROLE_REGULAR";

/// The main account's admin, signed in on the page.
async fn admin<'a>(cp: &'a ControlPlane, acme: &Acme) -> Browser<'a> {
    let (_, link) = cp.create_user(acme.main, "root@example.com", ADMIN).await;
    let mut browser = Browser::new(cp);
    browser.set_password(&link).await;
    browser.sign_in("root@example.com", PASSWORD).await;
    browser
}

/// Posts sub-account `id`'s volume form on the Volume tab `tab`, `typed` as `name=value`
/// words (a field left out is not posted).
async fn post_volume(admin: &mut Browser<'_>, tab: &str, id: i64, typed: &str) -> Page {
    let fields: Vec<(&str, &str)> = typed
        .split_whitespace()
        .map(|field| field.split_once('=').expect("name=value"))
        .collect();
    admin.post(&format!("{tab}/{id}"), &fields).await
}

/// `post_volume`, and the tab its answer (a 303) leads to.
async fn submit_volume(admin: &mut Browser<'_>, tab: &str, id: i64, typed: &str) -> Page {
    let fields: Vec<(&str, &str)> = typed
        .split_whitespace()
        .map(|field| field.split_once('=').expect("name=value"))
        .collect();
    admin.submit(&format!("{tab}/{id}"), &fields).await
}

/// The HTML of `account`'s card on the Volume tab.
fn card(page: &Page, account: i64) -> &str {
    let html = &page.html;
    let start = html
        .find(&format!("id=\"volume-{account}\""))
        .unwrap_or_else(|| panic!("a card for account {account}:\n{html}"));
    let end = html[start..].find("</section>").expect("the card ends") + start;
    &html[start..end]
}

fn assert_shows(html: &str, parts: &[&str]) {
    for part in parts {
        assert!(html.contains(part), "should show {part:?}:\n{html}");
    }
}

fn assert_lacks(html: &str, parts: &[&str]) {
    for part in parts {
        assert!(!html.contains(part), "should not show {part:?}:\n{html}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tab_shows_each_accounts_day_against_its_volume_with_a_chart() {
    let cp = ControlPlane::sqlite().await;
    let acme = acme(&cp).await;
    // Yesterday and today, as gateways report them; the session starts after the clock
    // moved (it would have idled out).
    report_usage(&cp, acme.fixed, 6 * GB).await;
    cp.advance_clock_past(today_ms(&cp) + DAY_MS);
    report_usage(&cp, acme.fixed, 12 * GB).await;
    report_usage(&cp, acme.main, 2_500_000_000).await;
    let mut admin = admin(&cp, &acme).await;
    let tab = format!("/ui/accounts/{}/volume", acme.main);
    let page = admin.get(&tab).await;
    assert_eq!(page.status(), 200, "{}", page.html);
    page.shows(&[
        &format!("href=\"{tab}\" aria-current=\"page\""),
        "Volume",
        "1 GB = 10<sup>9</sup> bytes",
    ]);

    let main = card(&page, acme.main);
    assert_shows(
        main,
        &[
            "acme",
            "2.5 GB",
            " of 50 GB today",
            "5 %",
            "Plan: 100 GB a day",
            "50 GB",
        ],
    );
    let today = utc_date(today_ms(&cp));
    let yesterday = utc_date(today_ms(&cp) - DAY_MS);
    let fixed = card(&page, acme.fixed);
    assert_shows(
        fixed,
        &[
            "acme-eu",
            "Fixed",
            "12 GB",
            " of 30 GB today",
            "40 %",
            "Fixed: 30 GB a day",
            // The chart: a bar per day with its numbers on hover, and the volume's line.
            &format!(
                "<title>{today}: 12 GB (12,000,000,000 bytes), 40 % of the daily volume</title>"
            ),
            &format!(
                "<title>{yesterday}: 6 GB (6,000,000,000 bytes), 20 % of the daily volume</title>"
            ),
            "daily volume 30 GB",
            "role=\"img\"",
            // The same numbers in a table.
            "<caption>Bytes per UTC day of acme-eu, the last 30 days</caption>",
            "<td class=\"num\">12,000,000,000</td>",
            // The main account's admin edits it here.
            "Edit volume settings",
        ],
    );
    assert_eq!(fixed.matches("<g class=\"day\">").count(), 30, "30 days");
    assert_eq!(
        fixed.matches("class=\"bar").count(),
        2,
        "two days had bytes"
    );
    let flexible = card(&page, acme.flexible);
    assert_shows(
        flexible,
        &[
            "acme-us",
            "Flexible",
            "0 GB",
            " of 50 GB today",
            "Flexible: 20 GB reserved, then the shared pool (50 GB), capped at 50 GB.",
        ],
    );
    page.lacks(&["Capped today", "Soft limit crossed today"]);
    assert_lacks(main, &["Edit volume settings"]);

    // A sub-account's own admin sees its own volume only, and edits nothing.
    let (_, link) = cp.create_user(acme.fixed, "eve@example.com", ADMIN).await;
    let mut eve = Browser::new(&cp);
    eve.set_password(&link).await;
    eve.sign_in("eve@example.com", PASSWORD).await;
    let own = eve
        .get(&format!("/ui/accounts/{}/volume", acme.fixed))
        .await;
    assert_eq!(own.status(), 200, "{}", own.html);
    assert_shows(card(&own, acme.fixed), &["12 GB", " of 30 GB today"]);
    own.lacks(&[
        &format!("id=\"volume-{}\"", acme.main),
        "Edit volume settings",
    ]);

    // Other roles have no Volume tab, and the server refuses it.
    let mut user = Browser::signed_in(&cp, acme.main, "dan@example.com", USER).await;
    let refused = user.get(&tab).await;
    refused.refused(
        403,
        "auth/ADMIN_ROLE_REQUIRED",
        "only the account's admins may do this",
    );
    user.get(&format!("/ui/accounts/{}/shared", acme.main))
        .await
        .lacks(&["/volume\""]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_capped_or_past_its_soft_limit_has_a_banner() {
    let cp = ControlPlane::sqlite().await;
    let acme = acme(&cp).await;
    let today = today_ms(&cp);
    report_capped(&cp, acme.fixed).await;
    // Past its 40 GB soft limit: the report marks the day.
    report_usage(&cp, acme.flexible, 41 * GB).await;
    // Yesterday's mark is over: the day turned.
    mark_day(&cp, acme.main, today - DAY_MS, Mark::Capped).await;
    let mut admin = admin(&cp, &acme).await;
    let page = admin
        .get(&format!("/ui/accounts/{}/volume", acme.main))
        .await;
    assert_eq!(page.status(), 200, "{}", page.html);
    let capped = card(&page, acme.fixed);
    assert_shows(
        capped,
        &[
            "class=\"banner capped\" role=\"status\"",
            "Capped today",
            "logs are accepted and not forwarded until 00:00 UTC",
            // When the gateway's report arrived: today, in UTC.
            &format!("<span>{}</span> <span>", utc_date(today)),
            " UTC</span></time>",
        ],
    );
    assert_lacks(capped, &["Soft limit crossed today"]);
    let soft = card(&page, acme.flexible);
    assert_shows(
        soft,
        &[
            "class=\"banner soft\" role=\"status\"",
            "Soft limit crossed today",
            "(40 GB)",
            "nothing is dropped",
        ],
    );
    assert_lacks(soft, &["Capped today"]);
    assert_lacks(
        card(&page, acme.main),
        &["Capped today", "Soft limit crossed today"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_account_volumes_are_edited_under_the_apis_rules() {
    let cp = ControlPlane::sqlite().await;
    let acme = acme(&cp).await;
    let mut admin = admin(&cp, &acme).await;
    let tab = format!("/ui/accounts/{}/volume", acme.main);
    admin.get(&tab).await;

    // A fixed account's volume raised, a soft limit set: what the API reads back.
    let saved = post_volume(
        &mut admin,
        &tab,
        acme.fixed,
        "isFlexible=false maxDailyGB=40 reservedDailyGB= softLimitGB=35.5",
    )
    .await;
    assert_eq!(saved.status(), 303, "{}", saved.html);
    assert_eq!(saved.location(), format!("{tab}#volume-{}", acme.fixed));
    let fixed = sub_account(&cp, &acme, acme.fixed).await;
    assert_eq!(fixed["maxDailyGB"], 40.0, "{fixed}");
    assert_eq!(fixed["softLimitGB"], 35.5, "{fixed}");
    assert_eq!(fixed["isFlexible"], false);
    let page = admin.get(&tab).await;
    page.told("Volume settings of acme-eu saved");
    assert_shows(
        card(&page, acme.fixed),
        &[
            "Fixed: 40 GB a day",
            "Soft limit: 35.5 GB",
            "value=\"35.5\"",
        ],
    );
    // The pool shrank by the 10 GB the fixed account took.
    assert_shows(card(&page, acme.main), &[" of 40 GB today"]);

    // More reserved than the plan has left: the API's refusal, in the account's form,
    // with what was typed kept; nothing changed.
    let over = submit_volume(
        &mut admin,
        &tab,
        acme.flexible,
        "isFlexible=true maxDailyGB=80 reservedDailyGB=70 softLimitGB=",
    )
    .await;
    over.refusal_shown(
        400,
        "volume/OVER_PLAN",
        "reservedDailyGB: the sub-accounts' fixed and reserved volumes would take 110 GB of \
         the main account's 100 GB a day",
    );
    let form = card(&over, acme.flexible);
    assert_shows(
        form,
        &[
            "<details class=\"edit-volume\" open",
            "role=\"alert\"",
            "name=\"maxDailyGB\" value=\"80\"",
            "name=\"reservedDailyGB\" value=\"70\"",
        ],
    );
    let flexible = sub_account(&cp, &acme, acme.flexible).await;
    assert_eq!(flexible["reservedDailyGB"], 20.0, "{flexible}");
    assert_eq!(flexible["maxDailyGB"], 50.0, "{flexible}");

    // Reserved over the cap, and words where a number goes: refused by name too.
    submit_volume(
        &mut admin,
        &tab,
        acme.flexible,
        "isFlexible=true maxDailyGB=50 reservedDailyGB=60",
    )
    .await
    .refusal_shown(
        400,
        "request/INVALID",
        "reservedDailyGB must not be more than maxDailyGB",
    );
    submit_volume(
        &mut admin,
        &tab,
        acme.flexible,
        "isFlexible=true maxDailyGB=lots",
    )
    .await
    .refusal_shown(400, "request/INVALID", "maxDailyGB must be a number of GB")
    .shows(&["value=\"lots\""]);

    // The flexible account's cap raised: it may take more of the pool.
    let raised = post_volume(
        &mut admin,
        &tab,
        acme.flexible,
        "isFlexible=true maxDailyGB=60 reservedDailyGB=20",
    )
    .await;
    assert_eq!(raised.status(), 303, "{}", raised.html);
    assert_eq!(
        sub_account(&cp, &acme, acme.flexible).await["maxDailyGB"],
        60.0
    );
    let page = admin.get(&tab).await;
    assert_shows(
        card(&page, acme.flexible),
        &[
            "then the shared pool (40 GB), capped at 60 GB.",
            " of 60 GB today",
        ],
    );
}
