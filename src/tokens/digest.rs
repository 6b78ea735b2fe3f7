//! Token syntax and SHA-256 digests. The gateway never keeps a token, only its digest,
//! so a memory dump or a persisted snapshot reveals no usable token (DESIGN §2).

use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use sha2::{Digest as _, Sha256};

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
    (MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.len())
        // Every byte looked at, without a branch a byte: tokens are mostly well formed.
        && token
            .bytes()
            .fold(true, |ok, b| ok & TOKEN_BYTES[usize::from(b)])
}

/// The bytes a token may hold, by value: one load a byte on every request's token.
static TOKEN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

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
