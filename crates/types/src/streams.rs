//! Scope and stream names, segment ids and qualified segment names, as Pravega defines them.

/// The longest scope name accepted.
pub const MAX_SCOPE_NAME_LENGTH: usize = 255;
/// The longest user stream name accepted (internal names get a short prefix on top).
pub const MAX_STREAM_NAME_LENGTH: usize = 250;
/// Names starting with this are reserved for the system (reader-group and mark streams, the
/// `_system` scope).
pub const INTERNAL_NAME_PREFIX: char = '_';

/// Why a scope or stream name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamNameError {
    #[error("{kind} name is empty")]
    Empty { kind: &'static str },
    #[error("{kind} name {name:?} is {length} characters long; the limit is {limit}")]
    TooLong {
        kind: &'static str,
        name: String,
        length: usize,
        limit: usize,
    },
    #[error("{kind} name {name:?} may contain only letters, digits, '.' and '-'")]
    InvalidCharacter { kind: &'static str, name: String },
    #[error("{kind} name {name:?} starts with '_', which is reserved for internal names")]
    Reserved { kind: &'static str, name: String },
}

fn validate(
    kind: &'static str,
    name: &str,
    limit: usize,
    allow_internal: bool,
) -> Result<(), StreamNameError> {
    if name.is_empty() {
        return Err(StreamNameError::Empty { kind });
    }
    let body = match name.strip_prefix(INTERNAL_NAME_PREFIX) {
        Some(rest) if allow_internal => rest,
        Some(_) => {
            return Err(StreamNameError::Reserved {
                kind,
                name: name.to_owned(),
            })
        }
        None => name,
    };
    if body.is_empty()
        || !body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(StreamNameError::InvalidCharacter {
            kind,
            name: name.to_owned(),
        });
    }
    let length = name.chars().count();
    if length > limit {
        return Err(StreamNameError::TooLong {
            kind,
            name: name.to_owned(),
            length,
            limit,
        });
    }
    Ok(())
}

/// A scope name: `[A-Za-z0-9.-]+`, at most 255 characters; with `allow_internal`, one leading
/// `_` is accepted too (system scopes).
pub fn validate_scope_name(name: &str, allow_internal: bool) -> Result<(), StreamNameError> {
    validate("scope", name, MAX_SCOPE_NAME_LENGTH, allow_internal)
}

/// A stream name: `[A-Za-z0-9.-]+`, at most 250 characters for user streams; internal streams
/// (leading `_`, with `allow_internal`) may be a little longer, as Pravega's prefixed names are.
pub fn validate_stream_name(name: &str, allow_internal: bool) -> Result<(), StreamNameError> {
    let limit = if allow_internal && name.starts_with(INTERNAL_NAME_PREFIX) {
        MAX_STREAM_NAME_LENGTH + 5
    } else {
        MAX_STREAM_NAME_LENGTH
    };
    validate("stream", name, limit, allow_internal)
}

/// A segment id: the epoch that created the segment in the high 32 bits, its number in the low.
pub fn segment_id(epoch: u32, number: u32) -> i64 {
    (i64::from(epoch) << 32) | i64::from(number)
}

/// The number of a segment id (low 32 bits).
pub fn segment_number(id: i64) -> u32 {
    (id & 0xFFFF_FFFF) as u32
}

/// The creation epoch of a segment id (high 32 bits).
pub fn segment_epoch(id: i64) -> u32 {
    ((id >> 32) & 0xFFFF_FFFF) as u32
}

/// `<scope>/<stream>/<number>.#epoch.<epoch>`, the name a stream segment has on the segment store.
pub fn qualified_segment_name(scope: &str, stream: &str, id: i64) -> String {
    format!(
        "{scope}/{stream}/{}.#epoch.{}",
        segment_number(id),
        segment_epoch(id)
    )
}

/// `<qualified segment>#transaction.<32 hex digits>`: a transaction's segment beside its parent.
pub fn transaction_segment_name(scope: &str, stream: &str, id: i64, txn: u128) -> String {
    format!(
        "{}#transaction.{txn:032x}",
        qualified_segment_name(scope, stream, id)
    )
}

/// Parses a qualified segment name into scope, stream and segment id. A bare number (epoch 0)
/// is accepted, as the Rust client does.
pub fn parse_qualified_segment_name(name: &str) -> Option<(&str, &str, i64)> {
    let name = crate::primary_segment_name(name);
    let mut parts = name.splitn(3, '/');
    let (scope, stream, last) = (parts.next()?, parts.next()?, parts.next()?);
    let (number, epoch) = match last.split_once(".#epoch.") {
        Some((number, epoch)) => (number.parse().ok()?, epoch.parse().ok()?),
        None => (last.parse().ok()?, 0),
    };
    Some((scope, stream, segment_id(epoch, number)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_pack_epoch_and_number() {
        let id = segment_id(1, 1);
        assert_eq!(id, 0x0000_0001_0000_0001);
        assert_eq!((segment_epoch(id), segment_number(id)), (1, 1));
        assert_eq!(qualified_segment_name("sc", "st", id), "sc/st/1.#epoch.1");
        assert_eq!(
            parse_qualified_segment_name("sc/st/1.#epoch.1"),
            Some(("sc", "st", id))
        );
        assert_eq!(
            parse_qualified_segment_name("sc/st/7"),
            Some(("sc", "st", 7))
        );
        let txn = transaction_segment_name("sc", "st", 5, 0xAB);
        assert_eq!(
            txn,
            "sc/st/5.#epoch.0#transaction.000000000000000000000000000000ab"
        );
        assert_eq!(parse_qualified_segment_name(&txn), Some(("sc", "st", 5)));
        assert_eq!(parse_qualified_segment_name("sc/st"), None);
        assert_eq!(parse_qualified_segment_name("sc/st/x.#epoch.1"), None);
    }

    #[test]
    fn names_follow_pravegas_rules() {
        assert_eq!(validate_scope_name("my-scope.1", false), Ok(()));
        assert_eq!(validate_stream_name("Stream-2", false), Ok(()));
        assert!(matches!(
            validate_stream_name("", false),
            Err(StreamNameError::Empty { .. })
        ));
        assert!(matches!(
            validate_stream_name("a/b", false),
            Err(StreamNameError::InvalidCharacter { .. })
        ));
        assert!(matches!(
            validate_stream_name("with space", false),
            Err(StreamNameError::InvalidCharacter { .. })
        ));
        assert!(matches!(
            validate_stream_name("_internal", false),
            Err(StreamNameError::Reserved { .. })
        ));
        assert_eq!(validate_stream_name("_RGgroup", true), Ok(()));
        assert!(validate_stream_name("__twice", true).is_err());
        assert!(validate_stream_name("_", true).is_err());
        assert_eq!(validate_scope_name(&"s".repeat(255), false), Ok(()));
        assert!(matches!(
            validate_scope_name(&"s".repeat(256), false),
            Err(StreamNameError::TooLong { .. })
        ));
        assert!(validate_stream_name(&"s".repeat(251), false).is_err());
        assert!(validate_stream_name("ünïcode", false).is_err());
    }
}
