//! The Users tab (admins): the account's users with their role and state, inviting one
//! (the one-time setup link is shown once, on the page the POST leads to, to hand over),
//! changing a role, suspending, a new setup link for a user who lost theirs, and deleting —
//! each through `usecases::users`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use maud::{Markup, html};

use super::flash::Secret;
use super::layout::{self, badge, confirm_form, copy_token, csrf_field};
use super::{Ctx, Done, Fields, Notice, PageState, Tab, Visit, act};
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::store::users::{Role, User};
use crate::control::usecases::users::{self as usecase, NewUser};

pub fn routes() -> Router<PageState> {
    Router::new()
        .route("/accounts/{account}/users/invite", post(invite))
        .route("/accounts/{account}/users/{id}/role", post(set_role))
        .route("/accounts/{account}/users/{id}/active", post(set_active))
        .route(
            "/accounts/{account}/users/{id}/setup-link",
            post(setup_link),
        )
        .route("/accounts/{account}/users/{id}/delete", post(delete))
}

const ROLES: [Role; 3] = [Role::Admin, Role::User, Role::ReadOnly];

/// The id of the invite form, which a refusal brings back as it was typed.
const INVITE: &str = "invite";

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
    let retry = notice.retry_of(INVITE);
    let typed = |name: &str| retry.map(|(_, f)| f.get(name).to_string());
    let role_typed = retry.and_then(|(_, f)| Role::parse(f.get("role")));
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
        @if let Notice::Invited { email, link, reissued } = notice {
            div #flash .callout.secret tabindex="-1" {
                h3 { @if *reissued { "New setup link for " } @else { "Invitation for " } (email) }
                p { "Hand this one-time link to " (email) " to set a password:" }
                p { (copy_token(link, &format!("the setup link for {email}"))) }
                p.warn { strong { "It is shown only now" } " and works once." }
            }
        }
        details.add open[retry.is_some()] {
            summary.btn.primary { "+ Invite user" }
            form.stacked id=(INVITE) method="post" action=(ctx.action("users/invite")) {
                (csrf_field(ctx.csrf()))
                @if let Some((refusal, _)) = retry { (layout::refusal(refusal)) }
                div.field {
                    label for="invite-email" { "Email" }
                    input #invite-email type="email" name="email" required autocomplete="off"
                        value=[typed("email")];
                }
                div.field {
                    label for="invite-name" { "Full name" }
                    input #invite-name type="text" name="full_name" required maxlength="256"
                        autocomplete="off" value=[typed("full_name")];
                }
                div.field {
                    label for="invite-role" { "Role" }
                    select #invite-role name="role" {
                        @for role in ROLES {
                            option value=(role.as_str())
                                selected[role == role_typed.unwrap_or(Role::User)] {
                                (role.as_str()) " — " (role_help(role))
                            }
                        }
                    }
                }
                div.buttons { button.btn.primary type="submit" { "Invite" } }
            }
        }
        div.table-wrap {
            table.users.cards {
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
            td.name {
                (u.email)
                @if is_me { " " (badge("muted", "you")) }
            }
            td.full-name data-label="Name" { @if u.full_name.is_empty() { span.muted { "—" } } @else { (u.full_name) } }
            td.role data-label="Role" {
                form.inline method="post" action=(ctx.action(&format!("{base}/role"))) {
                    (csrf_field(ctx.csrf()))
                    label.sr-only for={ "role-" (u.id) } { "Role of " (u.email) }
                    select id={ "role-" (u.id) } name="role" {
                        @for role in ROLES {
                            option value=(role.as_str()) selected[role == u.role] { (role.as_str()) }
                        }
                    }
                    button.btn.ghost.small type="submit" aria-label={ "Save the role of " (u.email) } { "Save" }
                }
            }
            td.status data-label="Status" {
                @if !u.active { (badge("muted", "Suspended")) }
                @else if !u.has_password { (badge("info", "Invited")) }
                @else { (badge("ok", "Active")) }
                br;
                span.muted { "added " (layout::time(u.created_at * 1000)) }
            }
            td.actions {
                form.inline method="post" action=(ctx.action(&format!("{base}/active"))) {
                    (csrf_field(ctx.csrf()))
                    input type="hidden" name="active" value=(if u.active { "false" } else { "true" });
                    button.btn.ghost.small type="submit"
                        aria-label={ (if u.active { "Suspend " } else { "Unsuspend " }) (u.email) } {
                        @if u.active { "Suspend" } @else { "Unsuspend" }
                    }
                }
                @if !is_me {
                    form.inline method="post" action=(ctx.action(&format!("{base}/setup-link")))
                        data-confirm={ "Make a new setup link for " (u.email) "? Their current link stops working and they are signed out until they set a password with the new one." }
                        data-confirm-button="Make link" {
                        (csrf_field(ctx.csrf()))
                        button.btn.ghost.small type="submit" aria-label={ "New setup link for " (u.email) } { "New setup link" }
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

fn row_id(id: i64) -> Option<String> {
    Some(format!("user-{id}"))
}

/// Invites a user and goes back to the tab, which shows the one-time setup link this
/// once (in the flash, never in a URL).
async fn invite(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path(account): Path<i64>,
    fields: Fields,
) -> Response {
    let form = Some((INVITE, &fields));
    act(&cp, &visit, account, Tab::Users, form, async |caller| {
        let new = NewUser {
            email: fields.get("email").trim(),
            full_name: fields.get("full_name").trim(),
            role: role(&fields)?,
        };
        let invited = usecase::invite(&cp, caller, &new).await?;
        let done = Done::new(
            format!(
                "{} invited as {}",
                invited.user.email,
                invited.user.role.as_str()
            ),
            row_id(invited.user.id),
        );
        Ok(done.with_secret(Secret::SetupLink {
            email: invited.user.email,
            link: invited.setup_url,
            reissued: false,
        }))
    })
    .await
}

async fn set_role(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
    fields: Fields,
) -> Response {
    act(&cp, &visit, account, Tab::Users, None, async |caller| {
        let u = usecase::update(&cp, caller, id, None, Some(role(&fields)?)).await?;
        let message = format!(
            "{} is now {} ({})",
            u.email,
            u.role.as_str(),
            role_help(u.role)
        );
        Ok(Done::new(message, row_id(id)))
    })
    .await
}

async fn set_active(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
    fields: Fields,
) -> Response {
    act(&cp, &visit, account, Tab::Users, None, async |caller| {
        let active = match fields.get("active") {
            "true" => true,
            "false" => false,
            _ => return Err(Refusal::invalid("active must be true or false")),
        };
        let u = usecase::set_active(&cp, caller, id, active).await?;
        let message = match active {
            true => format!("{} unsuspended: they can sign in again", u.email),
            false => format!("{} suspended: signed out, and can't sign in", u.email),
        };
        Ok(Done::new(message, row_id(id)))
    })
    .await
}

/// A new one-time setup link for a user who lost theirs (the old one stops working), shown
/// once as an invitation's is.
async fn setup_link(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
) -> Response {
    act(&cp, &visit, account, Tab::Users, None, async |caller| {
        let made = usecase::reissue_setup_link(&cp, caller, id).await?;
        let done = Done::new(
            format!("New setup link for {}", made.user.email),
            row_id(id),
        );
        Ok(done.with_secret(Secret::SetupLink {
            email: made.user.email,
            link: made.setup_url,
            reissued: true,
        }))
    })
    .await
}

async fn delete(
    State(cp): State<Arc<ControlPlane>>,
    visit: Visit,
    Path((account, id)): Path<(i64, i64)>,
) -> Response {
    act(&cp, &visit, account, Tab::Users, None, async |caller| {
        let u = usecase::read(&cp, caller, id).await?;
        usecase::delete(&cp, caller, id).await?;
        Ok(Done::new(format!("User {} deleted", u.email), None))
    })
    .await
}
