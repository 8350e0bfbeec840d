//! Keyset pagination: `page_size` rules and opaque page tokens.
//!
//! A token encodes the key of the last item returned and a digest of the list
//! it belongs to (for example "scenes of project P"), so a token replayed
//! against another list is refused instead of silently returning wrong rows.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use crate::error::{Error, Reason, Result};

/// Page size when the request says 0.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page; bigger requests are clamped.
pub const MAX_PAGE_SIZE: u32 = 500;

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Items to return.
    pub size: u32,
    /// Key of the last item of the previous page.
    pub after: Option<String>,
    scope: String,
}

impl PageRequest {
    /// Validates `page_size` and `page_token` for the list named by `scope`.
    pub fn parse(page_size: i32, page_token: &str, scope: &str) -> Result<Self> {
        let size = match page_size {
            n if n < 0 => {
                return Err(Error::new(Reason::InvalidPageSize, format!("page_size must not be negative (got {n})"))
                    .with_field("page_size"));
            }
            0 => DEFAULT_PAGE_SIZE,
            n => (n as u32).min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() { None } else { Some(decode(page_token, scope)?) };
        Ok(Self { size, after, scope: scope.to_owned() })
    }

    /// The first page of `scope` with the given size (for internal callers).
    pub fn first(size: u32, scope: &str) -> Self {
        Self { size: size.clamp(1, MAX_PAGE_SIZE), after: None, scope: scope.to_owned() }
    }

    /// Items to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch_limit(&self) -> u64 {
        u64::from(self.size) + 1
    }

    /// Trims a fetched batch to the page and makes the next token from the last kept item's key.
    pub fn finish<T>(&self, mut items: Vec<T>, key: impl Fn(&T) -> String) -> crate::model::Page<T> {
        let more = items.len() > self.size as usize;
        items.truncate(self.size as usize);
        let next_page_token = match (more, items.last()) {
            (true, Some(last)) => Some(encode(&self.scope, &key(last))),
            _ => None,
        };
        crate::model::Page { items, next_page_token }
    }
}

fn scope_digest(scope: &str) -> String {
    hex::encode(&Sha256::digest(scope.as_bytes())[..6])
}

fn encode(scope: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1|{}|{key}", scope_digest(scope)))
}

fn decode(token: &str, scope: &str) -> Result<String> {
    let invalid = || {
        Error::new(Reason::InvalidPageToken, "page_token was not issued by this list; start again with an empty token")
            .with_field("page_token")
    };
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '|');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some(digest), Some(key)) if digest == scope_digest(scope) && !key.is_empty() => Ok(key.to_owned()),
        _ => Err(invalid()),
    }
}

/// Splits a composite key written as `a|b` (for ordered keys with a tie-breaker).
pub fn split_key(key: &str) -> Result<(&str, &str)> {
    key.split_once('|')
        .ok_or_else(|| Error::new(Reason::InvalidPageToken, "page_token is malformed").with_field("page_token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(PageRequest::parse(0, "", "s").map(|p| p.size), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(PageRequest::parse(10_000, "", "s").map(|p| p.size), Ok(MAX_PAGE_SIZE));
        assert_eq!(PageRequest::parse(-1, "", "s").map_err(|e| e.reason()), Err(Reason::InvalidPageSize));
    }

    #[test]
    fn tokens_round_trip_and_are_scoped() {
        let page = PageRequest::parse(2, "", "scenes:p1").expect("parse");
        let result = page.finish(vec!["a", "b", "c"], |s| s.to_string());
        assert_eq!(result.items, vec!["a", "b"]);
        let token = result.next_page_token.expect("more pages");
        assert_eq!(PageRequest::parse(2, &token, "scenes:p1").map(|p| p.after), Ok(Some("b".into())));
        assert_eq!(PageRequest::parse(2, &token, "scenes:p2").map_err(|e| e.reason()), Err(Reason::InvalidPageToken));
        assert_eq!(
            PageRequest::parse(2, "not-a-token!", "scenes:p1").map_err(|e| e.reason()),
            Err(Reason::InvalidPageToken)
        );
        let last = page.finish(vec!["a"], |s| s.to_string());
        assert_eq!(last.next_page_token, None);
    }
}
