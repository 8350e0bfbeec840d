//! Keeping secrets out of everything brain writes down: log lines (at every
//! level, from every crate), error details, error-tracking events, configuration
//! errors and `brain-server config`.
//!
//! Secrets are database passwords, the OpenAI key, the Sentry DSN and API keys.
//! They are removed in two ways, because neither alone is enough:
//!
//! - **By shape** ([`url`], [`text`]): a URL's userinfo (`scheme://user:<redacted>@host`;
//!   a lone user part, as in a Sentry DSN, is a key and goes whole), the values
//!   of secret-looking query parameters (`password=`, `sslpassword=`, `key=`,
//!   `token=`, ... also when the name is percent-encoded), `password=value`
//!   pairs in free text, `Bearer` and `Basic` credentials, and brain (`brk_`) and OpenAI (`sk-`)
//!   keys. This works for secrets brain was never told about (a key echoed in
//!   an upstream error body).
//! - **By value** ([`register`], called by `Config::register_secrets`): the configured secrets
//!   are registered at startup and replaced wherever they appear, in their raw,
//!   percent-decoded, percent-encoded and JSON/Debug-escaped forms. This works
//!   where a driver prints a password without the URL around it. Values shorter
//!   than [`MIN_REGISTERED_CHARS`] are not registered: replacing every "brain"
//!   in the logs would destroy them, and such a password is only protected by
//!   shape (where it appears inside a URL).
//!
//! Where it runs: `Error::internal` / `Error::store_unavailable` redact their
//! detail when the error is built (so an error made from a database or HTTP
//! client error is clean before anyone formats it, logs or prints it), the log
//! writer redacts each formatted line before it reaches stderr, and error
//! tracking scrubs every event with [`text`] before it is sent.

use std::{
    fmt,
    sync::{OnceLock, RwLock},
};

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// A configured secret: an API key or a Sentry DSN (never shown), or a URL that may carry
/// credentials, such as a database URL or a model API's base URL (shown through [`url`]: scheme,
/// user, host and path kept, password and secret query parameters hidden).
///
/// This `Debug` is the one every configuration struct uses for its secrets, so they all derive
/// `Debug` and print a secret the same way: as [`Secret::redacted`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    is_url: bool,
}

impl Secret {
    /// A secret shown as [`REDACTED`], whole.
    pub fn new(value: impl Into<String>) -> Self {
        Self { value: value.into(), is_url: false }
    }

    /// A URL shown with its credentials hidden ([`url`]).
    pub fn url(value: impl Into<String>) -> Self {
        Self { value: value.into(), is_url: true }
    }

    /// The value itself, for the one place that uses it: a database driver, an `Authorization`
    /// header, the error-tracking SDK.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The value as it may be shown: in logs, errors and `Debug`.
    pub fn redacted(&self) -> String {
        if self.is_url { url(&self.value) } else { REDACTED.to_owned() }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), f)
    }
}

/// Shortest secret value replaced by value (see the module docs).
pub const MIN_REGISTERED_CHARS: usize = 8;

/// Characters of a brain API key kept after `brk_`: the prefix `brain-server keys list` shows.
const SHOWN_KEY_CHARS: usize = 8;

/// `name=value` pairs whose value is hidden in free text (exact names, any case).
const SECRET_PAIR_NAMES: [&str; 12] = [
    "password",
    "passwd",
    "pwd",
    "sslpassword",
    "secret",
    "api_key",
    "apikey",
    "openai_api_key",
    "sentry_dsn",
    "dsn",
    "access_token",
    "auth_token",
];

/// Hides the userinfo and secret query parameter values of one URL; anything
/// else (scheme, user name before a password, host, path) is kept for
/// debugging. Text without `://` is returned as it is.
///
/// The userinfo ends at the *last* `@`, so a password with an unencoded `@`,
/// `/` or `?` is still hidden whole (at worst, more is hidden than needed).
pub fn url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_owned() };
    let body_start = scheme_end + 3;
    let body = &url[body_start..];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..body_start]);
    let rest = match body.rfind('@') {
        Some(at) => {
            match body[..at].split_once(':') {
                // `user:password@`: the user name helps debugging and is not a secret.
                Some((user, _)) if !user.is_empty() && !user.contains(['/', '?', '#']) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(REDACTED);
                }
                // A lone user part is a key (a Sentry DSN's public key, a token-as-user URL).
                _ => out.push_str(REDACTED),
            }
            out.push('@');
            &body[at + 1..]
        }
        None => body,
    };
    match rest.find('?') {
        Some(q) => {
            out.push_str(&rest[..=q]);
            out.push_str(&query(&rest[q + 1..]));
        }
        None => out.push_str(rest),
    }
    out
}

/// Hides the values of secret-looking parameters of a query string (up to an optional `#fragment`).
fn query(query: &str) -> String {
    let (params, fragment) = match query.find('#') {
        Some(hash) => (&query[..hash], &query[hash..]),
        None => (query, ""),
    };
    let mut out = String::with_capacity(query.len());
    for (i, pair) in params.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) if is_secret_parameter(name) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
    }
    out.push_str(fragment);
    out
}

/// Whether a query parameter (percent-encoded or not) names a credential.
fn is_secret_parameter(name: &str) -> bool {
    let name = percent_decode(name).to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "key", "auth", "credential", "signature"].iter().any(|s| name.contains(s))
        || name == "sig"
}

/// Redacts every secret in free text: URLs (see [`url`]), `password=value`
/// pairs, `Bearer` and `Basic` credentials, brain and OpenAI keys, and every registered secret.
pub fn text(input: &str) -> String {
    let mut out = urls_in(input);
    out = pairs_in(&out);
    out = authorization_values_in(&out);
    out = prefixed_keys_in(&out, "brk_", SHOWN_KEY_CHARS);
    out = prefixed_keys_in(&out, "sk-", 0);
    registered_in(out)
}

fn urls_in(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(sep) = rest.find("://") {
        let scheme_start = rest[..sep]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let after = &rest[sep + 3..];
        // A URL ends at white space or a quote (escaped or not), as it does in log fields.
        let len = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | '\\'))
            .unwrap_or(after.len());
        let end = sep + 3 + len;
        out.push_str(&rest[..scheme_start]);
        out.push_str(&url(&rest[scheme_start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn pairs_in(input: &str) -> String {
    if !input.contains('=') {
        return input.to_owned();
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(eq) = rest.find('=') {
        let name_start =
            rest[..eq].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).map_or(0, |i| i + 1);
        let name = &rest[name_start..eq];
        out.push_str(&rest[..=eq]);
        rest = &rest[eq + 1..];
        if SECRET_PAIR_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            // A quoted value runs to its closing quote; a bare one to white space or a separator.
            let (quote, value_len) = match rest.chars().next() {
                Some(q @ ('"' | '\'')) => (1, rest[1..].find(q).unwrap_or(rest.len() - 1)),
                _ => (
                    0,
                    rest.find(|c: char| c.is_whitespace() || matches!(c, '&' | ',' | ';' | '"' | '\'' | '\\' | ')'))
                        .unwrap_or(rest.len()),
                ),
            };
            if value_len > 0 {
                out.push_str(&rest[..quote]);
                out.push_str(REDACTED);
                rest = &rest[quote + value_len..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Hides the credentials of `Bearer` and `Basic` authorization values. A word after "basic" counts
/// as credentials only when it looks like base64 (so "basic authentication" stays readable).
fn authorization_values_in(input: &str) -> String {
    let lower = input.to_ascii_lowercase();
    if !lower.contains("bearer ") && !lower.contains("basic ") {
        return input.to_owned();
    }
    let mut out = String::with_capacity(input.len());
    let mut at = 0;
    loop {
        let next = ["bearer ", "basic "]
            .iter()
            .filter_map(|scheme| lower[at..].find(scheme).map(|i| (at + i, scheme.len(), *scheme == "basic ")))
            .min();
        let Some((found, scheme_len, basic)) = next else { break };
        let token_start = found + scheme_len;
        let token_len = input[token_start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ',' | ';' | ')'))
            .unwrap_or(input.len() - token_start);
        let token = &input[token_start..token_start + token_len];
        out.push_str(&input[at..token_start]);
        // A placeholder ("Bearer <API key>") is documentation, not a credential.
        if !token.is_empty() && !token.starts_with('<') && (!basic || looks_like_base64(token)) {
            out.push_str(REDACTED);
        } else {
            out.push_str(token);
        }
        at = token_start + token_len;
    }
    out.push_str(&input[at..]);
    out
}

fn looks_like_base64(token: &str) -> bool {
    token.len() >= 8
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        && (token.bytes().any(|b| b.is_ascii_digit() || matches!(b, b'+' | b'/' | b'='))
            || (token.bytes().any(|b| b.is_ascii_uppercase()) && token.bytes().any(|b| b.is_ascii_lowercase())))
}

/// Hides the body of `prefix`-keys (a word starting with `prefix`, followed by at least 16
/// key characters), keeping `keep` characters so a key can still be told apart.
fn prefixed_keys_in(input: &str, prefix: &str, keep: usize) -> String {
    if !input.contains(prefix) {
        return input.to_owned();
    }
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(input.len());
    let mut at = 0;
    while let Some(found) = input[at..].find(prefix) {
        let start = at + found;
        let body_start = start + prefix.len();
        let body_len = input[body_start..].find(|c: char| !is_key_char(c)).unwrap_or(input.len() - body_start);
        let at_word_start = input[..start].chars().next_back().is_none_or(|c| !is_key_char(c));
        out.push_str(&input[at..body_start]);
        if at_word_start && body_len >= 16 {
            out.push_str(&input[body_start..body_start + keep]);
            out.push_str(REDACTED);
        } else {
            out.push_str(&input[body_start..body_start + body_len]);
        }
        at = body_start + body_len;
    }
    out.push_str(&input[at..]);
    out
}

fn registry() -> &'static RwLock<Vec<String>> {
    static SECRETS: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(RwLock::default)
}

fn registered_in(mut text: String) -> String {
    let secrets = registry().read().unwrap_or_else(std::sync::PoisonError::into_inner);
    for secret in secrets.iter() {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), REDACTED);
        }
    }
    text
}

/// Registers a secret value: from now on [`text`] replaces it, in every form it
/// may be printed in, wherever it appears. Values shorter than
/// [`MIN_REGISTERED_CHARS`] are ignored (see the module docs).
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.chars().count() < MIN_REGISTERED_CHARS {
        return;
    }
    let decoded = percent_decode(secret);
    let mut forms = Vec::new();
    for form in [secret.to_owned(), decoded.clone(), percent_encode(&decoded)] {
        forms.push(form.clone());
        // As JSON log fields and Debug output print it.
        forms.push(serde_json::to_string(&form).unwrap_or_default().trim_matches('"').to_owned());
        forms.push(format!("{form:?}").trim_matches('"').to_owned());
    }
    let mut secrets = registry().write().unwrap_or_else(std::sync::PoisonError::into_inner);
    for form in forms {
        if form.chars().count() >= MIN_REGISTERED_CHARS && !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Registers the secrets of a URL: its password (or lone user part), the `Basic` credentials an
/// HTTP client makes of its userinfo, and the values of its secret query parameters.
pub fn register_url(url: &str) {
    use base64::Engine as _;
    let Some(scheme_end) = url.find("://") else { return };
    let body = &url[scheme_end + 3..];
    if let Some(at) = body.rfind('@') {
        let userinfo = &body[..at];
        match userinfo.split_once(':') {
            Some((user, password)) => {
                register(password);
                let credentials = format!("{}:{}", percent_decode(user), percent_decode(password));
                register(&base64::engine::general_purpose::STANDARD.encode(credentials));
            }
            None => register(userinfo),
        }
    }
    if let Some((_, query)) = body.split_once('?') {
        for pair in query.split(['&', '#']) {
            if let Some((name, value)) = pair.split_once('=')
                && is_secret_parameter(name)
            {
                register(value);
            }
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but unreserved characters, as a URL's userinfo carries it.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_show_redacted_and_keep_their_value() {
        let key = Secret::new("sk-proj-0123456789abcdef");
        assert_eq!(format!("{key:?}"), "\"<redacted>\"");
        assert_eq!(key.expose(), "sk-proj-0123456789abcdef");
        let db = Secret::url("postgres://brain:hunter2@db/brain");
        assert_eq!(format!("{db:?}"), "\"postgres://brain:<redacted>@db/brain\"");
        assert_eq!(db.redacted(), "postgres://brain:<redacted>@db/brain");
        assert_eq!(db.expose(), "postgres://brain:hunter2@db/brain");
    }

    #[test]
    fn userinfo_is_hidden_and_the_rest_kept() {
        assert_eq!(url("postgres://brain:hunter2@db:5432/brain"), "postgres://brain:<redacted>@db:5432/brain");
        assert_eq!(url("postgresql://brain:p%40ss%2Fw0rd@db/brain"), "postgresql://brain:<redacted>@db/brain");
        // Unencoded '@', '/' and '?' in a password: still hidden whole.
        assert_eq!(url("postgres://brain:p@ss/w?rd@db/brain"), "postgres://brain:<redacted>@db/brain");
        // A lone user part is a key (a Sentry DSN).
        assert_eq!(url("https://0123456789abcdef@o1.ingest.sentry.io/42"), "https://<redacted>@o1.ingest.sentry.io/42");
        assert_eq!(url("https://:only-a-password@host/"), "https://<redacted>@host/");
        assert_eq!(url("sqlite://data/brain.db"), "sqlite://data/brain.db");
        assert_eq!(url("https://api.openai.com/v1"), "https://api.openai.com/v1");
        assert_eq!(url("not a url"), "not a url");
    }

    #[test]
    fn secret_query_parameters_are_hidden() {
        assert_eq!(
            url("postgres://db/brain?sslmode=require&sslpassword=s3cr3t&password=hunter2&application_name=brain"),
            "postgres://db/brain?sslmode=require&sslpassword=<redacted>&password=<redacted>&application_name=brain"
        );
        assert_eq!(
            url("https://h/v1?key=AIza123&api_key=k&x=1&access_token=t&sig=abc#frag"),
            "https://h/v1?key=<redacted>&api_key=<redacted>&x=1&access_token=<redacted>&sig=<redacted>#frag"
        );
        // Percent-encoded names are recognised ("password", "key").
        assert_eq!(url("https://h/?pass%77ord=x&%6Bey=y"), "https://h/?pass%77ord=<redacted>&%6Bey=<redacted>");
        assert_eq!(url("https://h/a.png?width=100&format=png"), "https://h/a.png?width=100&format=png");
    }

    #[test]
    fn urls_inside_text_are_redacted() {
        let line = r#"ERROR internal error detail="cannot reach postgres://brain:hunter2@db:5432/brain: timed out""#;
        assert_eq!(
            text(line),
            r#"ERROR internal error detail="cannot reach postgres://brain:<redacted>@db:5432/brain: timed out""#
        );
        // JSON-escaped quotes end the URL; two URLs in one line.
        let json = r#"{"detail":"a \"postgres://u:pw1@h/d\" and https://k3y@sentry.example/1 end"}"#;
        assert_eq!(
            text(json),
            r#"{"detail":"a \"postgres://u:<redacted>@h/d\" and https://<redacted>@sentry.example/1 end"}"#
        );
    }

    #[test]
    fn pairs_tokens_and_keys_in_text() {
        assert_eq!(
            text("host=db user=brain password=hunter2 sslmode=off"),
            "host=db user=brain password=<redacted> sslmode=off"
        );
        assert_eq!(text("PASSWORD='x y' next"), "PASSWORD='<redacted>' next");
        assert_eq!(text("token_budget=120000 key=style"), "token_budget=120000 key=style");
        assert_eq!(text("authorization: Bearer abc.def"), "authorization: Bearer <redacted>");
        assert_eq!(text("send 'authorization: Bearer <API key>'"), "send 'authorization: Bearer <API key>'");
        assert_eq!(text("got Basic cHJveHk6cHc=, refused"), "got Basic <redacted>, refused");
        assert_eq!(text("basic authentication failed"), "basic authentication failed");
        assert_eq!(
            text("Incorrect API key provided: sk-proj-0123456789abcdefXYZ. You can find"),
            "Incorrect API key provided: sk-<redacted>. You can find"
        );
        assert_eq!(text("task-0123456789abcdefghij stays"), "task-0123456789abcdefghij stays");
        let key = format!("brk_{}", "A".repeat(43));
        assert_eq!(text(&format!("key {key} refused")), "key brk_AAAAAAAA<redacted> refused");
        assert_eq!(text("prefix brk_AAAAAAAA listed"), "prefix brk_AAAAAAAA listed");
    }

    #[test]
    fn registered_secrets_are_hidden_in_every_form() {
        register("Zq9-reg\"ist/ered@pw");
        register("short"); // below MIN_REGISTERED_CHARS: only protected by shape
        for shown in [
            "Zq9-reg\"ist/ered@pw",
            "Zq9-reg\\\"ist/ered@pw",    // JSON and Debug escaping
            "Zq9-reg%22ist%2Fered%40pw", // percent-encoded, as in a URL
        ] {
            let out = text(&format!("connect failed for {shown} (retrying)"));
            assert_eq!(out, "connect failed for <redacted> (retrying)", "{shown}");
        }
        assert_eq!(text("a short story"), "a short story");

        register_url("postgres://brain:Url%2BPassw0rd@db/brain?sslpassword=Ssl-Passw0rd-1&sslmode=require");
        assert_eq!(text("auth failed: Url+Passw0rd"), "auth failed: <redacted>");
        assert_eq!(text("bad Ssl-Passw0rd-1"), "bad <redacted>");
        // The Basic credentials an HTTP client makes of a URL's userinfo ("proxy:Proxy-Passw0rd").
        register_url("http://proxy:Proxy-Passw0rd@llm.example/v1");
        assert_eq!(text("echo cHJveHk6UHJveHktUGFzc3cwcmQ="), "echo <redacted>");
        register_url("https://PublicKey0123456@o1.ingest.sentry.io/42");
        assert_eq!(text("dsn key PublicKey0123456"), "dsn key <redacted>");
    }
}
