//! Accounts and access: password hashing, signed access tokens with key rotation, opaque
//! refresh tokens and API keys, and the role table. Pure functions and values: the store keeps
//! the hashes, the server decides who is calling; nothing here touches HTTP or SQL.

pub mod keys;
pub mod password;
pub mod roles;
pub mod tokens;

/// A fresh random secret, URL-safe, `bytes` of entropy (ThreadRng is a CSPRNG seeded from
/// the OS).
pub fn random_secret(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 of a high-entropy secret (refresh token, API key), hex. A slow hash is for
/// passwords; these have 256 bits of entropy, so a fast one cannot be brute-forced.
pub fn digest(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Equality that takes the same time wherever the inputs differ (for comparing digests).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_digests_stable() {
        let a = random_secret(32);
        let b = random_secret(32);
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(digest("x"), digest("x"));
        assert!(same(&digest(&a), &digest(&a)));
        assert!(!same(&digest(&a), &digest(&b)));
        assert!(!same("ab", "abc"));
    }
}
