//! Access tokens: short-lived JWTs (HS256) naming the user, organisation, role and session.
//! Each signing key has an id (`kid` in the token header); new tokens are signed with the
//! active key and any configured key verifies, so a key is rotated by adding a new one, making
//! it active, and removing the old one once the longest-lived token signed with it has
//! expired. The session id ties a token to its refresh token: revoking the session (logout,
//! password change, removal from the organisation) rejects its access tokens at once.

use std::collections::HashMap;

use jsonwebtoken::{decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Shortest signing secret accepted: HS256 wants at least the hash's 256 bits.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// User id, as a string (JWT's `sub` is a string).
    pub sub: String,
    /// Organisation id the token acts in.
    pub org: i64,
    pub role: String,
    /// Session (refresh token row) id.
    pub sid: i64,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

pub struct SigningKeys {
    active: String,
    keys: HashMap<String, (EncodingKey, DecodingKey)>,
}

impl std::fmt::Debug for SigningKeys {
    /// Key ids only: secrets never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("SigningKeys").field("active", &self.active).field("kids", &kids).finish()
    }
}

impl AccessClaims {
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

impl SigningKeys {
    /// `specs` are `kid:secret`; `active` names the signing key (default: the last one given).
    pub fn parse(specs: &[String], active: Option<&str>) -> Result<SigningKeys, String> {
        let mut keys = HashMap::new();
        let mut last = None;
        for spec in specs {
            let (kid, secret) =
                spec.split_once(':').ok_or("a signing key must be given as KID:SECRET (the secret is not shown)")?;
            let kid_ok = !kid.is_empty()
                && kid.len() <= 64
                && kid.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !kid_ok {
                return Err(format!("signing key id `{kid}` must be 1-64 letters, digits, '-', '_' or '.'"));
            }
            if secret.len() < MIN_SECRET_BYTES {
                return Err(format!("signing key `{kid}`: the secret must be at least {MIN_SECRET_BYTES} bytes"));
            }
            if keys
                .insert(
                    kid.to_string(),
                    (EncodingKey::from_secret(secret.as_bytes()), DecodingKey::from_secret(secret.as_bytes())),
                )
                .is_some()
            {
                return Err(format!("signing key id `{kid}` is given twice"));
            }
            last = Some(kid.to_string());
        }
        let active = match active {
            Some(a) if keys.contains_key(a) => a.to_string(),
            Some(a) => return Err(format!("the active signing key `{a}` is not among the configured keys")),
            None => last.ok_or("no signing key configured")?,
        };
        Ok(SigningKeys { active, keys })
    }

    pub fn issue(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        let (enc, _) = self.keys.get(&self.active).ok_or_else(|| anyhow::anyhow!("the active key vanished"))?;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.active.clone());
        Ok(encode(&header, claims, enc)?)
    }

    /// Checks the signature (with the key the header names), the algorithm and expiry.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Invalid(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| TokenError::Invalid("the token names no key".into()))?;
        let (_, dec) = self.keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        decode::<AccessClaims>(token, dec, &validation).map(|d| d.claims).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            // A bad signature with a known kid: signed by someone without the key.
            _ => TokenError::Invalid(e.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a:0123456789abcdef0123456789abcdef";
    const B: &str = "b:fedcba9876543210fedcba9876543210";

    fn claims(exp_in: i64) -> AccessClaims {
        let now = crate::store::now_ms() / 1000;
        AccessClaims { sub: "7".into(), org: 3, role: "labeller".into(), sid: 11, iat: now, exp: now + exp_in }
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_until_the_key_is_retired() {
        let old = SigningKeys::parse(&[A.into()], None).unwrap();
        let token = old.issue(&claims(60)).unwrap();
        let both = SigningKeys::parse(&[A.into(), B.into()], Some("b")).unwrap();
        assert_eq!(both.verify(&token).unwrap(), old.verify(&token).unwrap());
        let fresh = both.issue(&claims(60)).unwrap();
        assert_eq!(decode_header(&fresh).unwrap().kid.as_deref(), Some("b"));
        let retired = SigningKeys::parse(&[B.into()], None).unwrap();
        assert_eq!(retired.verify(&token), Err(TokenError::UnknownKey));
        assert!(retired.verify(&fresh).is_ok());
    }

    #[test]
    fn expired_forged_and_malformed_tokens_are_refused() {
        let keys = SigningKeys::parse(&[A.into()], None).unwrap();
        assert_eq!(keys.verify(&keys.issue(&claims(-5)).unwrap()), Err(TokenError::Expired));
        // Same kid, another secret: a forgery.
        let forger = SigningKeys::parse(&["a:this-is-not-the-right-secret-at-all".into()], None).unwrap();
        assert!(matches!(keys.verify(&forger.issue(&claims(60)).unwrap()), Err(TokenError::Invalid(_))));
        assert!(matches!(keys.verify("not.a.token"), Err(TokenError::Invalid(_))));
        assert!(SigningKeys::parse(&["a:short".into()], None).is_err());
        assert!(SigningKeys::parse(&[A.into()], Some("zzz")).is_err());
        assert!(!format!("{keys:?}").contains("0123456789abcdef"), "secrets never printed");
    }
}
