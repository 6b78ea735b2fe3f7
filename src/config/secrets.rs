//! The strength rule shared by every secret in the config: the control plane's admin and
//! feed secrets and the gateway's feed secret.

use super::{ConfigError, Warnings};

/// A secret that other machines can try must have at least this many characters: a
/// random one of 24 letters and digits is past guessing over HTTP.
pub const MIN_SECRET_CHARS: usize = 24;

/// The example secrets `config/` and the docs show; never good enough beyond loopback.
const EXAMPLE_SECRETS: &[&str] = &[
    "change-me",
    "change-me-too",
    "change-me-admin-secret",
    "change-me-feed-secret",
];

/// The strength rule for `control_plane.admin_secret`, `control_plane.feed_secret` and
/// the gateway's `tokens.feed_secret`: an example value or one shorter than
/// [`MIN_SECRET_CHARS`] is refused when `exposed` says why other machines can reach what
/// it guards, and only warned about on loopback.
pub(super) fn check_secret(
    key: &str,
    secret: &str,
    exposed: Option<String>,
    warnings: &mut Warnings,
) -> Result<(), ConfigError> {
    let weakness = if EXAMPLE_SECRETS.contains(&secret) {
        "is a documented example value".to_string()
    } else if secret.chars().count() < MIN_SECRET_CHARS {
        format!("is shorter than {MIN_SECRET_CHARS} characters")
    } else {
        return Ok(());
    };
    let env = format!("TOLLGATE_{}", key.to_ascii_uppercase().replace('.', "__"));
    match exposed {
        Some(why) => Err(ConfigError::invalid(
            key,
            format!(
                "{weakness} while {why}: set your own of at least {MIN_SECRET_CHARS} \
                 characters ({env})"
            ),
        )),
        None => {
            warnings.push(format!(
                "{key} {weakness}: set your own of at least {MIN_SECRET_CHARS} characters \
                 ({env}) before exposing it beyond this machine"
            ));
            Ok(())
        }
    }
}

/// `localhost` or a loopback address (a URL's host, brackets removed).
pub(super) fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
