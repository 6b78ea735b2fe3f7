//! The Users tab (admins): the account's users with their role and state, inviting one
//! (the one-time setup link is shown in the answer to the POST, to hand over), changing a
//! role, suspending and deleting — each through `usecases::users`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use maud::{Markup, html};

use super::layout::{self, badge, confirm_form, copy_token, csrf_field};
use super::{Ctx, Fields, Notice, PageState, Tab, Visit, act, render};
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::store::users::{Role, User};
use crate::control::usecases::users::{self as usecase, NewUser};

pub fn routes() -> Router<PageState> {
    Router::new()
        .route("/accounts/{account}/users/invite", post(invite))
        .route("/accounts/{account}/users/{id}/role", post(set_role))
        .route("/accounts/{account}/users/{id}/active", post(set_active))
        .route("/accounts/{account}/users/{id}/delete", post(delete))
}

const ROLES: [Role; 3] = [Role::Admin, Role::User, Role::ReadOnly];

/// What each role may do, as the invite form explains it.
fn role_help(role: Role) -> &'static str {
    match role {
        Role::Admin => "manages tokens and users",
        Role::User => "sees and uses shared tokens",
        Role::ReadOnly => "sees shared tokens",
    }
}

pub async fn content(ctx: &Ctx<'_>, notice: &Notice) -> Result<Markup, Refusal> {
    let users = usecase::list(ctx.cp, ctx.caller).await?;
    let me = ctx.visit.session.user.id;
    Ok(html! {
        div.section-head {
            div {
                h2 { "Users" }
                p.lede {
                    "People who sign in to this account. Admins manage tokens and users; "
                    "other roles see the shared tokens."
                }
            }
        }
        @if let Notice::Invited { email, link } = notice {
            div.callout.secret role="status" {
                h3 { "Invitation for " (email) }
                p { "Hand this one-time link to " (email) " to set a password:" }
                p { (copy_token(link, &format!("the setup link for {email}"))) }
                p.warn { strong { "It is shown only now" } " and works once." }
            }
        }
        details.add {
            summary.btn.primary { "+ Invite user" }
            form.stacked method="post" action=(ctx.action("users/invite")) {
                (csrf_field(ctx.csrf()))
                div.field {
                    label for="invite-email" { "Email" }
                    input #invite-email type="email" name="email" required autocomplete="off";
                }
                div.field {
                    label for="invite-name" { "Full name" }
                    input #invite-name type="text" name="full_name" required maxlength="256" autocomplete="off";
                }
                div.field {
                    label for="invite-role" { "Role" }
                    select #invite-role name="role" {
                        @for role in ROLES {
                            option value=(role.as_str()) selected[role == Role::User] {
                                (role.as_str()) " — " (role_help(role))
                            }
                        }
                    }
                }
                div.buttons { button.btn.primary type="submit" { "Invite" } }
            }
        }
        div.table-wrap {
            table.users {
                caption.sr-only { "Users" }
                thead { tr {
                    th scope="col" { "Email" }
                    th scope="col" { "Name" }
                    th scope="col" { "Role" }
                    th scope="col" { "Status" }
                    th scope="col" { span.sr-only { "Actions" } }
                } }
                tbody {
                    @for u in &users { (row(ctx, u, u.id == me)) }
                }
            }
        }
    })
}

fn row(ctx: &Ctx<'_>, u: &User, is_me: bool) -> Markup {
    let base = format!("users/{}", u.id);
    html! {
        tr id={ "user-" (u.id) } .disabled[!u.active] {
            td {
                (u.email)
                @if is_me { " " (badge("muted", "you")) }
            }
            td { @if u.full_name.is_empty() { span.muted { "—" } } @else { (u.full_name) } }
            td {
                form.inline method="post" action=(ctx.action(&format!("{base}/role"))) {
                    (csrf_field(ctx.csrf()))
                    label.sr-only for={ "role-" (u.id) } { "Role of " (u.email) }
                    select id={ "role-" (u.id) } name="role" {
                        @for role in ROLES {
                            option value=(role.as_str()) selected[role == u.role] { (role.as_str()) }
                        }
                    }
                    button.btn.ghost.small type="submit" { "Save" }
                }
            }
            td {
                @if !u.active { (badge("muted", "Suspended")) }
                @else if !u.has_password { (badge("info", "Invited")) }
                @else { (badge("ok", "Active")) }
                " "
                span.muted { "since " (layout::time(u.created_at * 1000)) }
            }
            td.actions {
                form.inline method="post" action=(ctx.action(&format!("{base}/active"))) {
                    (csrf_field(ctx.csrf()))
                    input type="hidden" name="active" value=(if u.active { "false" } else { "true" });
                    button.btn.ghost.small type="submit" {
                        @if u.active { "Suspend" } @else { "Unsuspend" }
                    }
                }
                (confirm_form(
                    &ctx.action(&format!("{base}/delete")),
                    ctx.csrf(),
                    "Delete",
                    &format!("Delete user {}", u.email),
                    &format!("Delete the user {}? They are signed out and can't sign in again.", u.email),
                    &[],
                ))
            }
        }
    }
}

fn role(fields: &Fields) -> Result<Role, Refusal> {
    Role::parse(fields.get("role"))
        .ok_or_else(|| Refusal::invalid("role must be admin, user or read-only"))
}

async fn invite(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path(account): Path<i64>,
    fields: Fields,
) -> Response {
    let caller = match visit.session.caller(&cp, account).await {
        Ok(caller) => caller,
        Err(e) => return super::unreachable_account(&cp, &visit, e).await,
    };
    let invited = match role(&fields) {
        Ok(role) => {
            let new = NewUser {
                email: fields.get("email").trim(),
                full_name: fields.get("full_name").trim(),
                role,
            };
            usecase::invite(&cp, &caller, &new).await
        }
        Err(e) => Err(e),
    };
    // The link goes in this answer, never in a redirect's URL.
    let notice = match invited {
        Ok(invited) => Notice::Invited {
            email: invited.user.email,
            link: invited.setup_url,
        },
        Err(e) => e.into(),
    };
    render(&cp, &visit, &caller, Tab::Users, None, notice).await
}

async fn set_role(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
    fields: Fields,
) -> Response {
    act(&cp, &visit, account, Tab::Users, async |caller| {
        usecase::update(&cp, caller, id, None, Some(role(&fields)?)).await?;
        Ok(())
    })
    .await
}

async fn set_active(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
    fields: Fields,
) -> Response {
    act(&cp, &visit, account, Tab::Users, async |caller| {
        let active = match fields.get("active") {
            "true" => true,
            "false" => false,
            _ => return Err(Refusal::invalid("active must be true or false")),
        };
        usecase::set_active(&cp, caller, id, active).await?;
        Ok(())
    })
    .await
}

async fn delete(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
) -> Response {
    act(&cp, &visit, account, Tab::Users, async |caller| {
        usecase::delete(&cp, caller, id).await
    })
    .await
}
