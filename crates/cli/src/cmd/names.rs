//! Names on the command line: `SCOPE` and `SCOPE/NAME`, checked against Pravega's rules before
//! anything is sent, so that a bad name is explained rather than refused by the controller.

use pravaha_client::controller::types::ScopedStream;

use super::Failure;

/// A scope name, validated.
pub fn scope(text: &str) -> Result<String, Failure> {
    pravaha_types::validate_scope_name(text, false)
        .map_err(|error| Failure::invalid(format!("invalid name: {error}")))?;
    Ok(text.to_owned())
}

/// `SCOPE/NAME` of a stream, reader group or table (`what` names it in messages). Internal
/// names (a leading `_`) are accepted only where `allow_internal`.
pub fn scoped(text: &str, what: &str, allow_internal: bool) -> Result<(String, String), Failure> {
    let Some((scope_part, name)) = text.split_once('/') else {
        return Err(Failure::invalid(format!(
            "{text:?} is not SCOPE/{}: name the scope too, e.g. examples/{text}",
            what.to_uppercase()
        )));
    };
    pravaha_types::validate_scope_name(scope_part, false)
        .map_err(|error| Failure::invalid(format!("invalid name: {error}")))?;
    pravaha_types::validate_stream_name(name, allow_internal).map_err(|error| {
        // The rules are the stream's; say what the name is for.
        let message = error.to_string().replacen("stream", what, 1);
        Failure::invalid(format!("invalid name: {message}"))
    })?;
    Ok((scope_part.to_owned(), name.to_owned()))
}

/// `SCOPE/STREAM`, validated (internal streams, such as `_RGgroup`, may be named).
pub fn stream(text: &str) -> Result<ScopedStream, Failure> {
    let (scope, name) = scoped(text, "stream", true)?;
    Ok(ScopedStream::new(scope, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_with_explanations() {
        assert_eq!(stream("s/x").unwrap(), ScopedStream::new("s", "x"));
        let no_scope = stream("orders").unwrap_err().message;
        assert!(no_scope.contains("examples/orders"), "{no_scope}");
        let bad = stream("s/a b").unwrap_err().message;
        assert!(bad.contains("only letters, digits"), "{bad}");
        let group = scoped("s/g!", "reader group", false).unwrap_err().message;
        assert!(
            group.starts_with("invalid name: reader group name"),
            "{group}"
        );
        assert!(scope("_system").is_err());
        assert!(scope("").is_err());
        assert_eq!(scope("s.1-a").unwrap(), "s.1-a");
    }
}
