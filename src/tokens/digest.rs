//! Token syntax and SHA-256 digests. The gateway never keeps a token, only its digest,
//! so a memory dump or a persisted snapshot reveals no usable token (DESIGN §2).

use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use sha2::{Digest as _, Sha256};
use wide::u8x16;

/// Shortest and longest token accepted (DESIGN §2).
pub const MIN_TOKEN_LEN: usize = 16;
pub const MAX_TOKEN_LEN: usize = 64;

/// A token's SHA-256 digest: the only form in which the gateway holds tokens.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Hashes a presented token (~100 ns for a 32-char token).
    pub fn of(token: &str) -> Digest {
        Digest(Sha256::digest(token.as_bytes()).into())
    }

    /// Parses 64 hex characters; anything else is `None`.
    pub fn from_hex(s: &str) -> Option<Digest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Digest(out))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({}…)", &self.to_hex()[..8])
    }
}

/// A digest is already uniformly random: its first 8 bytes are as good a hash as any,
/// so the table does not pay for hashing 32 bytes a second time (DESIGN §7).
impl Hash for Digest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// Pass-through hasher for `Digest` keys (see `impl Hash for Digest`).
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than a Digest is hashed with it; stay correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
}

pub type BuildDigestHasher = BuildHasherDefault<DigestHasher>;

/// True when `token` has the shape of a token: 16–64 chars of `[A-Za-z0-9_-]`.
/// Checked before any hashing or lookup, so junk costs nothing.
pub fn is_well_formed(token: &str) -> bool {
    (MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.len()) && all_token_bytes(token.as_bytes())
}

/// Whether every byte of `bytes` is one a token may hold. Sixteen at a time (`wide`), as
/// every request's token is looked at: a table load a byte cost ~100 instructions.
fn all_token_bytes(bytes: &[u8]) -> bool {
    let mut blocks = bytes.chunks_exact(16);
    let whole = blocks.all(|b| token_bytes_in(b.try_into().expect("sixteen bytes")));
    let rest = blocks.remainder();
    // Padded with a byte a token may hold.
    let mut last = [b'a'; 16];
    last[..rest.len()].copy_from_slice(rest);
    whole && (rest.is_empty() || token_bytes_in(last))
}

/// Whether all sixteen bytes are `[A-Za-z0-9_-]`.
#[inline(always)]
fn token_bytes_in(block: [u8; 16]) -> bool {
    let v = u8x16::new(block);
    let within =
        |v: u8x16, lo: u8, hi: u8| v.max(u8x16::splat(lo)).min(u8x16::splat(hi)).simd_eq(v);
    // Setting the 0x20 bit folds `A-Z` onto `a-z`, and no other byte into it.
    let letter = within(v | u8x16::splat(0x20), b'a', b'z');
    let ok = within(v, b'0', b'9')
        | letter
        | v.simd_eq(u8x16::splat(b'_'))
        | v.simd_eq(u8x16::splat(b'-'));
    ok.to_bitmask() == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_at_every_place_is_judged_as_the_token_alphabet_says() {
        let allowed = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        for len in [16, 17, 31, 32, 33, 64] {
            for at in [0, 7, 15, len - 1] {
                for c in 0..=255u8 {
                    let mut token = vec![b'x'; len];
                    token[at] = c;
                    assert_eq!(
                        all_token_bytes(&token),
                        allowed(c),
                        "{c:#x} at {at} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn syntax_bounds() {
        assert!(is_well_formed("abcdefghijklmnop"));
        assert!(!is_well_formed("abcdefghijklmno"));
        assert!(is_well_formed(&"a".repeat(64)));
        assert!(!is_well_formed(&"a".repeat(65)));
        assert!(!is_well_formed("abcdefghijklmnop!"));
        assert!(!is_well_formed("abcdefghijklmnöp"));
        assert!(is_well_formed("ABC-def_0123456789"));
    }

    #[test]
    fn digest_matches_sha256_and_round_trips_hex() {
        let d = Digest::of("abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::from_hex(&d.to_hex()), Some(d));
        assert_eq!(Digest::from_hex("zz"), None);
        assert!(!format!("{d:?}").contains(&d.to_hex()));
    }
}
