//! Daily volume as Logz.io sells it (docs/volume.md): a main account's plan volume; fixed
//! sub-accounts, whose `maxDailyGB` is reserved out of it; flexible sub-accounts, whose
//! `reservedDailyGB` is; and the shared pool, what is left, which flexible sub-accounts
//! and the main account draw on; and the rate limit an operator sets on a main account.
//! Pure functions of the settings: the use cases gather them and ask, as with `rules`.

use serde::{Deserialize, Serialize};

use super::refusal::Refusal;
use crate::config::{self, RateField};
use crate::tokens::wire::Rate;

/// Logz.io states volumes in GB and does not say which; tollgate counts 10^9 bytes to a
/// GB, as storage is sold.
pub const BYTES_PER_GB: f64 = 1e9;

/// What a sub-account takes out of its main account's plan volume, from its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Allocation {
    /// `maxDailyGB` of a fixed account: its whole daily volume, reserved for it.
    Fixed { daily_gb: f64 },
    /// `reservedDailyGB` of a flexible account, guaranteed; beyond it the shared pool, up
    /// to `cap_gb` (`None`: only the pool limits it).
    Flexible {
        reserved_gb: f64,
        cap_gb: Option<f64>,
    },
}

impl Allocation {
    /// A sub-account's allocation. A fixed account without `maxDailyGB` has 0 GB, as in
    /// Logz.io (its default); a flexible account's `maxDailyGB` of 0 or none means no cap
    /// (Logz.io's API says null, its utilization records say 0).
    pub fn of(
        is_flexible: bool,
        max_daily_gb: Option<f64>,
        reserved_daily_gb: Option<f64>,
    ) -> Self {
        if is_flexible {
            Allocation::Flexible {
                reserved_gb: reserved_daily_gb.unwrap_or(0.0),
                cap_gb: max_daily_gb.filter(|gb| *gb > 0.0),
            }
        } else {
            Allocation::Fixed {
                daily_gb: max_daily_gb.unwrap_or(0.0),
            }
        }
    }

    /// The part of the plan's volume no other account may use.
    pub fn reserved_gb(self) -> f64 {
        match self {
            Allocation::Fixed { daily_gb } => daily_gb,
            Allocation::Flexible { reserved_gb, .. } => reserved_gb,
        }
    }

    /// The most the account may index a day: a fixed account its volume; a flexible one
    /// its reservation and the whole shared pool (`shared_gb`, `None` when the main account
    /// has no plan volume), no more than its cap. `None`: nothing limits it. The pool is
    /// shared, so on a given day the others may leave less of it.
    pub fn most_gb(self, shared_gb: Option<f64>) -> Option<f64> {
        match self {
            Allocation::Fixed { daily_gb } => Some(daily_gb),
            Allocation::Flexible {
                reserved_gb,
                cap_gb,
            } => match (cap_gb, shared_gb.map(|pool| reserved_gb + pool)) {
                (Some(cap), Some(through_pool)) => Some(cap.min(through_pool)),
                (cap, through_pool) => cap.or(through_pool),
            },
        }
    }
}

/// `sharedGB`: the plan's volume less what fixed and reserved volumes take, never below 0.
pub fn shared_gb(plan_gb: f64, allocations: impl IntoIterator<Item = Allocation>) -> f64 {
    let reserved: f64 = allocations.into_iter().map(Allocation::reserved_gb).sum();
    (plan_gb - reserved).max(0.0)
}

/// The sub-accounts' fixed and reserved volumes must fit in the main account's plan
/// volume (when it has one): `field` names what the refused call changed. Logz.io
/// publishes no error for this, but its guides move volume by lowering one account before
/// raising another, and give a deleted account's volume back to the main account.
pub fn check_fits(
    plan_gb: Option<f64>,
    allocations: impl IntoIterator<Item = Allocation>,
    field: &str,
) -> Result<(), Refusal> {
    let Some(plan_gb) = plan_gb else {
        return Ok(());
    };
    let reserved: f64 = allocations.into_iter().map(Allocation::reserved_gb).sum();
    // Volumes are decimal GB given by people: compare to the byte, not to the last bit.
    if (reserved - plan_gb) * BYTES_PER_GB >= 1.0 {
        return Err(Refusal::Invalid {
            code: "volume/OVER_PLAN",
            message: format!(
                "{field}: the sub-accounts' fixed and reserved volumes would take {} GB of \
                 the main account's {} GB a day",
                round(reserved),
                round(plan_gb)
            ),
        });
    }
    Ok(())
}

/// A volume given in GB: finite and not negative, or 400 naming the field.
pub fn checked_gb(field: &str, gb: f64) -> Result<f64, Refusal> {
    if gb.is_finite() && gb >= 0.0 {
        Ok(gb)
    } else {
        Err(Refusal::invalid(format!("{field} must be a number >= 0")))
    }
}

/// How often a utilization record may be written, in minutes: Logz.io offers 10, 30 and
/// 60. When utilization is off the interval is unused, and 0 or none is taken (Logz.io's
/// Go client sends 0 for an unset interval).
pub const UTILIZATION_MINUTES: [i64; 3] = [10, 30, 60];

/// `utilizationSettings` as given: an enabled one needs an interval Logz.io offers.
pub fn check_utilization(enabled: Option<bool>, minutes: Option<i64>) -> Result<(), Refusal> {
    let ok = match minutes {
        None | Some(0) => enabled != Some(true),
        Some(m) => UTILIZATION_MINUTES.contains(&m),
    };
    if ok {
        return Ok(());
    }
    Err(Refusal::invalid(
        "utilizationSettings.frequencyMinutes must be 10, 30 or 60 (0 or absent only while \
         utilizationEnabled is false)",
    ))
}

/// A main account's own rate limit (`rateLimit`), over its plan's default: bytes of
/// accepted records per second with a burst, enforced by each gateway on its own for the
/// main account and for each of its sub-accounts and tied accounts. Stored in the main
/// account's settings as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    pub bytes_per_second: u64,
    pub burst_bytes: u64,
}

impl RateLimit {
    /// `rateLimit` as given; `burstBytes` defaults to one second of the rate. The checks
    /// are the config's (`config::rate_limit_problem`), the refusal names the field.
    pub fn checked(bytes_per_second: u64, burst_bytes: Option<u64>) -> Result<Self, Refusal> {
        let burst_bytes = burst_bytes.unwrap_or(bytes_per_second);
        match config::rate_limit_problem(bytes_per_second, burst_bytes) {
            None => Ok(RateLimit {
                bytes_per_second,
                burst_bytes,
            }),
            Some((field, why)) => {
                let field = match field {
                    RateField::BytesPerSec => "rateLimit.bytesPerSecond",
                    RateField::Burst => "rateLimit.burstBytes",
                };
                Err(Refusal::invalid(format!("{field} {why}")))
            }
        }
    }

    /// A plan's default from `[control_plane.rate_limits]`.
    pub fn of_config(limit: config::RateLimit) -> Self {
        RateLimit {
            bytes_per_second: limit.bytes_per_sec,
            burst_bytes: limit.burst(),
        }
    }

    /// As gateways enforce it.
    pub fn wire(self) -> Rate {
        Rate {
            bytes_per_sec: self.bytes_per_second,
            burst_bytes: self.burst_bytes,
        }
    }
}

/// GB as a message shows them: to the MB.
fn round(gb: f64) -> f64 {
    (gb * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_what_fixed_and_reserved_volumes_leave() {
        // The worked example of docs/volume.md: a 100 GB plan, a fixed account of 30 GB,
        // a flexible one reserving 20 GB capped at 50, a flexible one with nothing reserved.
        let accounts = [
            Allocation::of(false, Some(30.0), None),
            Allocation::of(true, Some(50.0), Some(20.0)),
            Allocation::of(true, None, None),
        ];
        assert_eq!(shared_gb(100.0, accounts), 50.0);
        assert_eq!(
            accounts[1],
            Allocation::Flexible {
                reserved_gb: 20.0,
                cap_gb: Some(50.0)
            }
        );
        assert_eq!(
            Allocation::of(true, Some(0.0), Some(5.0)),
            Allocation::Flexible {
                reserved_gb: 5.0,
                cap_gb: None
            },
            "a flexible account's maxDailyGB of 0 is no cap"
        );
        assert_eq!(
            Allocation::of(false, None, Some(5.0)).reserved_gb(),
            0.0,
            "a fixed account reserves its maxDailyGB only"
        );
        assert_eq!(shared_gb(10.0, accounts), 0.0, "never below 0");
        // What each may index a day: `us` 20 reserved + 50 pooled, capped at 50; `dev` the
        // pool; without a plan volume, a flexible account is limited by its cap alone.
        let most: Vec<_> = accounts.iter().map(|a| a.most_gb(Some(50.0))).collect();
        assert_eq!(most, [Some(30.0), Some(50.0), Some(50.0)]);
        assert_eq!(
            accounts[1].most_gb(Some(10.0)),
            Some(30.0),
            "a smaller pool"
        );
        assert_eq!(accounts[1].most_gb(None), Some(50.0));
        assert_eq!(accounts[2].most_gb(None), None);
    }

    #[test]
    fn allocations_must_fit_the_plan() {
        let accounts = [
            Allocation::of(false, Some(60.0), None),
            Allocation::of(true, None, Some(40.0)),
        ];
        assert!(check_fits(Some(100.0), accounts, "maxDailyGB").is_ok());
        assert!(
            check_fits(None, accounts, "maxDailyGB").is_ok(),
            "no plan volume"
        );
        let err = check_fits(Some(99.5), accounts, "reservedDailyGB").unwrap_err();
        assert_eq!(err.code(), "volume/OVER_PLAN");
        assert!(err.to_string().starts_with("reservedDailyGB:"), "{err}");
        assert!(
            err.to_string()
                .contains("100 GB of the main account's 99.5 GB"),
            "{err}"
        );
        // 0.1 + 0.2 is not 0.3 in binary; it is to the byte.
        let tenths = [
            Allocation::of(false, Some(0.1), None),
            Allocation::of(false, Some(0.2), None),
        ];
        assert!(check_fits(Some(0.3), tenths, "maxDailyGB").is_ok());
    }

    #[test]
    fn utilization_intervals_are_ten_thirty_or_sixty_minutes() {
        for minutes in UTILIZATION_MINUTES {
            assert!(check_utilization(Some(true), Some(minutes)).is_ok());
            assert!(check_utilization(Some(false), Some(minutes)).is_ok());
        }
        assert!(
            check_utilization(Some(false), Some(0)).is_ok(),
            "off, unset"
        );
        assert!(check_utilization(None, None).is_ok());
        for (enabled, minutes) in [
            (Some(true), Some(0)),
            (Some(true), None),
            (Some(true), Some(5)),
            (None, Some(-5)),
            (Some(false), Some(15)),
        ] {
            let err = check_utilization(enabled, minutes).unwrap_err();
            assert!(err.to_string().contains("frequencyMinutes"), "{err}");
        }
    }

    #[test]
    fn volumes_are_finite_and_not_negative() {
        assert_eq!(checked_gb("maxDailyGB", 1.5).unwrap(), 1.5);
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let err = checked_gb("maxDailyGB", bad).unwrap_err();
            assert!(err.to_string().contains("maxDailyGB"), "{err}");
        }
    }

    #[test]
    fn a_rate_limit_bursts_a_second_of_its_rate_unless_told_and_refusals_name_the_field() {
        assert_eq!(
            RateLimit::checked(1000, None).unwrap(),
            RateLimit {
                bytes_per_second: 1000,
                burst_bytes: 1000
            }
        );
        assert_eq!(
            RateLimit::checked(1000, Some(4000)).unwrap().burst_bytes,
            4000
        );
        for (rate, burst, field) in [
            (0, None, "rateLimit.bytesPerSecond must be > 0"),
            (
                1 << 32,
                None,
                "rateLimit.bytesPerSecond must be at most 4294967295",
            ),
            (
                1000,
                Some(999),
                "rateLimit.burstBytes must be >= the bytes per second",
            ),
            (1000, Some(1 << 32), "rateLimit.burstBytes must be at most"),
        ] {
            let err = RateLimit::checked(rate, burst).unwrap_err();
            assert!(err.to_string().starts_with(field), "{err}");
        }
    }
}
