//! Conversions between `brain.v1` messages and domain types, one file per
//! service: `From` for domain → wire, `TryFrom` (or a function where a field
//! name is needed) for wire → domain. Only the grpc layer sees proto types.

mod admin;
mod image_facts;
mod orchestrator;
mod performance;
mod project;
mod transfer;

pub use performance::{interval_of, window_of};
pub use project::{memory_type, required_memory_type, scene_status};
use prost_types::Timestamp;
pub use transfer::project_record;

use crate::{
    error::{Error, Reason, Result},
    model,
};

/// A time in ms since the epoch as a protobuf Timestamp.
pub fn timestamp(ms: model::Millis) -> Timestamp {
    Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

/// Largest `nanos` of a non-negative protobuf Duration.
const MAX_NANOS: i32 = 999_999_999;

/// A Duration as ms; None when unset. A negative duration is INVALID_FIELD on `field`; `nanos`
/// outside 0..=999,999,999 (which protobuf does not allow for a non-negative duration) is
/// INVALID_FIELD on `{field}.nanos`. Longer durations than an i64 of ms holds saturate, so the
/// caller's own limit decides, and its message names the real maximum.
pub fn duration_ms(field: &str, d: Option<&prost_types::Duration>) -> Result<Option<i64>> {
    let Some(d) = d else { return Ok(None) };
    if d.seconds < 0 || (d.seconds == 0 && (-MAX_NANOS..0).contains(&d.nanos)) {
        return Err(Error::invalid(field, format!("{field} must not be negative")));
    }
    if !(0..=MAX_NANOS).contains(&d.nanos) {
        let nanos_field = format!("{field}.nanos");
        return Err(Error::invalid(
            &nanos_field,
            format!("{nanos_field} must be from 0 to 999,999,999; got {}", d.nanos),
        )
        .with_limit("0..999999999"));
    }
    Ok(Some(d.seconds.saturating_mul(1000).saturating_add(i64::from(d.nanos) / 1_000_000)))
}

/// A Duration as a std Duration, checked as [`duration_ms`] checks it (to the ms).
fn duration(field: &str, d: Option<&prost_types::Duration>) -> Result<Option<std::time::Duration>> {
    Ok(duration_ms(field, d)?.map(|ms| std::time::Duration::from_millis(ms.max(0) as u64)))
}

/// The wire enum `E` numbered `value`; UNKNOWN_ENUM_VALUE on `field` for a number the proto does not define.
fn wire_enum<E: TryFrom<i32>>(field: &str, value: i32) -> Result<E> {
    E::try_from(value).map_err(|_| {
        Error::new(Reason::UnknownEnumValue, format!("{field} has unknown value {value}")).with_field(field)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SceneStatus;

    #[test]
    fn timestamps_handle_pre_epoch_millis() {
        assert_eq!(timestamp(1_500), Timestamp { seconds: 1, nanos: 500_000_000 });
        assert_eq!(timestamp(-1), Timestamp { seconds: -1, nanos: 999_000_000 });
    }

    #[test]
    fn durations_are_checked_and_saturate() {
        let ms = |seconds, nanos| duration_ms("ttl", Some(&prost_types::Duration { seconds, nanos }));
        assert_eq!(duration_ms("ttl", None), Ok(None));
        assert_eq!(ms(1, 500_000_000), Ok(Some(1_500)));
        assert_eq!(ms(0, MAX_NANOS), Ok(Some(999)));
        assert_eq!(ms(i64::MAX, MAX_NANOS), Ok(Some(i64::MAX)), "too long saturates; the caller's limit decides");
        for (seconds, nanos) in [(-1, 0), (0, -5), (-1, -999_999_999), (i64::MIN, 0)] {
            let err = ms(seconds, nanos).expect_err("negative");
            assert_eq!((err.reason(), err.field()), (Reason::InvalidField, Some("ttl")), "{seconds}s {nanos}ns");
            assert!(err.message().contains("must not be negative"), "{}", err.message());
        }
        for (seconds, nanos) in [(0, 1_000_000_000), (0, i32::MAX), (1, -1), (5, i32::MIN), (0, i32::MIN)] {
            let err = ms(seconds, nanos).expect_err("nanos out of range");
            assert_eq!((err.reason(), err.field()), (Reason::InvalidField, Some("ttl.nanos")), "{seconds}s {nanos}ns");
            assert!(err.message().contains("0 to 999,999,999"), "{}", err.message());
        }
    }

    #[test]
    fn unknown_enums_are_invalid_arguments() {
        assert_eq!(memory_type("type", 99).map_err(|e| e.reason()), Err(Reason::UnknownEnumValue));
        assert_eq!(memory_type("type", 0), Ok(None));
        assert_eq!(required_memory_type("type", 0).map_err(|e| e.reason()), Err(Reason::MissingField));
        assert_eq!(scene_status("status", 2), Ok(SceneStatus::Broken));
    }
}
