//! What several benches share: the synthetic token table's shape and a deterministic mix,
//! so `tokens` and `token_table` measure the same table.
#![allow(dead_code)] // each bench uses a different part

/// Tokens in the benched table, as DESIGN §7's "1M tokens".
pub const TABLE_SIZE: u64 = 1_000_000;
/// Accounts the tokens are spread over (names shared per account).
pub const ACCOUNTS: u64 = 10_000;
/// Distinct tokens the `hit_spread` benches cycle through: enough that their table slots
/// and `TokenInfo`s do not all stay in cache, as with real traffic over a large table.
pub const SPREAD: u64 = 4096;

/// A deterministic, well-spread 64-bit mix (splitmix64), so values look random without `rand`.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The `i`th token of the table: 32 chars of `[a-z0-9_]`, like a typical shipping token.
pub fn token(i: u64) -> String {
    format!("tok_{:016x}{:012x}", mix(i), i)
}
