//! The API tokens tab: the account's API tokens, a new one's secret shown once (on the
//! page the POST that made it leads to), and deletion. Which accounts may have API tokens is
//! the rule's (`rules::check_may_create_api_token`): the tab shows its sentence instead of
//! the form where it refuses — a community account, or a metrics or tracing account
//! (managed with its main account's tokens).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use maud::{Markup, html};

use super::flash::Secret;
use super::layout::{self, confirm_form, copy_token, csrf_field};
use super::{Ctx, Done, Fields, Notice, PageState, Tab, Visit, act, dates};
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules;
use crate::control::store::api_tokens::ApiToken;
use crate::control::store::users::User;
use crate::control::usecases::api_tokens as usecase;
use crate::control::usecases::users as user_usecases;

pub fn routes() -> Router<PageState> {
    Router::new()
        .route("/accounts/{account}/api/tokens", post(create))
        .route("/accounts/{account}/api/tokens/{id}/delete", post(delete))
}

/// The id of the create form, which a refusal brings back as it was typed.
const NEW_API_TOKEN: &str = "new-api-token";

pub async fn content(ctx: &Ctx<'_>, notice: &Notice) -> Result<Markup, Refusal> {
    let account = ctx.account();
    let refused =
        rules::check_may_create_api_token(account.account_type, account.plan_at(ctx.now_secs()))
            .err();
    let tokens = usecase::list(ctx.cp, ctx.caller).await?;
    // Who made each token, by email where a user of this account did.
    let people = user_usecases::list(ctx.cp, ctx.caller)
        .await
        .unwrap_or_default();
    let main = account
        .owner_id
        .and_then(|main| ctx.reach.iter().find(|a| a.id == main));
    Ok(html! {
        div.section-head {
            div {
                h2 { "API tokens" }
                p.lede {
                    "API tokens authenticate integrations with this account's management API "
                    "(" code { "X-API-TOKEN" } "). Each acts as an admin of the account."
                }
            }
        }
        @if let Notice::ApiToken { name, token } = notice {
            div #flash .callout.secret tabindex="-1" {
                h3 { "API token “" (name) "” created" }
                p { (copy_token(token, &format!("API token “{name}”"))) }
                p.warn {
                    strong { "Copy it now: it won't be shown again." }
                    " tollgate keeps only a digest of it."
                }
            }
        }
        @if let Some(why) = &refused {
            div.callout.info {
                p { strong { (sentence(&why.to_string())) } }
                @if !account.account_type.has_own_api_tokens() {
                    p {
                        "Manage " (account.name) " with an API token of its main account"
                        @if let Some(main) = main {
                            ": " a href=(Tab::Api.url(main.id)) { (main.name) "'s API tokens →" }
                        } @else { "." }
                    }
                }
            }
        } @else {
            form.create id=(NEW_API_TOKEN) method="post" action=(ctx.action("api/tokens")) {
                (csrf_field(ctx.csrf()))
                @let retry = notice.retry_of(NEW_API_TOKEN);
                @if let Some((refusal, _)) = retry { (layout::refusal(refusal)) }
                label for="new-api-token-name" { "Name" }
                input #new-api-token-name type="text" name="name" required maxlength="256"
                    value=[retry.map(|(_, f)| f.get("name"))]
                    placeholder="e.g. terraform" autocomplete="off";
                button.btn.primary type="submit" { "+ New API token" }
            }
        }
        @if tokens.is_empty() {
            @if refused.is_none() { p.empty { "No API tokens yet." } }
        } @else {
            (table(ctx, &tokens, &people))
        }
    })
}

/// The account's API tokens: which is which (name, last characters, who made it), when
/// each was last used, and how to delete it.
fn table(ctx: &Ctx<'_>, tokens: &[ApiToken], people: &[User]) -> Markup {
    html! {
    div.table-wrap {
        table.api-tokens.cards {
            caption.sr-only { "API tokens" }
            thead { tr {
                th scope="col" { "Name" }
                th scope="col" { "Created" }
                th scope="col" { "Last used" }
                th scope="col" { span.sr-only { "Actions" } }
            } }
            tbody {
                @for t in tokens {
                    tr id={ "api-token-" (t.id) } {
                        td.name {
                            (t.name)
                            @if let Some(suffix) = &t.suffix {
                                " " span.muted.suffix title="The token's last characters" { "…" (suffix) }
                            }
                        }
                        td.created data-label="Created" {
                            (layout::time(t.created_at * 1000)) br;
                            span.muted { "by " (layout::who(&t.created_by, people)) }
                        }
                        td.last-used data-label="Last used" {
                            @match t.last_used {
                                Some(s) => {
                                    (layout::time(s * 1000)) br;
                                    span.muted { (dates::ago(s * 1000, ctx.cp.clock.now_ms())) }
                                }
                                None => span.muted { "Never" },
                            }
                        }
                        td.actions {
                            (confirm_form(
                                &ctx.action(&format!("api/tokens/{}/delete", t.id)),
                                ctx.csrf(),
                                "Delete",
                                &format!("Delete API token “{}”", t.name),
                                &format!("Delete the API token “{}”? Integrations that use it stop working at once: update them to another token first.", t.name),
                                &[],
                            ))
                        }
                    }
                }
            }
        }
    }
    }
}

/// A rule's message as a sentence: capitalised, with its full stop.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// Creates a token and goes back to the tab, which shows its secret this once: the
/// secret rides in the flash, never in a URL, and a reload shows the tab without it.
async fn create(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path(account): Path<i64>,
    fields: Fields,
) -> Response {
    let form = Some((NEW_API_TOKEN, &fields));
    act(&cp, &visit, account, Tab::Api, form, async |caller| {
        let created = usecase::create(&cp, caller, fields.get("name")).await?;
        let done = Done::new(
            format!("API token “{}” created", created.name),
            Some(format!("api-token-{}", created.id)),
        );
        Ok(done.with_secret(Secret::ApiToken {
            name: created.name,
            token: created.token,
        }))
    })
    .await
}

async fn delete(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
) -> Response {
    act(&cp, &visit, account, Tab::Api, None, async |caller| {
        let name = usecase::list(&cp, caller)
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .map(|t| t.name);
        usecase::delete(&cp, caller, id).await?;
        let message = match name {
            Some(name) => {
                format!("API token “{name}” deleted: integrations that use it are refused")
            }
            None => "API token deleted".to_string(),
        };
        Ok(Done::new(message, None))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_messages_become_sentences() {
        assert_eq!(
            sentence("API tokens are available on pro and enterprise plans and during a trial"),
            "API tokens are available on pro and enterprise plans and during a trial."
        );
        assert_eq!(
            sentence("metrics accounts have none."),
            "Metrics accounts have none."
        );
    }
}
