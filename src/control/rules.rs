//! The product's rules (DESIGN §4, from the token documentation), as pure functions of the
//! facts they need: no I/O here, so each rule is tested on its own and the handlers only
//! gather facts and ask. Each refusal carries the `errorCode` that names the rule.

use serde::{Deserialize, Serialize};

use super::refusal::Refusal;
use crate::model::Kind;

/// A main account's subscription. Tied accounts (sub, metrics, tracing, security) follow
/// their main account's plan and trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Community,
    Pro,
    Enterprise,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Community => "community",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }

    pub fn parse(s: &str) -> Option<Plan> {
        match s {
            "community" => Some(Plan::Community),
            "pro" => Some(Plan::Pro),
            "enterprise" => Some(Plan::Enterprise),
            _ => None,
        }
    }
}

/// Defined with the other shared domain types; the feed carries it to gateways.
pub use crate::model::AccountType;

/// The plan in force now: a running trial has what pro has.
pub fn effective_plan(plan: Plan, trial_ends_at: Option<i64>, now_secs: i64) -> Plan {
    match trial_ends_at {
        Some(end) if now_secs < end => plan.max(Plan::Pro),
        _ => plan,
    }
}

/// How many shipping tokens may be enabled at once: community 1, pro and enterprise 15.
pub fn max_enabled_tokens(plan: Plan) -> i64 {
    match plan {
        Plan::Community => 1,
        Plan::Pro | Plan::Enterprise => 15,
    }
}

/// Enabling one more token (by creating or enabling it) must stay within the plan.
pub fn check_may_enable_another(plan: Plan, enabled_now: i64) -> Result<(), Refusal> {
    let max = max_enabled_tokens(plan);
    if enabled_now >= max {
        return Err(Refusal::rule(
            "tokens/ENABLED_LIMIT",
            format!(
                "the {} plan allows {max} enabled shipping token{}; disable one first",
                plan.as_str(),
                if max == 1 { "" } else { "s" }
            ),
        ));
    }
    Ok(())
}

/// Every account keeps at least one enabled shipping token: the last one cannot be
/// disabled or deleted.
pub fn check_may_lose_enabled(enabled_now: i64) -> Result<(), Refusal> {
    if enabled_now <= 1 {
        return Err(Refusal::rule(
            "tokens/LAST_ENABLED",
            "every account must keep at least one enabled shipping token; this is the last one",
        ));
    }
    Ok(())
}

/// A shipping token's name is unique among the account's tokens of its kind: Logz.io
/// refuses a duplicate, and its clients (the Go client, the Terraform provider) create a
/// token "if absent" by looking it up by name. Names compare exactly (after the trimming
/// every name gets), as those clients compare them.
pub fn check_name_free(kind: Kind, name: &str, taken_by_another: bool) -> Result<(), Refusal> {
    if taken_by_another {
        return Err(Refusal::rule(
            "tokens/DUPLICATE_NAME",
            format!(
                "this account already has a {} shipping token named “{name}”",
                match kind {
                    Kind::Logs => "log",
                    Kind::Metrics => "metrics",
                    Kind::Traces => "tracing",
                }
            ),
        ));
    }
    Ok(())
}

/// API tokens exist for pro and enterprise accounts and during a trial.
pub fn check_may_create_api_token(account_type: AccountType, plan: Plan) -> Result<(), Refusal> {
    if !account_type.has_own_api_tokens() {
        return Err(Refusal::rule(
            "api-tokens/ACCOUNT_TYPE",
            format!(
                "{} accounts have no API tokens of their own; use the main account's",
                account_type.as_str()
            ),
        ));
    }
    if plan == Plan::Community {
        return Err(Refusal::rule(
            "api-tokens/PLAN",
            "API tokens are available on pro and enterprise plans and during a trial",
        ));
    }
    Ok(())
}

/// Whether an API token still works: its account's plan must allow API tokens now. A
/// trial's tokens stop working the moment the trial ends.
pub fn check_api_token_usable(
    plan: Plan,
    trial_ends_at: Option<i64>,
    now_secs: i64,
) -> Result<(), Refusal> {
    if effective_plan(plan, trial_ends_at, now_secs) != Plan::Community {
        return Ok(());
    }
    match trial_ends_at {
        Some(_) => Err(Refusal::forbidden(
            "api-tokens/TRIAL_ENDED",
            "the account's trial has ended; its API tokens no longer work",
        )),
        None => Err(Refusal::forbidden(
            "api-tokens/PLAN",
            "the account's plan does not include API access",
        )),
    }
}

/// Until when (epoch milliseconds, exclusive) a main account's API tokens work, for
/// gateways that check it without asking (the read grants in the feed): `None` for ever
/// (pro, enterprise), a community account's trial end, or 0 (community, no trial). Agrees
/// with `check_api_token_usable` at every instant; owned accounts follow their main's.
pub fn api_tokens_usable_until_ms(plan: Plan, trial_ends_at: Option<i64>) -> Option<u64> {
    if plan != Plan::Community {
        return None;
    }
    let end_ms = trial_ends_at.map_or(0, |end| end.saturating_mul(1000));
    Some(u64::try_from(end_ms).unwrap_or(0))
}

/// A token filter's field and value: `^[a-zA-Z0-9_@.-]+$`, so no wildcard can be written.
pub fn check_filter_term(what: &str, term: &str) -> Result<(), Refusal> {
    let ok = !term.is_empty()
        && term.len() <= 256
        && term
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'@' | b'.' | b'-'));
    if !ok {
        return Err(Refusal::Invalid {
            code: "filters/INVALID_TERM",
            message: format!(
                "{what} must be 1-256 characters of [a-zA-Z0-9_@.-] (an exact value; wildcards are not supported)"
            ),
        });
    }
    Ok(())
}

/// The most characters a name may have.
pub const NAME_CHARS: usize = 256;

/// Every name (accounts, tokens) is 1-256 characters without control characters, trimmed.
pub fn checked_name(name: &str) -> Result<&str, Refusal> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Refusal::invalid(
            "name must be 1-256 characters without control characters",
        ));
    }
    Ok(name)
}

/// A user's email: what they log in with, compared lower-cased.
pub fn checked_email(email: &str) -> Result<String, Refusal> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if !valid {
        return Err(Refusal::Invalid {
            code: "users/INVALID_EMAIL",
            message: "username must be an email address (name@domain)".into(),
        });
    }
    Ok(email)
}

/// Passwords are 12-256 characters: long enough to resist guessing, short enough that
/// hashing one costs a bounded time.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 12..=256;

pub fn check_password(password: &str) -> Result<(), Refusal> {
    if !PASSWORD_CHARS.contains(&password.chars().count()) {
        return Err(Refusal::Invalid {
            code: "users/WEAK_PASSWORD",
            message: format!(
                "the password must be {} to {} characters long",
                PASSWORD_CHARS.start(),
                PASSWORD_CHARS.end()
            ),
        });
    }
    Ok(())
}

/// An account keeps at least one active admin: the last may not be suspended, deleted
/// or given another role (nobody could manage the account's tokens on the page).
pub fn check_keeps_an_admin(admins_left: i64) -> Result<(), Refusal> {
    if admins_left < 1 {
        return Err(Refusal::rule(
            "users/LAST_ADMIN",
            "this is the account's last active admin: make another user admin first",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trial_has_pro_until_it_ends() {
        assert_eq!(effective_plan(Plan::Community, Some(100), 99), Plan::Pro);
        assert_eq!(
            effective_plan(Plan::Community, Some(100), 100),
            Plan::Community
        );
        assert_eq!(
            effective_plan(Plan::Enterprise, Some(100), 50),
            Plan::Enterprise
        );
        assert_eq!(effective_plan(Plan::Community, None, 50), Plan::Community);
    }

    #[test]
    fn enabled_limit_is_one_for_community_and_fifteen_for_paid_plans() {
        assert!(check_may_enable_another(Plan::Community, 0).is_ok());
        assert!(check_may_enable_another(Plan::Community, 1).is_err());
        assert!(check_may_enable_another(Plan::Pro, 14).is_ok());
        assert!(check_may_enable_another(Plan::Enterprise, 15).is_err());
    }

    #[test]
    fn the_last_enabled_token_stays() {
        assert!(check_may_lose_enabled(1).is_err());
        assert!(check_may_lose_enabled(2).is_ok());
    }

    #[test]
    fn a_name_taken_by_another_token_is_refused() {
        assert!(check_name_free(Kind::Logs, "ci", false).is_ok());
        let err = check_name_free(Kind::Logs, "ci", true).unwrap_err();
        assert!(matches!(
            err,
            Refusal::Rule {
                code: "tokens/DUPLICATE_NAME",
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "this account already has a log shipping token named “ci”"
        );
    }

    #[test]
    fn api_tokens_follow_plan_and_account_type() {
        assert!(check_may_create_api_token(AccountType::Logs, Plan::Pro).is_ok());
        assert!(check_may_create_api_token(AccountType::Security, Plan::Enterprise).is_ok());
        assert!(check_may_create_api_token(AccountType::Logs, Plan::Community).is_err());
        assert!(check_may_create_api_token(AccountType::Metrics, Plan::Pro).is_err());
        assert!(check_api_token_usable(Plan::Community, Some(10), 9).is_ok());
        let ended = check_api_token_usable(Plan::Community, Some(10), 10).unwrap_err();
        assert!(matches!(
            ended,
            Refusal::Forbidden {
                code: "api-tokens/TRIAL_ENDED",
                ..
            }
        ));
    }

    #[test]
    fn the_usable_until_instant_agrees_with_the_per_call_check() {
        for (plan, trial) in [
            (Plan::Community, None),
            (Plan::Community, Some(1_000)),
            (Plan::Pro, None),
            (Plan::Pro, Some(1_000)),
            (Plan::Enterprise, Some(5)),
        ] {
            let until = api_tokens_usable_until_ms(plan, trial);
            for now_secs in [0, 999, 1_000, 1_001, 10_000] {
                let now_ms = u64::try_from(now_secs * 1000).unwrap();
                assert_eq!(
                    until.is_none_or(|until| now_ms < until),
                    check_api_token_usable(plan, trial, now_secs).is_ok(),
                    "{plan:?} trial {trial:?} at {now_secs}"
                );
            }
        }
    }

    #[test]
    fn filter_terms_refuse_wildcards() {
        assert!(check_filter_term("field", "env").is_ok());
        assert!(check_filter_term("value", "a.b@c-d_1").is_ok());
        for bad in ["", "te*t", "a b", "x?", "é"] {
            assert!(check_filter_term("value", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_are_lower_cased_and_need_one_at() {
        assert_eq!(
            checked_email(" Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "a@b@c",
            "ann smith@example.com",
        ] {
            assert!(checked_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_have_a_bounded_length() {
        assert!(check_password("short").is_err());
        assert!(check_password("twelve chars").is_ok());
        assert!(check_password(&"x".repeat(257)).is_err());
    }
}
