//! Fetching images by URL for scoring, without letting a client turn the server into a proxy
//! into its own network: http(s) only, every resolved address must be public (unless the
//! operator allows private ones), the connection is pinned to the checked address, no
//! redirects, a timeout, a size cap and an image content type.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;

#[derive(Debug, Clone)]
pub struct FetchPolicy {
    pub allow_private: bool,
    pub timeout: Duration,
    pub max_bytes: usize,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy { allow_private: false, timeout: Duration::from_secs(10), max_bytes: 10 * 1024 * 1024 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("`{0}` is not a valid http(s) URL")]
    BadUrl(String),
    #[error("`{url}` resolves to {addr}, a private or loopback address; fetching it is not allowed")]
    Private { url: String, addr: IpAddr },
    #[error("`{url}` could not be fetched: {reason}")]
    Failed { url: String, reason: String },
    #[error("`{url}` answered with content type `{content_type}`, not an image")]
    NotAnImage { url: String, content_type: String },
    #[error("`{url}` is larger than {max} bytes")]
    TooLarge { url: String, max: usize },
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 198 && (18..20).contains(&o[1]))
        || o[0] >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || s[0] == 0x2001 && s[1] == 0x0db8)
}

pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

pub async fn fetch_image(policy: &FetchPolicy, url: &str) -> Result<Vec<u8>, FetchError> {
    let bad = || FetchError::BadUrl(url.to_string());
    let parsed = reqwest::Url::parse(url).map_err(|_| bad())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad());
    }
    let host = parsed.host_str().ok_or_else(bad)?.to_string();
    let port = parsed.port_or_known_default().ok_or_else(bad)?;
    let failed = |reason: String| FetchError::Failed { url: url.to_string(), reason };
    let lookup_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let addrs: Vec<SocketAddr> = tokio::time::timeout(policy.timeout, tokio::net::lookup_host((lookup_host, port)))
        .await
        .map_err(|_| failed("DNS lookup timed out".into()))?
        .map_err(|e| failed(format!("DNS lookup failed: {e}")))?
        .collect();
    let Some(&first) = addrs.first() else { return Err(failed("the host has no address".into())) };
    if !policy.allow_private {
        if let Some(addr) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(FetchError::Private { url: url.to_string(), addr: addr.ip() });
        }
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(policy.timeout)
        .resolve(&host, first)
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let resp = client.get(parsed).send().await.map_err(|e| failed(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(failed(format!("HTTP {}", resp.status())));
    }
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("image/") {
        return Err(FetchError::NotAnImage { url: url.to_string(), content_type });
    }
    let too_large = || FetchError::TooLarge { url: url.to_string(), max: policy.max_bytes };
    if resp.content_length().is_some_and(|n| n as usize > policy.max_bytes) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| failed(e.to_string()))?;
        if body.len() + chunk.len() > policy.max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
