//! Typed configuration (DESIGN §6): TOML with a default for every key, environment
//! overrides `TOLLGATE_<SECTION>__<KEY>`, and `validate()` whose errors name the key.
//! `serve` and `check-config` share all of it, so a file that checks also starts.
//!
//! One file per section of the file (`[server]`, `[tokens]`, …): its types, defaults and
//! checks. This file loads the whole, applies the overrides and runs each section's checks.

mod control_plane;
mod forward;
mod log;
mod secrets;
mod server;
mod sink;
mod tail;
mod tokens;
mod volume;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::Unexpected;
use serde::{Deserialize, Deserializer};

pub use control_plane::{
    ControlPlaneConfig, MAX_RATE_BYTES, RateField, RateLimit, RateLimits, rate_limit_problem,
};
pub use forward::{Ack, ForwardConfig};
pub use log::{LogConfig, LogFormat};
pub use secrets::MIN_SECRET_CHARS;
pub use server::{ServerConfig, TlsConfig};
pub use sink::SinkConfig;
pub use tail::{TailConfig, TailSource};
pub use tokens::{TokenSourceKind, TokensConfig, base_urls};
pub use volume::{OverCap, VolumeConfig};

/// Everything tollgate reads from its config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub tokens: TokensConfig,
    pub forward: ForwardConfig,
    pub sink: SinkConfig,
    pub control_plane: ControlPlaneConfig,
    pub tail: TailConfig,
    pub volume: VolumeConfig,
    pub log: LogConfig,
    /// The file (or an environment override) has a `[control_plane]` section: then
    /// `check-config` checks it as `tollgate control-plane` would, embedded or not.
    #[serde(skip)]
    pub control_plane_section: bool,
}

/// A config that could not be read or is not valid; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Non-fatal findings of `validate()`: printed by `check-config` and logged by `serve`.
pub type Warnings = Vec<String>;

impl Config {
    /// Reads `path`, applies `TOLLGATE_<SECTION>__<KEY>` overrides from `env`, and parses.
    /// `env` is passed in (not read here) so tests never have to mutate the process env.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, env).map_err(|e| match e {
            ConfigError::Syntax { message, .. } => ConfigError::Syntax {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text plus environment overrides. Errors name the offending key.
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: PathBuf::new(),
                    message: e.to_string(),
                })?;
        apply_env_overrides(&mut table, env)?;
        let control_plane_section = table.contains_key("control_plane");
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                ConfigError::Invalid {
                    key,
                    message: e.into_inner().to_string(),
                }
            })?;
        Ok(Config {
            control_plane_section,
            ..config
        })
    }

    /// Checks what types alone cannot, one section after another. Errors name the key;
    /// warnings are advice.
    pub fn validate(&self) -> Result<Warnings, ConfigError> {
        let mut warnings = Warnings::new();
        self.server.validate()?;
        self.tokens.validate(&mut warnings)?;
        self.forward.validate(&mut warnings)?;
        self.sink.validate()?;
        self.tail.validate(&self.sink)?;
        self.volume.validate()?;
        if self.control_plane.embedded {
            warnings.extend(self.control_plane.validate_embedded(&self.server)?);
        }
        Ok(warnings)
    }
}

/// `TOLLGATE_SERVER__MAX_BODY_BYTES=1024` sets `server.max_body_bytes`. Each `__` is one
/// level; the value is read as a TOML value when it parses as one, else as a string.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("TOLLGATE_") else {
            continue;
        };
        if !rest.contains("__") {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::invalid(&name, "empty key segment"));
        }
        let value = parse_env_value(&raw);
        let (last, parents) = path.split_last().expect("split always yields a segment");
        let mut node = &mut *table;
        for segment in parents {
            let entry = node
                .entry(segment.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = entry.as_table_mut().ok_or_else(|| {
                ConfigError::invalid(&name, format!("`{segment}` is not a table"))
            })?;
        }
        node.insert(last.clone(), value);
    }
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Durations are written in seconds (`_secs` keys), fractions allowed: `0.25`. A negative,
/// NaN or infinite number is refused; the error path [`Config::parse`] reports names the
/// key.
fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct Secs;
    impl serde::de::Visitor<'_> for Secs {
        type Value = Duration;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a non-negative number of seconds (fractions allowed)")
        }

        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(n))
        }

        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Duration, E> {
            u64::try_from(n)
                .map(Duration::from_secs)
                .map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))
        }

        fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(f)
                .map_err(|_| E::invalid_value(Unexpected::Float(f), &self))
        }
    }
    d.deserialize_any(Secs)
}

/// Refuses the first key whose value is zero, as `<key>: must be > 0`: sizes, caps and
/// periods where zero would stall or refuse everything.
fn refuse_zero(keys: &[(&str, bool)]) -> Result<(), ConfigError> {
    match keys.iter().find(|(_, zero)| *zero) {
        Some((key, _)) => Err(ConfigError::invalid(key, "must be > 0")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn empty_file_gives_defaults_that_validate() {
        let c = Config::parse("", no_env()).unwrap();
        assert_eq!(c.server.listen.port(), 8070);
        assert_eq!(c.server.max_line_bytes, 500_000);
        assert_eq!(c.forward.ack, Ack::Disk);
        assert!(c.validate().unwrap().is_empty());
    }

    #[test]
    fn a_control_plane_section_is_noticed_with_or_without_embedded() {
        assert!(!Config::parse("", no_env()).unwrap().control_plane_section);
        let c = Config::parse("[control_plane]\nlisten = \"0.0.0.0:8090\"\n", no_env()).unwrap();
        assert!(c.control_plane_section && !c.control_plane.embedded);
        let env = vec![(
            "TOLLGATE_CONTROL_PLANE__ADMIN_SECRET".to_string(),
            "x".to_string(),
        )];
        assert!(Config::parse("", env).unwrap().control_plane_section);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[server]\nmax_bodybytes = 1\n", no_env()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("server"), "{msg}");
        assert!(msg.contains("max_bodybytes"), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = Config::parse("[server]\nmax_body_bytes = \"big\"\n", no_env()).unwrap_err();
        assert!(
            err.to_string().starts_with("server.max_body_bytes"),
            "{err}"
        );
    }

    #[test]
    fn env_overrides_nested_keys_with_typed_values() {
        let env = vec![
            (
                "TOLLGATE_SERVER__MAX_BODY_BYTES".to_string(),
                "1024".to_string(),
            ),
            (
                "TOLLGATE_SERVER__HEADER_READ_TIMEOUT_SECS".to_string(),
                "0.5".to_string(),
            ),
            ("TOLLGATE_SINK__TYPE".to_string(), "blackhole".to_string()),
            ("TOLLGATE_UNRELATED".to_string(), "x".to_string()),
        ];
        let c = Config::parse("[server]\nmax_body_bytes = 5\n", env).unwrap();
        assert_eq!(c.server.max_body_bytes, 1024);
        assert_eq!(
            c.server.header_read_timeout_secs,
            Duration::from_millis(500)
        );
        assert!(matches!(c.sink, SinkConfig::Blackhole {}));
    }

    /// Every `_secs` key, with the table lines it needs to be read at all.
    const SECS_KEYS: &[(&str, &str)] = &[
        ("[server]", "header_read_timeout_secs"),
        ("[server]", "body_read_timeout_secs"),
        ("[server]", "idle_timeout_secs"),
        ("[server]", "shutdown_grace_secs"),
        ("[tokens]", "watch_interval_secs"),
        ("[tokens]", "poll_wait_secs"),
        ("[tokens]", "request_timeout_secs"),
        ("[tokens]", "backoff_initial_secs"),
        ("[tokens]", "backoff_max_secs"),
        ("[tokens]", "persist_interval_secs"),
        ("[tokens]", "miss_positive_ttl_secs"),
        ("[tokens]", "miss_negative_ttl_secs"),
        ("[tokens]", "usage_flush_interval_secs"),
        ("[forward]", "max_batch_age_secs"),
        ("[forward]", "retry_after_secs"),
        ("[sink]\ntype = \"file\"", "rotate_secs"),
        (
            "[sink]\ntype = \"http\"\nurl = \"http://127.0.0.1:9/in\"",
            "timeout_secs",
        ),
        ("[control_plane]", "session_idle_timeout_secs"),
        ("[control_plane]", "session_max_age_secs"),
        ("[control_plane]", "setup_link_ttl_secs"),
        ("[tail]", "max_behind_secs"),
        ("[tail]", "heartbeat_secs"),
        ("[volume]", "bank_timeout_secs"),
        ("[volume]", "retry_secs"),
        ("[volume]", "utilization_check_secs"),
    ];

    #[test]
    fn every_secs_key_takes_a_fraction_and_is_named_when_refused() {
        for (table, key) in SECS_KEYS {
            let section = table[1..table.find(']').unwrap()].to_string();
            if let Err(e) = Config::parse(&format!("{table}\n{key} = 0.5\n"), no_env()) {
                panic!("{section}.{key} = 0.5: {e}");
            }
            for bad in ["-1", "-0.5", "nan", "inf", "\"5s\""] {
                let err = Config::parse(&format!("{table}\n{key} = {bad}\n"), no_env())
                    .unwrap_err()
                    .to_string();
                // A sink's keys are read through its `type` tag: the key is in the message.
                let named = match section.as_str() {
                    "sink" => format!("sink: {key}: "),
                    _ => format!("{section}.{key}: "),
                };
                assert!(err.starts_with(&named), "{section}.{key} = {bad}: {err}");
            }
        }
    }

    #[test]
    fn control_plane_durations_take_fractions_in_the_file_and_the_environment() {
        let c = Config::parse(
            "[control_plane]\nsession_idle_timeout_secs = 0.5\n",
            vec![(
                "TOLLGATE_CONTROL_PLANE__SETUP_LINK_TTL_SECS".to_string(),
                "1.25".to_string(),
            )],
        )
        .unwrap();
        let cp = &c.control_plane;
        assert_eq!(cp.session_idle_timeout_secs, Duration::from_millis(500));
        assert_eq!(cp.setup_link_ttl_secs, Duration::from_millis(1250));
        assert_eq!(cp.session_max_age_secs, Duration::from_secs(12 * 3600));
        let env = vec![(
            "TOLLGATE_CONTROL_PLANE__SESSION_MAX_AGE_SECS".to_string(),
            "-0.5".to_string(),
        )];
        let err = Config::parse("", env).unwrap_err().to_string();
        assert!(
            err.starts_with("control_plane.session_max_age_secs: "),
            "{err}"
        );
    }
}
