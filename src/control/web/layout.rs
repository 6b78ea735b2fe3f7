//! The frame every page shares (header with the account switcher and sign-out, the
//! tabs, the notice) and the small widgets the tabs reuse: a token that copies itself,
//! a form that asks for confirmation, the CSRF field every form carries.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{BASE, Notice, PageRefusal, Tab, Visit, assets, dates};
use crate::control::refusal::Refusal;
use crate::control::rules::AccountType;
use crate::control::store::accounts::Account;
use crate::control::store::users::User;

/// Who is looking at which account, on which tab.
pub struct Frame<'a> {
    pub visit: &'a Visit,
    pub account: &'a Account,
    /// `None` on a page that isn't a tab (an account the session doesn't reach).
    pub tab: Option<Tab>,
    /// The accounts the switcher offers (the home account first).
    pub reach: &'a [Account],
}

/// The HTML document around `body`.
pub fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · tollgate" }
                link rel="icon" href=(assets::icon_url()) type="image/svg+xml";
                link rel="stylesheet" href=(assets::css_url());
                script src=(assets::js_url()) defer {}
            }
            body { (body) }
        }
    }
}

/// A page outside the account frame: the brand and one card.
pub fn card_page(title: &str, body: Markup) -> Markup {
    document(
        title,
        html! {
            main #main.center {
                div.card {
                    p.brand.big { span.logo aria-hidden="true" { "◆" } "tollgate" }
                    (body)
                }
            }
        },
    )
}

/// A form whose CSRF token is not this browser's (a stale copy, another site's): 403, as a
/// page a person can act on.
pub fn form_expired(refusal: &Refusal) -> Markup {
    card_page(
        "Form expired",
        html! {
            h1 { "This form has expired" }
            div.alert.error role="alert" data-code=(refusal.code()) {
                p.message { (refusal) }
                p.code { "Refused (403) · " code { (refusal.code()) } }
            }
            p { "Nothing was changed." }
            div.buttons { a.btn.primary.wide href=(BASE) { "Back to Manage tokens" } }
        },
    )
}

/// A signed-in page: header, title, tabs, the notice, then `content`.
pub fn page(frame: &Frame, notice: &Notice, content: Markup) -> Markup {
    let user = &frame.visit.session.user;
    let title = frame.tab.map_or("Manage tokens", Tab::label);
    document(
        title,
        html! {
            a.skip href="#main" { "Skip to content" }
            header.topbar {
                a.brand href=(BASE) { span.logo aria-hidden="true" { "◆" } "tollgate" }
                (switcher(frame))
                div.me {
                    span.who {
                        span.email { (user.email) }
                        span.role { (user.role.as_str()) }
                    }
                    form method="post" action={ (BASE) "/logout" } {
                        (csrf_field(&frame.visit.csrf))
                        button.btn.ghost.small type="submit" { "Log out" }
                    }
                }
            }
            main #main {
                div.pagehead {
                    h1 { "Manage tokens" }
                    p.account-line { (account_line(frame.account)) }
                }
                nav.tabs aria-label="Token types" {
                    @for tab in Tab::ALL {
                        @if tab.shown_to(user.role) {
                            a href=(tab.url(frame.account.id))
                                aria-current=[(frame.tab == Some(tab)).then_some("page")]
                                { (tab.label()) }
                        }
                    }
                }
                section.panel {
                    (notice_box(notice, &content))
                    (content)
                }
            }
            // Filled by the script after load with what the last change did: a live region
            // announces a change, not what a page is loaded with.
            p #announce .sr-only role="status" aria-live="polite"
                data-say=[announcement(notice)] {}
            (confirm_dialog())
        },
    )
}

/// What the POST that led here did, at the top of the tab. The script moves the focus to
/// the element `data-focus` names (the row changed, the form refused), else to the box.
fn notice_box(notice: &Notice, content: &Markup) -> Markup {
    match notice {
        Notice::Done { message, focus } => html! {
            div #flash .alert.ok tabindex="-1" data-focus=[focus] {
                p.message { (message) }
            }
        },
        Notice::Refused(r) => html! {
            div #flash tabindex="-1" { (refusal(r)) }
        },
        // The tab shows the refusal in the form; one that is no longer there, here.
        Notice::Retry {
            refusal: r, form, ..
        } => {
            if content.0.contains(&format!("id=\"{form}\"")) {
                html! { div #flash hidden data-focus=(form) {} }
            } else {
                html! { div #flash tabindex="-1" { (refusal(r)) } }
            }
        }
        Notice::None | Notice::ApiToken { .. } | Notice::Invited { .. } => html! {},
    }
}

/// What the live region says once the page has loaded.
fn announcement(notice: &Notice) -> Option<String> {
    match notice {
        Notice::Done { message, .. } => Some(message.clone()),
        Notice::ApiToken { name, .. } => Some(format!(
            "API token “{name}” created. Copy it now: it won't be shown again."
        )),
        Notice::Invited { email, .. } => Some(format!(
            "A setup link for {email} is shown once: hand it over now."
        )),
        Notice::None | Notice::Refused(_) | Notice::Retry { .. } => None,
    }
}

/// "Acme — main log management account · pro plan · account 12".
fn account_line(account: &Account) -> Markup {
    html! {
        strong { (account.name) }
        " — " (account_kind(account))
        " · " (account.plan.as_str()) " plan"
        @if let Some(end) = account.trial_ends_at {
            " (trial until " (dates::secs(end)) ")"
        }
        span.muted { " · account " (account.id) }
    }
}

/// What an account is, in the documentation's words.
pub fn account_kind(account: &Account) -> &'static str {
    match (account.account_type, account.is_main()) {
        (AccountType::Logs, true) => "main log management account",
        (AccountType::Logs, false) => "log management sub-account",
        (AccountType::Metrics, _) => "metrics account",
        (AccountType::Tracing, _) => "tracing account",
        (AccountType::Security, _) => "security account",
    }
}

/// The header's account menu: links to the same tab in each account the session reaches
/// (a `<details>` menu: keyboard-operable without script).
fn switcher(frame: &Frame) -> Markup {
    let current = frame.account;
    // The same tab in the other account, but each account's own shipping tokens.
    let tab = frame.tab.filter(|t| {
        t.shown_to(frame.visit.session.user.role)
            && !matches!(t, Tab::Logs | Tab::Metrics | Tab::Traces)
    });
    html! {
        @if frame.reach.len() > 1 {
            details.switcher {
                summary {
                    span.muted { "Account" } " " strong { (current.name) }
                    span.sr-only { ": switch account" }
                }
                ul role="list" {
                    @for a in frame.reach {
                        li {
                            a href=(tab.unwrap_or_else(|| default_tab(a)).url(a.id))
                                aria-current=[(a.id == current.id).then_some("true")] {
                                span.name { (a.name) }
                                span.kind { (account_kind(a)) " · " (a.id) }
                            }
                        }
                    }
                }
            }
        } @else {
            span.switcher.single {
                span.muted { "Account" } " " strong { (current.name) }
            }
        }
    }
}

/// An account's own shipping tab.
pub fn default_tab(account: &Account) -> Tab {
    Tab::of_kind(account.account_type.shipping_kind())
}

/// A refusal where the person acted: the rule's sentence, its code in small text.
pub fn refusal(r: &PageRefusal) -> Markup {
    html! {
        div.alert.error role="alert" data-code=(r.code) {
            p.message { (r.message) }
            p.code { "Refused (" (r.status.as_u16()) ") · " code { (r.code) } }
        }
    }
}

/// The hidden field `session::layer` checks on every POST.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A secret shown as a button that copies it; the confirmation appears beside it.
pub fn copy_token(secret: &str, what: &str) -> Markup {
    html! {
        span.copy-wrap {
            button.token type="button" data-copy=(secret) title="Click to copy" {
                span.sr-only { "Copy " (what) ": " }
                code { (secret) }
                (copy_icon())
            }
            span.copied role="status" aria-live="polite" {}
        }
    }
}

/// Two overlapping sheets: "copy" (drawn, so it doesn't depend on the fonts installed).
fn copy_icon() -> Markup {
    PreEscaped(
        r#"<svg class="copy-icon" aria-hidden="true" width="14" height="14" viewBox="0 0 16 16" fill="none" stroke="currentColor" stroke-width="1.5"><rect x="5.5" y="5.5" width="8" height="8" rx="1.5"/><path d="M10.5 3.5v-1a1 1 0 0 0-1-1h-6a1 1 0 0 0-1 1v6a1 1 0 0 0 1 1h1"/></svg>"#
            .to_string(),
    )
}

/// A one-button form that asks "`question`" in a dialog before posting (plain JavaScript;
/// without it the form posts at once). `details` lines are listed under the question.
pub fn confirm_form(
    action: &str,
    csrf: &str,
    label: &str,
    aria_label: &str,
    question: &str,
    details: &[String],
) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=(question)
            data-confirm-button=(label)
            data-confirm-details=[(!details.is_empty()).then(|| details.join("\n"))] {
            (csrf_field(csrf))
            button.btn.danger.small type="submit" aria-label=(aria_label) { (label) }
        }
    }
}

/// The one confirmation dialog the script fills in for each `data-confirm` form.
fn confirm_dialog() -> Markup {
    html! {
        dialog #confirm aria-labelledby="confirm-title" {
            form method="dialog" {
                h2 #confirm-title { "Are you sure?" }
                p #confirm-question {}
                ul #confirm-details {}
                div.buttons {
                    button.btn.ghost value="cancel" autofocus { "Cancel" }
                    button.btn.danger #confirm-ok value="ok" { "Delete" }
                }
            }
        }
    }
}

/// A `<time>` with the instant for machines and the UTC date and time for people.
pub fn time(ms: i64) -> Markup {
    let text = dates::date_time(ms);
    // Date and time of day each stay whole; a narrow column breaks between them.
    let (day, at) = text.split_once(' ').unwrap_or((&text, ""));
    html! { time datetime=(dates::iso(ms)) { span { (day) } " " span { (at) } } }
}

/// A short labelled badge: `kind` is one of the CSS variants (ok, warn, muted, info).
pub fn badge(kind: &str, text: &str) -> Markup {
    html! { span class={ "badge " (kind) } { (text) } }
}

/// `createdBy` as a person reads it: the operator, a user's email, an API token.
pub fn who(label: &str, people: &[User]) -> String {
    if label == "admin" {
        return "the operator".into();
    }
    if let Some(id) = label
        .strip_prefix("user:")
        .and_then(|i| i.parse::<i64>().ok())
    {
        return people
            .iter()
            .find(|u| u.id == id)
            .map_or_else(|| format!("user {id}"), |u| u.email.clone());
    }
    if let Some(id) = label.strip_prefix("api-token:") {
        return format!("API token {id}");
    }
    label.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_by_labels_read_as_people() {
        assert_eq!(who("admin", &[]), "the operator");
        assert_eq!(who("api-token:7", &[]), "API token 7");
        assert_eq!(who("user:3", &[]), "user 3");
    }
}
