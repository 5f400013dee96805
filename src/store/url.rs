//! Store URLs: recognising them and keeping their passwords out of messages.

/// True for `postgres://` and `postgresql://` URLs.
pub fn is_postgres_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// The URL with its password (in the user part or a `password=` parameter)
/// replaced by `***`; an unparsable URL is not shown at all.
pub fn redact(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return "<unparsable store URL>".into();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let secret =
                k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword");
            (
                k.into_owned(),
                if secret { "***".into() } else { v.into_owned() },
            )
        })
        .collect();
    if !pairs.is_empty() {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// `message` with every password of `url` replaced by `***` (a driver may
/// echo the URL or its parts back in an error).
pub fn scrub(message: &str, url: &str) -> String {
    let mut out = message.replace(url, &redact(url));
    if let Ok(parsed) = reqwest::Url::parse(url) {
        let mut secrets: Vec<String> = parsed
            .query_pairs()
            .filter(|(k, _)| {
                k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword")
            })
            .map(|(_, v)| v.into_owned())
            .collect();
        if let Some(password) = parsed.password() {
            secrets.push(password.to_string());
            if let Ok(decoded) = percent_decode(password) {
                secrets.push(decoded);
            }
        }
        for secret in secrets.iter().filter(|s| s.len() >= 3) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

/// Decodes `%XX` escapes.
fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let url = "postgres://llmo:s3cr%40t@db.example:5433/runs?sslmode=disable&password=other1";
        let shown = redact(url);
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(!shown.contains("other1"), "{shown}");
        assert!(shown.contains("llmo:***@db.example:5433/runs"), "{shown}");
        let message = format!("cannot connect to {url}: password s3cr@t refused, other1");
        let scrubbed = scrub(&message, url);
        assert!(
            !scrubbed.contains("s3cr") && !scrubbed.contains("other1"),
            "{scrubbed}"
        );
        assert_eq!(redact("not a url"), "<unparsable store URL>");
    }

    #[test]
    fn recognises_postgres_urls() {
        assert!(is_postgres_url("postgres://h/db"));
        assert!(is_postgres_url("PostgreSQL://h/db"));
        assert!(!is_postgres_url("sqlite://x"));
        assert!(!is_postgres_url("/tmp/x"));
    }
}
