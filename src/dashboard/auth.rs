//! Who may see the dashboard.
//!
//! - **Bind rule** ([`check_exposure`]): without a token the server binds only
//!   `127.0.0.1` or `[::1]`. Any other address (`0.0.0.0`, a LAN address, even
//!   another loopback address such as `127.0.0.2`, which containers and port
//!   forwarders may expose) needs a token.
//! - **Token** ([`Token`]): when one is set, every request must carry it, as
//!   `Authorization: Bearer T` or as the query parameter `?token=T` (the
//!   browser's `EventSource` cannot set headers, so the page passes it in the
//!   query). It is compared in constant time. A request without it gets 401.
//! - **Host check**: without a token, only requests whose `Host` is a loopback
//!   name (`127.0.0.1`, `localhost`, `[::1]`) are served, so a web page in the
//!   same browser cannot read the dashboard through DNS rebinding.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::DashboardError;

/// The dashboard's access token. Its `Debug` output never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<hidden>)")
    }
}

impl Token {
    /// A token: 1 to 256 visible ASCII characters (it travels in a header and a URL).
    pub fn new(value: &str) -> Result<Self, DashboardError> {
        let ok =
            !value.is_empty() && value.len() <= 256 && value.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(value.to_string()))
        } else {
            Err(DashboardError::BadToken)
        }
    }

    /// The value (to redact it from what the dashboard shows).
    pub fn value(&self) -> &str {
        &self.0
    }

    /// Whether `given` is the token. The time taken depends only on the
    /// token's length, not on where `given` first differs.
    pub fn matches(&self, given: &[u8]) -> bool {
        let want = self.0.as_bytes();
        let mut diff = want.len() ^ given.len();
        for (i, w) in want.iter().enumerate() {
            let g = given.get(i).copied().unwrap_or(0);
            diff |= usize::from(w ^ g);
        }
        diff == 0
    }
}

/// The addresses that may be bound without a token: `127.0.0.1` and `[::1]`.
pub fn is_private_address(ip: IpAddr) -> bool {
    ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST)
}

/// Refuses to expose the dashboard on any address but `127.0.0.1` / `[::1]`
/// without a token.
pub fn check_exposure(addr: SocketAddr, token: Option<&Token>) -> Result<(), DashboardError> {
    if token.is_none() && !is_private_address(addr.ip()) {
        return Err(DashboardError::TokenRequired { addr });
    }
    Ok(())
}

/// The access rules of one server.
#[derive(Debug, Clone)]
pub struct Access {
    /// The token every request must carry, if any.
    pub token: Option<Token>,
}

/// The token a request carries: `Authorization: Bearer T`, else `?token=T`.
fn presented(headers: &HeaderMap, query: Option<&str>) -> Option<Vec<u8>> {
    if let Some(value) = headers.get(header::AUTHORIZATION)
        && let Ok(text) = value.to_str()
        && let Some(token) = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
    {
        return Some(token.trim().as_bytes().to_vec());
    }
    query_param(query?, "token")
}

/// A query parameter's value, percent-decoded (`+` is a space).
pub fn query_param(query: &str, name: &str) -> Option<Vec<u8>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key.as_bytes()) == name.as_bytes())
            .then(|| percent_decode(value.as_bytes()))
    })
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => match (hex(input[i + 1]), hex(input[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Whether a `Host` header names this machine's loopback interface.
fn is_loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        // HTTP/1.0 clients may send none; they are not browsers.
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The middleware: 401 without the token (when one is set), 403 for a
/// foreign `Host` (when none is set).
pub async fn require(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
    match &access.token {
        Some(token) => {
            let given = presented(request.headers(), request.uri().query());
            if !given.is_some_and(|g| token.matches(&g)) {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    "401 Unauthorized: this dashboard needs its token, as `Authorization: Bearer <token>` or `?token=<token>`\n",
                )
                    .into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"llm-orchestrate\""),
                );
                return response;
            }
        }
        None => {
            if !is_loopback_host(request.headers()) {
                return (
                    StatusCode::FORBIDDEN,
                    "403 Forbidden: without a token the dashboard answers only to localhost, 127.0.0.1 and [::1]\n",
                )
                    .into_response();
            }
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches() {
        let token = Token::new("s3cret-token").unwrap();
        assert!(token.matches(b"s3cret-token"));
        for wrong in [
            &b""[..],
            b"s3cret-toke",
            b"s3cret-tokenX",
            b"S3cret-token",
            b"x",
        ] {
            assert!(!token.matches(wrong), "{wrong:?}");
        }
        assert_eq!(format!("{token:?}"), "Token(<hidden>)");
    }

    #[test]
    fn tokens_must_be_visible_ascii() {
        assert!(Token::new("").is_err());
        assert!(Token::new("has space").is_err());
        assert!(Token::new("naïve").is_err());
        assert!(Token::new(&"x".repeat(257)).is_err());
        assert!(Token::new("ok_Token-1.2~").is_ok());
    }

    #[test]
    fn only_the_two_loopback_addresses_go_without_a_token() {
        let token = Token::new("t").unwrap();
        for free in ["127.0.0.1:0", "[::1]:8080"] {
            let addr: SocketAddr = free.parse().unwrap();
            assert!(check_exposure(addr, None).is_ok(), "{free}");
        }
        for exposed in ["0.0.0.0:0", "127.0.0.2:80", "[::]:1", "192.168.1.2:7878"] {
            let addr: SocketAddr = exposed.parse().unwrap();
            let err = check_exposure(addr, None).unwrap_err().to_string();
            assert!(err.contains("--token"), "{err}");
            assert!(check_exposure(addr, Some(&token)).is_ok());
        }
    }

    #[test]
    fn the_token_comes_from_the_bearer_header_or_the_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            presented(&headers, Some("a=1&token=abc%2Fd")),
            Some(b"abc/d".to_vec())
        );
        assert_eq!(presented(&headers, Some("a=1")), None);
        assert_eq!(presented(&headers, None), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(
            presented(&headers, Some("token=abc")),
            Some(b"xyz".to_vec())
        );
        assert_eq!(query_param("after=12&x", "after"), Some(b"12".to_vec()));
        assert_eq!(query_param("x", "x"), Some(Vec::new()));
        assert_eq!(percent_decode(b"a%2"), b"a%2".to_vec());
        assert_eq!(percent_decode(b"%zz+%41"), b"%zz A".to_vec());
    }

    #[test]
    fn only_loopback_host_names_pass_without_a_token() {
        let with = |host: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static(host));
            is_loopback_host(&h)
        };
        for ok in [
            "127.0.0.1:7878",
            "localhost:1",
            "[::1]:80",
            "LOCALHOST",
            "127.0.0.1",
        ] {
            assert!(with(ok), "{ok}");
        }
        for bad in ["evil.example:7878", "10.0.0.1:80", "attacker.com"] {
            assert!(!with(bad), "{bad}");
        }
    }
}
