//! Exit codes, and errors that carry one.

use std::process::ExitCode;

/// What a run of the command ended with; documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Success.
    Ok = 0,
    /// Something failed (the message says what).
    Failure = 1,
    /// The command line was wrong.
    Usage = 2,
    /// An instance, component or database does not exist.
    NotFound = 3,
    /// A replay diverged from its history.
    Diverged = 4,
    /// `wait` timed out before the instance finished.
    Timeout = 5,
}

impl From<Code> for ExitCode {
    fn from(code: Code) -> Self {
        ExitCode::from(code as u8)
    }
}

/// An error that ends the command with a specific code.
#[derive(Debug)]
pub struct Exit {
    /// The code.
    pub code: Code,
    /// The one-line message, saying what to do next.
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// An error ending the command with `code`.
pub fn fail(code: Code, message: impl Into<String>) -> anyhow::Error {
    Exit {
        code,
        message: message.into(),
    }
    .into()
}

/// The exit code for `error`: its own if it carries one, else by what the
/// library reported.
pub fn code_of(error: &anyhow::Error) -> Code {
    if let Some(exit) = error.downcast_ref::<Exit>() {
        return exit.code;
    }
    match error.downcast_ref::<duroxide::ClientError>() {
        Some(
            duroxide::ClientError::InstanceNotFound(_)
            | duroxide::ClientError::ComponentNotFound(_),
        ) => Code::NotFound,
        Some(duroxide::ClientError::Timeout(_)) => Code::Timeout,
        _ => Code::Failure,
    }
}

/// `error` on one line: the message and its causes, separated by colons.
pub fn one_line(error: &anyhow::Error) -> String {
    format!("{error:#}").replace('\n', " ")
}
