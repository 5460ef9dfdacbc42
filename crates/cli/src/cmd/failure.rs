//! Failures of client commands: what the user is told, and the exit code scripts branch on.

use std::fmt;

use pravaha_client::controller::ControllerError;
use pravaha_client::event::EventWriterError;
use pravaha_client::group::GroupError;
use pravaha_client::segment::ReaderError;
use pravaha_client::table::TableError;
use pravaha_client::ConfigError;

/// The exit codes of client commands (docs/cli.md lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// The request failed for another reason (a server error, a corrupt segment, ...).
    Failed = 1,
    /// The command line or its input is invalid (clap's own usage errors use 2 as well).
    Invalid = 2,
    /// The scope, stream, reader group, table or key does not exist.
    NotFound = 3,
    /// The controller or a segment store cannot be reached.
    Unreachable = 4,
    /// The request conflicts with the current state: a failed condition, a sealed stream, a
    /// scope that is not empty.
    Conflict = 5,
}

/// A failure the command itself diagnosed, with the message to print.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Exit::Invalid, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Exit::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Exit::Conflict, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit code and message for `error`: the first error in its chain that this table knows
/// decides; anything else is [`Exit::Failed`] with the whole chain.
pub fn report(error: &anyhow::Error, controller_uri: &str) -> (Exit, String) {
    for cause in error.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return (failure.exit, failure.message.clone());
        }
        if let Some(error) = cause.downcast_ref::<ControllerError>() {
            return controller(error, controller_uri);
        }
        if let Some(error) = cause.downcast_ref::<TableError>() {
            if let Some(known) = table(error, controller_uri) {
                return known;
            }
        }
        if let Some(error) = cause.downcast_ref::<GroupError>() {
            if let GroupError::Controller(inner) = error {
                return controller(inner, controller_uri);
            }
            if let GroupError::Read(inner) = error {
                return segment(inner, &format!("{error:#}"));
            }
        }
        if let Some(EventWriterError::Controller(inner)) = cause.downcast_ref::<EventWriterError>()
        {
            return controller(inner, controller_uri);
        }
        if let Some(EventWriterError::StreamSealed(stream)) =
            cause.downcast_ref::<EventWriterError>()
        {
            return (
                Exit::Conflict,
                format!("stream {stream} is sealed: it takes no more events"),
            );
        }
        if let Some(inner) = cause.downcast_ref::<ReaderError>() {
            return segment(inner, &format!("{error:#}"));
        }
        if cause.is::<ConfigError>() {
            // Its message already names its own cause: not repeated.
            let outermost = error.to_string();
            let message = cause.to_string();
            if outermost == message {
                return (Exit::Invalid, message);
            }
            return (Exit::Invalid, format!("{outermost}: {message}"));
        }
    }
    (Exit::Failed, format!("{error:#}"))
}

fn controller(error: &ControllerError, uri: &str) -> (Exit, String) {
    match error {
        ControllerError::ScopeNotFound { scope } => (
            Exit::NotFound,
            format!("scope {scope} does not exist: create it with `pravaha scope create {scope}`"),
        ),
        ControllerError::StreamNotFound { scope, stream } => (
            Exit::NotFound,
            format!(
                "stream {scope}/{stream} does not exist: create it with `pravaha stream create \
                 {scope}/{stream}`"
            ),
        ),
        ControllerError::NotFound { message } => (Exit::NotFound, format!("{message} not found")),
        ControllerError::StreamSealed { scope, stream } => (
            Exit::Conflict,
            format!(
                "stream {scope}/{stream} is sealed: it takes no more events, updates or scaling"
            ),
        ),
        ControllerError::StreamNotSealed { .. } => (Exit::Conflict, error.to_string()),
        ControllerError::ScopeNotEmpty { scope } => (
            Exit::Conflict,
            format!(
                "scope {scope} is not empty: delete its streams, reader groups and tables first \
                 (`pravaha stream list {scope} --all`, `pravaha kvt list {scope}`)"
            ),
        ),
        ControllerError::AlreadyExists { .. } | ControllerError::PreconditionFailed { .. } => {
            (Exit::Conflict, error.to_string())
        }
        ControllerError::InvalidArgument { .. } | ControllerError::Config(_) => {
            (Exit::Invalid, error.to_string())
        }
        ControllerError::Unavailable { message, .. } => (
            Exit::Unreachable,
            format!(
                "cannot reach the controller at {uri}: is `pravaha standalone` running? \
                 (--controller / PRAVAHA_CONTROLLER_URI) [{message}]"
            ),
        ),
        ControllerError::Unauthenticated { .. } | ControllerError::PermissionDenied { .. } => (
            Exit::Failed,
            format!("{error}: check the credentials of the client configuration (--client-config)"),
        ),
        _ => (Exit::Failed, error.to_string()),
    }
}

fn table(error: &TableError, uri: &str) -> Option<(Exit, String)> {
    Some(match error {
        TableError::BadKeyVersion { table } => (
            Exit::Conflict,
            format!(
                "the condition failed: the key's version in {table} is not the one given (or it \
                 exists, with --if-absent); read it again with `pravaha kvt get`"
            ),
        ),
        TableError::NoSuchKey { table } => (
            Exit::NotFound,
            format!("the key does not exist in key-value table {table}"),
        ),
        TableError::TableDoesNotExist { table } => (
            Exit::NotFound,
            format!(
                "key-value table {table} does not exist: create it with `pravaha kvt create {table} \
                 --key-length N`"
            ),
        ),
        TableError::InvalidKey { .. } | TableError::InvalidArgument { .. } => {
            (Exit::Invalid, error.to_string())
        }
        TableError::Controller(inner) => controller(inner, uri),
        TableError::Segment { source, .. } => segment(source, &error.to_string()),
        _ => return None,
    })
}

fn segment(error: &ReaderError, whole: &str) -> (Exit, String) {
    match error {
        ReaderError::Connection(_) | ReaderError::RetriesExhausted { .. } => (
            Exit::Unreachable,
            format!("cannot reach the segment store: {whole}"),
        ),
        ReaderError::Truncated { .. } => (
            Exit::NotFound,
            format!("{whole}: the stream was truncated; read from `--from head`"),
        ),
        ReaderError::NoSuchSegment(_) => (Exit::NotFound, whole.to_owned()),
        _ => (Exit::Failed, whole.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_exit_codes_and_advice() {
        let uri = "tcp://127.0.0.1:1";
        let missing = anyhow::Error::new(ControllerError::StreamNotFound {
            scope: "s".into(),
            stream: "x".into(),
        })
        .context("reading s/x");
        let (exit, message) = report(&missing, uri);
        assert_eq!(exit, Exit::NotFound);
        assert!(message.contains("`pravaha stream create s/x`"), "{message}");

        let down = anyhow::Error::new(ControllerError::Unavailable {
            attempts: 3,
            message: "connection refused".into(),
        });
        let (exit, message) = report(&down, uri);
        assert_eq!(exit, Exit::Unreachable);
        assert!(message.starts_with("cannot reach the controller at tcp://127.0.0.1:1"));

        let conflict = anyhow::Error::new(TableError::BadKeyVersion {
            table: "s/t".into(),
        });
        assert_eq!(report(&conflict, uri).0, Exit::Conflict);

        let own = anyhow::Error::new(Failure::invalid("bad")).context("parsing");
        assert_eq!(report(&own, uri), (Exit::Invalid, "bad".to_owned()));

        let other = anyhow::anyhow!("something else");
        assert_eq!(report(&other, uri).0, Exit::Failed);
    }
}
