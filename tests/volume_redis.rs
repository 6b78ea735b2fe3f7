//! The Redis bank against a real `redis-server` (tests/common/redis.rs): the fleet's counts
//! hold across banks sharing one Redis, the script grants what `Allowance::grant` computes,
//! and an unreachable Redis is a quick `Unavailable`, never a hang.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use tollgate::config::VolumeConfig;
use tollgate::model::AccountId;
use tollgate::volume::bank::{Bank, BankError, Day, Grant, LocalBank};
use tollgate::volume::policy::Allowance;
use tollgate::volume::redis::RedisBank;

const TIMEOUT: Duration = Duration::from_millis(300);
const MAIN: AccountId = AccountId(1);

/// Today: a count's keys expire two days after their day, so a test's day must be now.
fn today() -> Day {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    Day::of_epoch_ms(u64::try_from(now.as_millis()).unwrap())
}

async fn bank(url: &str) -> RedisBank {
    RedisBank::connect(&VolumeConfig {
        redis_url: Some(url.to_string()),
        bank_timeout_secs: TIMEOUT,
        ..VolumeConfig::default()
    })
    .await
    .expect("a bank on a usable URL")
}

fn capped(cap: u64) -> Allowance {
    Allowance {
        reserved: cap,
        cap: Some(cap),
        pool: None,
    }
}

fn pooled(reserved: u64, cap: Option<u64>, pool: u64) -> Allowance {
    Allowance {
        reserved,
        cap,
        pool: Some((MAIN, pool)),
    }
}

fn unavailable<T: std::fmt::Debug>(result: Result<T, BankError>) -> String {
    match result {
        Err(BankError::Unavailable(message)) => message,
        Ok(value) => panic!("Redis answered {value:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_banks_on_one_redis_grant_exactly_the_cap() {
    let Some(redis) = common::redis::start("two_banks_on_one_redis_grant_exactly_the_cap") else {
        return;
    };
    let (a, b) = (bank(&redis.url).await, bank(&redis.url).await);
    let (acme, day) = (AccountId(7), today());
    let asks = (0..400).map(|i| {
        let bank = if i % 2 == 0 { &a } else { &b };
        bank.acquire(acme, day, 7, capped(1_000))
    });
    let grants: Vec<Grant> = join_all(asks)
        .await
        .into_iter()
        .map(|g| g.expect("Redis is up"))
        .collect();
    let total: u64 = grants.iter().map(|g| g.granted).sum();
    assert_eq!(total, 1_000, "every byte of the cap, and not one more");
    assert!(grants.iter().all(|g| g.used <= 1_000));
    assert_eq!(
        grants.iter().filter(|g| g.granted == 1_000 % 7).count(),
        1,
        "one ask got the cap's remainder"
    );
    assert_eq!(a.used(acme, day).await.unwrap(), 1_000);
    assert_eq!(b.used(acme, day).await.unwrap(), 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flexible_account_takes_its_reservation_then_the_pool_it_shares_with_its_main() {
    let Some(redis) = common::redis::start("flexible_reservation_then_pool") else {
        return;
    };
    let (gateway_a, gateway_b) = (bank(&redis.url).await, bank(&redis.url).await);
    let (sub, other, day) = (AccountId(2), AccountId(3), today());
    let flexible = pooled(100, Some(130), 50);
    assert_eq!(
        gateway_a.acquire(sub, day, 80, flexible).await.unwrap(),
        Grant {
            granted: 80,
            used: 80
        },
        "inside the reservation"
    );
    assert_eq!(
        gateway_b.acquire(sub, day, 80, flexible).await.unwrap(),
        Grant {
            granted: 50,
            used: 130
        },
        "20 reserved, then 30 pooled up to the cap"
    );
    let main = gateway_a.acquire(MAIN, day, 50, pooled(0, None, 50));
    assert_eq!(
        main.await.unwrap().granted,
        20,
        "the main account gets what its sub-account left of the pool"
    );
    assert_eq!(
        gateway_b
            .acquire(other, day, 10, pooled(5, None, 50))
            .await
            .unwrap(),
        Grant {
            granted: 5,
            used: 5
        },
        "another account: its reservation, and nothing of the spent pool"
    );
    let pool: u64 = redis.command(redis::cmd("GET").arg(format!("tg:{{1}}:pool:{}", day.0)));
    assert_eq!(pool, 50);
    assert_eq!(gateway_b.used(sub, day).await.unwrap(), 130);
    assert_eq!(gateway_a.used(MAIN, day).await.unwrap(), 20);
}

/// Every kind of allowance, asked in an order no test would pick by hand: the Redis bank
/// grants exactly what the in-process one does, whose arithmetic is `Allowance::grant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_script_grants_what_the_local_bank_grants() {
    let Some(redis) = common::redis::start("the_script_grants_what_the_local_bank_grants") else {
        return;
    };
    let (remote, local, day) = (bank(&redis.url).await, LocalBank::default(), today());
    let accounts = [
        (AccountId(10), capped(5_000)),
        (AccountId(11), pooled(1_000, Some(4_000), 6_000)),
        (AccountId(12), pooled(0, None, 6_000)),
        (MAIN, pooled(500, None, 6_000)),
        (AccountId(13), Allowance::UNLIMITED),
        (AccountId(14), pooled(2_000, Some(1_500), 6_000)),
    ];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..300 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let (account, allowance) = accounts[usize::try_from(seed % 6).unwrap()];
        let want = (seed >> 8) % 900;
        assert_eq!(
            remote.acquire(account, day, want, allowance).await.unwrap(),
            local.acquire(account, day, want, allowance).await.unwrap(),
            "{account} asking {want} under {allowance:?}"
        );
    }
    for (account, _) in accounts {
        assert_eq!(
            remote.used(account, day).await.unwrap(),
            local.used(account, day).await.unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_expire_two_days_after_their_day() {
    let Some(redis) = common::redis::start("counts_expire_two_days_after_their_day") else {
        return;
    };
    let (bank, day) = (bank(&redis.url).await, today());
    bank.acquire(AccountId(2), day, 10, pooled(0, None, 100))
        .await
        .unwrap();
    let end_plus_two = (u64::from(day.0) + 3) * 86_400;
    for key in [
        format!("tg:{{1}}:used:2:{}", day.0),
        format!("tg:{{1}}:pool:{}", day.0),
    ] {
        let at: u64 = redis.command(redis::cmd("EXPIRETIME").arg(&key));
        assert_eq!(at, end_plus_two, "{key}");
    }
    assert!(bank.claim(AccountId(2), 9).await.unwrap());
    let ttl: u64 = redis.command(redis::cmd("TTL").arg("tg:{2}:claim:2:9"));
    assert!(
        (86_000..=86_400).contains(&ttl),
        "a claim is kept a day: {ttl}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bank_of_the_fleet_claims_each_slot() {
    let Some(redis) = common::redis::start("one_bank_of_the_fleet_claims_each_slot") else {
        return;
    };
    let (a, b) = (bank(&redis.url).await, bank(&redis.url).await);
    let acme = AccountId(5);
    for slot in 100..110 {
        let (x, y) = tokio::join!(a.claim(acme, slot), b.claim(acme, slot));
        assert!(x.unwrap() ^ y.unwrap(), "slot {slot}: exactly one claim");
    }
    assert!(!a.claim(acme, 100).await.unwrap(), "claimed before");
    assert!(
        a.claim(AccountId(6), 100).await.unwrap(),
        "another account's slot"
    );
}

/// Asks until Redis answers, each ask within the bank's timeout.
async fn until_answered(bank: &RedisBank, account: AccountId, day: Day) -> Grant {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let started = Instant::now();
        let result = bank.acquire(account, day, 10, capped(1_000)).await;
        assert!(
            started.elapsed() < TIMEOUT * 2,
            "an ask outlasted the timeout"
        );
        match result {
            Ok(grant) => return grant,
            Err(e) => assert!(Instant::now() < deadline, "Redis never came back: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_fails_fast_while_redis_is_down_and_works_again_after_a_restart() {
    let Some(mut redis) = common::redis::start("a_bank_fails_fast_while_redis_is_down") else {
        return;
    };
    let (acme, day) = (AccountId(7), today());
    let before = bank(&redis.url).await;
    assert_eq!(
        before
            .acquire(acme, day, 10, capped(1_000))
            .await
            .unwrap()
            .granted,
        10
    );
    redis.kill();
    let started_without_redis = bank(&redis.url).await;
    for bank in [&before, &started_without_redis] {
        let started = Instant::now();
        let message = unavailable(bank.acquire(acme, day, 10, capped(1_000)).await);
        assert!(started.elapsed() < TIMEOUT * 2, "{:?}", started.elapsed());
        assert!(message.starts_with("redis acquire: "), "{message}");
        unavailable(bank.used(acme, day).await);
        unavailable(bank.claim(acme, 1).await);
    }
    redis.restart();
    for bank in [&before, &started_without_redis] {
        let grant = until_answered(bank, acme, day).await;
        assert_eq!(grant.granted, 10);
    }
    assert_eq!(
        before.used(acme, day).await.unwrap(),
        20,
        "a restarted Redis without persistence starts the day over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_is_unavailable_within_the_timeout() {
    let Some(redis) = common::redis::start("a_frozen_redis_is_unavailable_within_the_timeout")
    else {
        return;
    };
    let (acme, day) = (AccountId(7), today());
    let bank = bank(&redis.url).await;
    bank.acquire(acme, day, 10, capped(1_000)).await.unwrap();
    redis.pause();
    let started = Instant::now();
    let message = unavailable(bank.acquire(acme, day, 10, capped(1_000)).await);
    let took = started.elapsed();
    assert!(
        took >= TIMEOUT / 2 && took < TIMEOUT * 2,
        "{took:?}: {message}"
    );
    redis.resume();
    until_answered(&bank, acme, day).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_url_never_appears_in_an_error() {
    const PASSWORD: &str = "s3cret-Pw";
    let Some(mut redis) = common::redis::start_with(
        "a_password_in_the_url_never_appears_in_an_error",
        &["--requirepass", PASSWORD],
    ) else {
        return;
    };
    let (acme, day) = (AccountId(7), today());
    let right = bank(&format!("redis://:{PASSWORD}@{}/0", redis.addr())).await;
    assert_eq!(
        right
            .acquire(acme, day, 10, capped(100))
            .await
            .unwrap()
            .granted,
        10
    );
    let wrong = bank(&format!("redis://tollgate:wr%40ng-Pw@{}/0", redis.addr())).await;
    let message = unavailable(wrong.acquire(acme, day, 10, capped(100)).await);
    assert!(
        !message.contains("wr%40ng-Pw") && !message.contains("wr@ng-Pw"),
        "{message}"
    );
    redis.kill();
    let message = unavailable(right.acquire(acme, day, 10, capped(100)).await);
    assert!(!message.contains(PASSWORD), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_bank_keeps_a_plans_counts_in_one_slot() {
    let Some(redis) =
        common::redis::start_cluster("a_cluster_bank_keeps_a_plans_counts_in_one_slot")
    else {
        return;
    };
    let config = VolumeConfig {
        redis_cluster_nodes: vec![redis.url.clone()],
        bank_timeout_secs: TIMEOUT,
        ..VolumeConfig::default()
    };
    let (a, b) = (
        RedisBank::connect(&config).await.unwrap(),
        RedisBank::connect(&config).await.unwrap(),
    );
    let (sub, day) = (AccountId(2), today());
    let asks = (0..100).map(|i| {
        let (bank, account) = if i % 2 == 0 { (&a, sub) } else { (&b, MAIN) };
        bank.acquire(account, day, 10, pooled(0, None, 555))
    });
    let total: u64 = join_all(asks)
        .await
        .into_iter()
        .map(|g| g.expect("no CROSSSLOT: one hash tag per plan").granted)
        .sum();
    assert_eq!(total, 555, "two accounts drew the whole pool, no more");
    assert!(a.claim(sub, 1).await.unwrap());
    assert!(!b.claim(sub, 1).await.unwrap());
}

/// `rediss://` is TLS with the system's roots: a certificate no system trusts is refused
/// (the handshake ran, and rustls found its crypto provider).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_speaks_tls_to_rediss_and_checks_the_certificate() {
    let Some(redis) = common::redis::start_tls("a_bank_speaks_tls_to_rediss") else {
        return;
    };
    let bank = bank(&redis.url).await;
    let message = unavailable(bank.acquire(AccountId(7), today(), 10, capped(100)).await);
    assert!(message.contains("UnknownIssuer"), "{message}");
}
