//! The fleet's bank in Redis (docs/volume.md, "Redis"): every gateway of a fleet takes its
//! leases from the same counts, so a cap holds across the fleet.
//!
//! Each call is one round trip bounded by `bank_timeout_secs`. A Redis that is down, slow or
//! refuses the call is `BankError::Unavailable` and nothing more: the ledger goes on from
//! local state and asks again, so the gateway starts and serves without Redis.
//!
//! Keys carry a main account's id as their hash tag (`{…}`), so the acquire script, which
//! reads and writes an account's count and its plan's shared pool, touches one cluster slot.
//! Every key expires on its own: nothing here ever deletes or scans.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, Value};

use super::bank::{Bank, BankError, Day, Grant};
use super::policy::Allowance;
use crate::config::VolumeConfig;
use crate::model::AccountId;

/// `Allowance::grant`, step for step, then the counts it moved. Lua numbers are doubles:
/// integers are exact up to 2^53 (9 PB), and the bank clamps every argument to that
/// (`exact`). Numbers go back to Redis through `%.0f`, never Lua's own formatting, which
/// could write a large count in exponent form that INCRBY refuses.
///
/// KEYS: 1 the account's count, 2 its pool's count (same hash tag; unused without a pool).
/// ARGV: 1 want, 2 cap (-1: none), 3 reserved, 4 pool (-1: none), 5 expiry (unix seconds).
/// Returns {granted, the count after it}.
const ACQUIRE_LUA: &str = r"
local want = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local reserved = tonumber(ARGV[3])
local pool = tonumber(ARGV[4])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = want
if cap >= 0 then
  grant = math.min(grant, math.max(0, cap - used))
end
local from_pool = 0
if pool >= 0 then
  local pool_used = tonumber(redis.call('GET', KEYS[2]) or '0')
  local from_reserved = math.min(grant, math.max(0, reserved - used))
  from_pool = math.min(grant - from_reserved, math.max(0, pool - pool_used))
  grant = from_reserved + from_pool
end
if grant > 0 then
  redis.call('INCRBY', KEYS[1], string.format('%.0f', grant))
  redis.call('EXPIREAT', KEYS[1], ARGV[5])
end
if from_pool > 0 then
  redis.call('INCRBY', KEYS[2], string.format('%.0f', from_pool))
  redis.call('EXPIREAT', KEYS[2], ARGV[5])
end
return {grant, used + grant}
";

/// Sent as EVALSHA; Redis loads it again by itself when it was restarted or flushed.
static ACQUIRE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(ACQUIRE_LUA));

/// The largest integer a Lua number holds exactly.
const EXACT_MAX: u64 = 1 << 53;

/// How long a utilization slot's claim is kept: longer than any interval an account can
/// have, so a gateway that asks late in the slot still finds it claimed.
const CLAIM_TTL_SECS: u64 = 86_400;

/// How long after its day's end a count is kept: yesterday's stays readable for the end of
/// day report and for a gateway whose clock is a little behind.
const KEEP_DAYS: u64 = 2;

/// The counts of the fleet in one Redis or one Redis Cluster.
pub struct RedisBank {
    connection: Connection,
    timeout: Duration,
    /// Passwords of the configured URLs, as written and decoded: cut out of every message,
    /// since a client error may quote what it was given.
    secrets: Vec<String>,
    /// The hash tag of each account's count, as its last `acquire` named it (its pool's
    /// main account), so that `used`, which is not told the allowance, reads the same key.
    tags: Mutex<HashMap<AccountId, AccountId>>,
}

/// Both reconnect by themselves, and both are cheap handles to one shared connection: a
/// call clones one and the handles multiplex over it.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

impl RedisBank {
    /// A bank on `[volume] redis_url` or `redis_cluster_nodes`. It does not wait for Redis:
    /// the connection is made on the first call and again after each loss, so a gateway
    /// starts while Redis is down and its calls fail until Redis is back. Only a URL that
    /// cannot be used at all is an error here. Must run inside the Tokio runtime, which
    /// drives the connection.
    pub async fn connect(config: &VolumeConfig) -> Result<RedisBank, BankError> {
        let timeout = config.bank_timeout_secs;
        let urls: Vec<&str> = match &config.redis_url {
            Some(url) => vec![url.as_str()],
            None => config
                .redis_cluster_nodes
                .iter()
                .map(String::as_str)
                .collect(),
        };
        if urls.is_empty() {
            return Err(BankError::Unavailable(
                "redis: [volume] has no redis_url or redis_cluster_nodes".into(),
            ));
        }
        let secrets = secrets_of(&urls);
        let fail = |what: &str, e: redis::RedisError| {
            BankError::Unavailable(redact(&format!("redis: {what}: {e}"), &secrets))
        };
        let connection = if config.redis_url.is_some() {
            let client = redis::Client::open(urls[0]).map_err(|e| fail("redis_url", e))?;
            // One connection attempt per call: the ledger already retries every
            // `retry_secs`, and an attempt that retried inside would outlast the call.
            let manager = ConnectionManagerConfig::new()
                .set_number_of_retries(0)
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout));
            let manager = ConnectionManager::new_lazy_with_config(client, manager)
                .map_err(|e| fail("redis_url", e))?;
            Connection::Single(manager)
        } else {
            let client = ClusterClientBuilder::new(urls.clone())
                .retries(1)
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .build()
                .map_err(|e| fail("redis_cluster_nodes", e))?;
            let cluster = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout);
            Connection::Cluster(client.get_pending_async_connection_with_config(cluster))
        };
        Ok(RedisBank {
            connection,
            timeout,
            secrets,
            tags: Mutex::new(HashMap::new()),
        })
    }

    /// Runs one call within the timeout; any failure is `Unavailable`, its text free of
    /// the configured passwords.
    async fn call<T>(
        &self,
        what: &str,
        run: impl AsyncFnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, BankError> {
        let mut connection = self.connection.clone();
        match tokio::time::timeout(self.timeout, run(&mut connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(BankError::Unavailable(redact(
                &format!("redis {what}: {e}"),
                &self.secrets,
            ))),
            Err(_) => Err(BankError::Unavailable(format!(
                "redis {what}: no answer within {:?}",
                self.timeout
            ))),
        }
    }

    fn tags(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, AccountId>> {
        // A panic while holding the lock leaves a plain map behind: still usable.
        self.tags
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Bank for RedisBank {
    async fn acquire(
        &self,
        account: AccountId,
        day: Day,
        want: u64,
        allowance: Allowance,
    ) -> Result<Grant, BankError> {
        let tag = tag_of(account, &allowance);
        self.tags().insert(account, tag);
        let limit = |bytes: Option<u64>| bytes.map_or(-1, |b| signed(exact(b)));
        let mut invocation = ACQUIRE.prepare_invoke();
        invocation
            .key(used_key(tag, account, day))
            .key(pool_key(tag, day))
            .arg(exact(want))
            .arg(limit(allowance.cap))
            .arg(exact(allowance.reserved))
            .arg(limit(allowance.pool.map(|(_, pool)| pool)))
            .arg(expire_at(day));
        let (granted, used): (u64, u64) = self
            .call("acquire", async |c| invocation.invoke_async(c).await)
            .await?;
        Ok(Grant { granted, used })
    }

    async fn used(&self, account: AccountId, day: Day) -> Result<u64, BankError> {
        let tag = self.tags().get(&account).copied().unwrap_or(account);
        let key = used_key(tag, account, day);
        let used: Option<u64> = self
            .call("used", async |c| {
                redis::cmd("GET").arg(&key).query_async(c).await
            })
            .await?;
        Ok(used.unwrap_or(0))
    }

    async fn claim(&self, account: AccountId, slot: u64) -> Result<bool, BankError> {
        let key = claim_key(account, slot);
        let set: Option<String> = self
            .call("claim", async |c| {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(CLAIM_TTL_SECS)
                    .query_async(c)
                    .await
            })
            .await?;
        Ok(set.is_some())
    }

    async fn tally(&self, filter: u64, day: Day, bytes: u64) -> Result<u64, BankError> {
        let key = tally_key(filter, day);
        let (total,): (u64,) = self
            .call("tally", async |c| {
                redis::pipe()
                    .atomic()
                    .cmd("INCRBY")
                    .arg(&key)
                    .arg(signed(bytes))
                    .cmd("EXPIREAT")
                    .arg(&key)
                    .arg(expire_at(day))
                    .ignore()
                    .query_async(c)
                    .await
            })
            .await?;
        Ok(total)
    }
}

/// Whose hash tag an account's count carries: its pool's main account, so the script
/// reaches both counts in one slot; the account itself without a pool.
fn tag_of(account: AccountId, allowance: &Allowance) -> AccountId {
    allowance.pool.map_or(account, |(main, _)| main)
}

/// Bytes granted to `account` on `day` (days since 1970-01-01, UTC).
fn used_key(tag: AccountId, account: AccountId, day: Day) -> String {
    format!("tg:{{{tag}}}:used:{account}:{}", day.0)
}

/// Bytes granted from `main`'s shared pool on `day`.
fn pool_key(main: AccountId, day: Day) -> String {
    format!("tg:{{{main}}}:pool:{}", day.0)
}

/// Set by the first gateway to claim `slot` of `account`. One key alone: any slot will
/// do, so it carries the account's own tag.
fn claim_key(account: AccountId, slot: u64) -> String {
    format!("tg:{{{account}}}:claim:{account}:{slot}")
}

/// What log drop filter `filter` let through on `day`. One key alone, tagged by itself.
fn tally_key(filter: u64, day: Day) -> String {
    format!("tg:{{f{filter}}}:passed:{}", day.0)
}

/// When `day`'s counts expire: `KEEP_DAYS` after its end, in unix seconds.
fn expire_at(day: Day) -> u64 {
    (u64::from(day.0) + 1 + KEEP_DAYS) * 86_400
}

/// `bytes`, or 2^53 when larger: a cap or pool that large is as good as none, and the
/// script's arithmetic stays exact.
fn exact(bytes: u64) -> u64 {
    bytes.min(EXACT_MAX)
}

fn signed(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// The passwords in `urls`, as written (percent-encoded) and as sent.
fn secrets_of(urls: &[&str]) -> Vec<String> {
    let mut secrets = Vec::new();
    for url in urls {
        if let Some(written) =
            redis::parse_redis_url(url).and_then(|u| u.password().map(str::to_owned))
        {
            secrets.push(written);
        }
        if let Ok(info) = url.into_connection_info()
            && let Some(sent) = info.redis_settings().password()
        {
            secrets.push(sent.to_owned());
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets
}

fn redact(message: &str, secrets: &[String]) -> String {
    secrets.iter().fold(message.to_owned(), |m, secret| {
        m.replace(secret.as_str(), "***")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_and_its_pool_share_a_hash_tag() {
        let (main, sub, day) = (AccountId(7), AccountId(42), Day(20_000));
        let pooled = Allowance {
            reserved: 10,
            cap: None,
            pool: Some((main, 100)),
        };
        let tag = tag_of(sub, &pooled);
        assert_eq!(used_key(tag, sub, day), "tg:{7}:used:42:20000");
        assert_eq!(pool_key(tag, day), "tg:{7}:pool:20000");
        assert_eq!(
            used_key(tag_of(sub, &Allowance::UNLIMITED), sub, day),
            "tg:{42}:used:42:20000",
            "without a pool, the account's own tag"
        );
        assert_eq!(claim_key(sub, 3), "tg:{42}:claim:42:3");
    }

    #[test]
    fn counts_expire_two_days_after_their_day() {
        // Day 1 is 1970-01-02; it ends at 172800 and is kept two more days.
        assert_eq!(expire_at(Day(1)), 2 * 86_400 + 2 * 86_400);
    }

    #[test]
    fn numbers_past_what_lua_holds_exactly_are_clamped() {
        assert_eq!(exact(5), 5);
        assert_eq!(exact(u64::MAX), 1 << 53);
        assert_eq!(signed(u64::MAX), i64::MAX);
    }

    #[test]
    fn passwords_are_cut_out_as_written_and_as_decoded() {
        let secrets = secrets_of(&["redis://user:p%40ss@127.0.0.1:1/0", "redis://127.0.0.1"]);
        assert_eq!(secrets, ["p%40ss", "p@ss"]);
        assert_eq!(
            redact("auth p@ss failed for p%40ss", &secrets),
            "auth *** failed for ***"
        );
    }
}
