//! Input checks shared by every RPC: ids, names, free text.
//!
//! Each check names the offending field, so the caller's INVALID_ARGUMENT says
//! exactly what to fix.

use crate::error::{Error, Reason, Result};

/// Longest id accepted (project, scene, image, request ids).
pub const MAX_ID_LEN: usize = 128;
/// Longest display name.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest description, summary or memory value.
pub const MAX_TEXT_CHARS: usize = 4_000;
/// Longest project description.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;

/// A required id: 1 to 128 characters of `[A-Za-z0-9._-]`.
pub fn id(field: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Err(Error::missing(field));
    }
    check_id_chars(field, value)?;
    Ok(value.to_owned())
}

/// An optional id: empty means none.
pub fn optional_id(field: &str, value: &str) -> Result<Option<String>> {
    if value.is_empty() {
        return Ok(None);
    }
    check_id_chars(field, value)?;
    Ok(Some(value.to_owned()))
}

fn check_id_chars(field: &str, value: &str) -> Result<()> {
    let ok = value.len() <= MAX_ID_LEN
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            Reason::InvalidId,
            format!("{field} must be 1 to {MAX_ID_LEN} characters of A-Z, a-z, 0-9, '.', '_' or '-'"),
        )
        .with_field(field))
    }
}

/// A required name: trimmed, 1 to `max_chars` characters, no control characters.
pub fn name(field: &str, value: &str, max_chars: usize) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::missing(field));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::invalid(field, format!("{field} must not contain control characters")));
    }
    bounded(field, trimmed, max_chars)
}

/// Free text: at most `max_chars` characters (newlines allowed; other control characters refused).
pub fn text(field: &str, value: &str, max_chars: usize) -> Result<String> {
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        return Err(Error::invalid(field, format!("{field} must not contain control characters")));
    }
    bounded(field, value, max_chars)
}

fn bounded(field: &str, value: &str, max_chars: usize) -> Result<String> {
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(Error::new(
            Reason::ValueTooLarge,
            format!("{field} has {chars} characters; the limit is {max_chars}"),
        )
        .with_field(field)
        .with_limit(max_chars));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(id("project_id", "s1").as_deref(), Ok("s1"));
        assert_eq!(id("project_id", "").map_err(|e| e.reason()), Err(Reason::MissingField));
        assert_eq!(id("project_id", "a b").map_err(|e| e.reason()), Err(Reason::InvalidId));
        assert_eq!(id("project_id", "x/../y").map_err(|e| e.reason()), Err(Reason::InvalidId));
        assert_eq!(id("project_id", &"a".repeat(129)).map_err(|e| e.reason()), Err(Reason::InvalidId));
        assert_eq!(optional_id("scene_id", ""), Ok(None));
    }

    #[test]
    fn names_and_text() {
        assert_eq!(name("name", "  Intro ", 200).as_deref(), Ok("Intro"));
        assert_eq!(name("name", "   ", 200).map_err(|e| e.reason()), Err(Reason::MissingField));
        assert_eq!(name("name", "a\u{0}b", 200).map_err(|e| e.reason()), Err(Reason::InvalidField));
        assert_eq!(text("summary", "two\nlines", 10).as_deref(), Ok("two\nlines"));
        let err = text("summary", &"é".repeat(11), 10).expect_err("too long");
        assert_eq!((err.reason(), err.limit()), (Reason::ValueTooLarge, Some("10")));
    }
}
