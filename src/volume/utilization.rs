//! `utilizationSettings`: every `frequencyMinutes` an account's own logs gain one record of
//! type `logzio_account_utilization` with Logz.io's fields (docs/volume.md). One record per
//! interval across the whole fleet: each gateway checks every few seconds, and the first
//! to claim the interval in the bank writes it.
//!
//! `volume_in_GB` is the bank's count of the day: the bytes granted to gateways, which
//! runs ahead of the bytes sent by at most the unspent lease each gateway holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::bank::{Bank, Day};
use super::gate::Gate;
use super::policy::VolumePolicy;
use crate::clock::DAY_MS;
use crate::forward::{ContentType, Envelope, Forwarder, Payloads, RecordBatch};
use crate::model::{AccountId, Kind, TokenId};

/// The records' `type`, as Logz.io writes it.
pub const UTILIZATION_TYPE: &str = "logzio_account_utilization";
const GB: f64 = 1e9;

/// Writes the utilization records this gateway wins, checking every `every`, until `stop`.
pub async fn run<B: Bank>(
    gate: Arc<Gate>,
    bank: Arc<B>,
    forward: Forwarder,
    every: Duration,
    stop: CancellationToken,
) {
    let mut written: HashMap<AccountId, u64> = HashMap::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
        let now_ms = gate.now_ms();
        for policy in gate.utilization_policies() {
            let Some(minutes) = policy.utilization_minutes.filter(|m| *m > 0) else {
                continue;
            };
            let slot = u64::try_from(now_ms).unwrap_or(0) / (u64::from(minutes) * 60_000);
            if written.get(&policy.account_id) == Some(&slot) {
                continue;
            }
            match write(&gate, bank.as_ref(), &forward, &policy, slot, now_ms).await {
                Ok(()) => {
                    written.insert(policy.account_id, slot);
                }
                Err(e) => tracing::warn!(
                    account_id = policy.account_id.0,
                    error = %e,
                    "volume: a utilization record could not be written; trying again"
                ),
            }
        }
    }
}

/// Claims `slot` of the account and, if this gateway won it, writes its record.
async fn write<B: Bank>(
    gate: &Gate,
    bank: &B,
    forward: &Forwarder,
    policy: &VolumePolicy,
    slot: u64,
    now_ms: i64,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let claimed = bank.claim(policy.account_id, slot).await;
    gate.metrics.bank_call("claim", claimed.is_ok());
    if !claimed? {
        return Ok(());
    }
    let today = Day::of_epoch_ms(u64::try_from(now_ms).unwrap_or(0));
    let used = bank.used(policy.account_id, today).await;
    gate.metrics.bank_call("used", used.is_ok());
    let record = record(policy, used?, now_ms);
    forward
        .submit(RecordBatch {
            envelope: Envelope {
                kind: Kind::Logs,
                account_id: policy.account_id,
                token_id: TokenId(Arc::from("volume")),
                log_type: Some(UTILIZATION_TYPE.into()),
                content_type: ContentType::JsonObject,
            },
            payloads: Payloads::from_buf([Bytes::from(record.to_string())]),
        })
        .await?;
    gate.metrics.utilization_records.inc();
    Ok(())
}

/// The record for `policy`'s account with `used` bytes counted today at `now_ms`. The
/// end-of-day expectation extrapolates the day so far linearly.
pub fn record(policy: &VolumePolicy, used: u64, now_ms: i64) -> serde_json::Value {
    let plan = match policy.main_id == policy.account_id {
        true => policy.plan_bytes,
        false => policy.allowance().and_then(|a| a.most()),
    };
    let volume_gb = used as f64 / GB;
    let plan_gb = plan.map_or(0.0, |p| p as f64 / GB);
    let elapsed = (now_ms.rem_euclid(DAY_MS)).max(60_000) as f64;
    let expected_gb = volume_gb * DAY_MS as f64 / elapsed;
    let percent = |gb: f64| {
        if plan_gb > 0.0 {
            gb / plan_gb * 100.0
        } else {
            0.0
        }
    };
    let mut record = json!({
        "type": UTILIZATION_TYPE,
        "account_id": policy.account_id.0,
        "account_name": policy.account_name,
        "plan_volume_in_GB": plan_gb,
        "volume_in_GB": volume_gb,
        "utilization": percent(volume_gb),
        "expected_volume_in_GB_EOD": expected_gb,
        "expected_utilization_EOD": percent(expected_gb),
    });
    if policy.is_flexible {
        let reserved_gb = policy.reserved_bytes as f64 / GB;
        let extra = json!({
            "is_flexible": true,
            "reserved_volume": reserved_gb,
            "cap_volume": policy.cap_bytes.map_or(0.0, |c| c as f64 / GB),
            "used_from_shareable": (volume_gb - reserved_gb).max(0.0),
        });
        if let (Some(r), Some(e)) = (record.as_object_mut(), extra.as_object()) {
            r.extend(e.clone());
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flexible() -> VolumePolicy {
        VolumePolicy {
            account_id: AccountId(2),
            account_name: "us".into(),
            main_id: AccountId(1),
            reserved_bytes: 20_000_000_000,
            cap_bytes: Some(50_000_000_000),
            pool_bytes: Some(50_000_000_000),
            plan_bytes: Some(100_000_000_000),
            is_flexible: true,
            doc_size: false,
            utilization_minutes: Some(10),
            rate: None,
        }
    }

    #[test]
    fn a_flexible_accounts_record_has_logzio_fields_and_extrapolates_the_day() {
        // A quarter of the day gone, 10 GB counted: 40 GB expected by its end.
        let r = record(&flexible(), 10_000_000_000, 20_000 * DAY_MS + DAY_MS / 4);
        assert_eq!(r["type"], UTILIZATION_TYPE);
        assert_eq!(r["account_name"], "us");
        assert_eq!(
            r["plan_volume_in_GB"], 50.0,
            "reserved + pool, within its cap"
        );
        assert_eq!(r["volume_in_GB"], 10.0);
        assert_eq!(r["utilization"], 20.0);
        assert_eq!(r["expected_volume_in_GB_EOD"], 40.0);
        assert_eq!(r["expected_utilization_EOD"], 80.0);
        assert_eq!(r["is_flexible"], true);
        assert_eq!(r["reserved_volume"], 20.0);
        assert_eq!(r["cap_volume"], 50.0);
        assert_eq!(r["used_from_shareable"], 0.0);
    }

    #[test]
    fn an_account_without_a_volume_reports_zero_utilization() {
        let mut p = flexible();
        p.is_flexible = false;
        (p.reserved_bytes, p.cap_bytes, p.pool_bytes) = (0, None, None);
        let r = record(&p, 5_000, 20_000 * DAY_MS + DAY_MS / 2);
        assert_eq!(r["plan_volume_in_GB"], 0.0);
        assert_eq!(r["utilization"], 0.0);
        assert!(r.get("is_flexible").is_none());
    }
}
