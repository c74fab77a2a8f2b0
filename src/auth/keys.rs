//! API keys for scoring clients: `lb_<prefix>_<secret>`. The prefix (random, public) finds the
//! row; only the SHA-256 of the whole key is stored, so a database leak reveals no key. A key
//! is shown once, at creation.

/// A parsed `Authorization: Bearer` value that looks like an API key.
pub struct PresentedKey<'a> {
    pub prefix: &'a str,
    pub whole: &'a str,
}

pub const MARK: &str = "lb_";

/// A new key: (the key to show once, its prefix, its digest to store).
pub fn generate() -> (String, String, String) {
    let prefix: String =
        super::random_secret(6).chars().map(|c| if c.is_ascii_alphanumeric() { c } else { 'x' }).collect();
    let key = format!("{MARK}{prefix}_{}", super::random_secret(32));
    let digest = super::digest(&key);
    (key, prefix, digest)
}

/// Splits a presented key; None when it does not have the shape of one.
pub fn parse(token: &str) -> Option<PresentedKey<'_>> {
    let rest = token.strip_prefix(MARK)?;
    let (prefix, secret) = rest.split_once('_')?;
    let ok = prefix.len() == 8 && prefix.chars().all(|c| c.is_ascii_alphanumeric()) && secret.len() >= 32;
    ok.then_some(PresentedKey { prefix, whole: token })
}

/// Scopes a key may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `POST .../score` and `/score`.
    Score,
    /// Read-only project routes (project, stats, items, events).
    Read,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "score" => Some(Scope::Score),
            "read" => Some(Scope::Read),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Score => "score",
            Scope::Read => "read",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let (key, prefix, digest) = generate();
        let parsed = parse(&key).unwrap();
        assert_eq!(parsed.prefix, prefix);
        assert_eq!(crate::auth::digest(parsed.whole), digest);
        assert!(parse("lb_short_x").is_none());
        assert!(parse("eyJhbGciOi.x.y").is_none());
        assert_eq!(Scope::parse("score"), Some(Scope::Score));
        assert_eq!(Scope::parse("admin"), None);
    }
}
