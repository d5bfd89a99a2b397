//! HAProxy's runtime API over its admin UNIX socket, one command per
//! connection (non-interactive mode: write one line, read until HAProxy
//! closes).
//!
//! HAProxy answers most errors as plain text on a successful exchange, so
//! every answer goes through [`check_answer`]. Each command is sent after
//! `set severity-output number`, which makes HAProxy prefix its messages with
//! their syslog level (`[3]: No such server.`): anything at warning level or
//! worse is an error. The few messages HAProxy prints without a useful level
//! ("Unknown command", "Permission denied") are recognised by their text.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Answers larger than this are cut off: `show stat` of one backend is a few
/// KiB, and a runaway answer must not eat memory.
const MAX_ANSWER: u64 = 4 << 20;

/// What can go wrong talking to HAProxy. Every variant names the command, so
/// the message says what tuner was doing when it failed.
#[derive(Debug, thiserror::Error)]
pub enum HaproxyError {
    #[error(
        "cannot connect to HAProxy's admin socket {socket} for `{command}`: {source}; \
         is HAProxy running with `stats socket {socket} level admin` in its global section?"
    )]
    Connect {
        socket: PathBuf,
        command: String,
        source: std::io::Error,
    },
    #[error("HAProxy admin socket {socket}: `{command}`: {source}")]
    Io {
        socket: PathBuf,
        command: String,
        source: std::io::Error,
    },
    #[error(
        "HAProxy admin socket {socket}: `{command}` got no complete answer within {timeout:?}"
    )]
    NoAnswer {
        socket: PathBuf,
        command: String,
        timeout: Duration,
    },
    #[error("HAProxy rejected `{command}`: {message}")]
    Rejected { command: String, message: String },
    #[error("cannot read HAProxy's answer to `{command}`: {reason}")]
    Parse { command: String, reason: String },
    #[error("refusing to send `{command}`: {reason}")]
    Invalid { command: String, reason: String },
    #[error("{what} did not happen within {timeout:?}{last}")]
    Timeout {
        what: String,
        timeout: Duration,
        /// `; last seen: ...`, or empty.
        last: String,
    },
}

impl HaproxyError {
    /// The command being run, for `RouterError::Failed::action`.
    pub fn command(&self) -> Option<&str> {
        match self {
            HaproxyError::Connect { command, .. }
            | HaproxyError::Io { command, .. }
            | HaproxyError::NoAnswer { command, .. }
            | HaproxyError::Rejected { command, .. }
            | HaproxyError::Parse { command, .. }
            | HaproxyError::Invalid { command, .. } => Some(command),
            HaproxyError::Timeout { .. } => None,
        }
    }

    /// Why it failed, without the command (for `RouterError::Failed::reason`).
    pub fn reason(&self) -> String {
        match self {
            HaproxyError::Connect { socket, source, .. } => format!(
                "cannot connect to HAProxy's admin socket {}: {source}; is HAProxy running with \
                 `stats socket {} level admin` in its global section?",
                socket.display(),
                socket.display()
            ),
            HaproxyError::Io { socket, source, .. } => {
                format!("admin socket {}: {source}", socket.display())
            }
            HaproxyError::NoAnswer {
                socket, timeout, ..
            } => format!(
                "no complete answer on admin socket {} within {timeout:?}",
                socket.display()
            ),
            HaproxyError::Rejected { message, .. } => format!("HAProxy answered {message:?}"),
            HaproxyError::Parse { reason, .. } => format!("cannot read HAProxy's answer: {reason}"),
            HaproxyError::Invalid { reason, .. } => reason.clone(),
            HaproxyError::Timeout { .. } => self.to_string(),
        }
    }

    /// A failure of the exchange itself (socket refused, I/O, no answer in
    /// time) rather than an answer: worth one more try while polling.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HaproxyError::Connect { .. } | HaproxyError::Io { .. } | HaproxyError::NoAnswer { .. }
        )
    }

    /// HAProxy's own message when it rejected a command.
    pub fn rejection(&self) -> Option<&str> {
        match self {
            HaproxyError::Rejected { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// A client for one admin socket. Cheap to clone; holds no connection.
#[derive(Debug, Clone)]
pub struct RuntimeApi {
    socket: PathBuf,
    timeout: Duration,
}

impl RuntimeApi {
    /// `timeout` bounds each whole exchange (connect, write, read).
    pub fn new(socket: impl Into<PathBuf>, timeout: Duration) -> RuntimeApi {
        RuntimeApi {
            socket: socket.into(),
            timeout,
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Runs one command and returns HAProxy's answer with the severity
    /// prefixes removed, or the error HAProxy reported.
    pub async fn run(&self, command: &str) -> Result<String, HaproxyError> {
        if command.is_empty() || command.contains(['\n', '\r', ';']) {
            return Err(HaproxyError::Invalid {
                command: command.escape_debug().to_string(),
                reason: "a command is one line without `;`".to_string(),
            });
        }
        tracing::debug!(socket = %self.socket.display(), command, "haproxy runtime API");
        let raw = match tokio::time::timeout(self.timeout, self.exchange(command)).await {
            Ok(answer) => answer?,
            Err(_) => {
                return Err(HaproxyError::NoAnswer {
                    socket: self.socket.clone(),
                    command: command.to_string(),
                    timeout: self.timeout,
                })
            }
        };
        check_answer(command, &raw)
    }

    async fn exchange(&self, command: &str) -> Result<String, HaproxyError> {
        let mut stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| HaproxyError::Connect {
                    socket: self.socket.clone(),
                    command: command.to_string(),
                    source,
                })?;
        let io_err = |source| HaproxyError::Io {
            socket: self.socket.clone(),
            command: command.to_string(),
            source,
        };
        let line = format!("set severity-output number; {command}\n");
        stream.write_all(line.as_bytes()).await.map_err(io_err)?;
        let mut buf = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER)
            .read_to_end(&mut buf)
            .await
            .map_err(io_err)?;
        String::from_utf8(buf).map_err(|e| HaproxyError::Parse {
            command: command.to_string(),
            reason: format!("not UTF-8: {e}"),
        })
    }
}

/// Splits a `[N]: message` line into its syslog level and message.
fn severity(line: &str) -> Option<(u8, &str)> {
    let rest = line.strip_prefix('[')?;
    let close = rest.find("]:")?;
    let level = rest[..close].parse().ok()?;
    Some((level, rest[close + 2..].trim_start()))
}

/// Messages HAProxy 2.6 prints at info level or without a level although
/// the command did nothing.
const UNLEVELLED_ERRORS: &[&str] = &["Unknown command", "Permission denied"];

/// Turns a raw answer into the command's output, or the error it reports.
///
/// Syslog levels 0 (emerg) to 4 (warning) are errors; 5-7 are messages
/// (`[6]: New server registered.`) and are returned without their prefix.
/// The error message keeps every line HAProxy sent after the first error
/// line, so multi-line explanations are not lost.
pub fn check_answer(command: &str, raw: &str) -> Result<String, HaproxyError> {
    let mut out = Vec::new();
    let mut error: Option<Vec<&str>> = None;
    for line in raw.lines() {
        if let Some(err) = error.as_mut() {
            if !line.trim().is_empty() {
                err.push(line.trim());
            }
            continue;
        }
        match severity(line) {
            Some((level, msg)) if level <= 4 => error = Some(vec![msg.trim()]),
            Some((_, msg)) if UNLEVELLED_ERRORS.iter().any(|e| msg.starts_with(e)) => {
                error = Some(vec![msg.trim()])
            }
            Some((_, msg)) => out.push(msg),
            None if UNLEVELLED_ERRORS.iter().any(|e| line.starts_with(e)) => {
                error = Some(vec![line.trim()])
            }
            None => out.push(line),
        }
    }
    if let Some(lines) = error {
        // Keep it to one readable line: the first line and at most a few more.
        let mut message = lines.iter().take(4).copied().collect::<Vec<_>>().join(" ");
        if lines.len() > 4 {
            message.push_str(" ...");
        }
        return Err(HaproxyError::Rejected {
            command: command.to_string(),
            message,
        });
    }
    let text = out.join("\n");
    Ok(text.trim_matches('\n').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_messages_lose_their_level() {
        let raw = "\n[6]: New server registered.\n\n";
        assert_eq!(
            check_answer("add server app/g 127.0.0.1:1", raw).unwrap(),
            "New server registered."
        );
        // `del server` answers without the trailing blank line.
        assert_eq!(
            check_answer("del server app/g", "\n[6]: Server deleted.").unwrap(),
            "Server deleted."
        );
    }

    #[test]
    fn empty_answers_are_success() {
        assert_eq!(check_answer("set weight app/g 1", "\n\n\n").unwrap(), "");
        assert_eq!(check_answer("enable server app/g", "").unwrap(), "");
    }

    #[test]
    fn error_levels_become_rejections_naming_the_command() {
        let err = check_answer("set weight app/zz 1", "\n[3]: No such server.\n\n").unwrap_err();
        assert_eq!(err.rejection(), Some("No such server."));
        assert_eq!(
            err.to_string(),
            "HAProxy rejected `set weight app/zz 1`: No such server."
        );
        let err = check_answer("x", "\n[4]: something odd\n").unwrap_err();
        assert_eq!(err.rejection(), Some("something odd"));
    }

    #[test]
    fn multi_line_errors_are_kept() {
        let raw = "\n[3]: invalid character 'a' in port number 'abc' in '127.0.0.1:abc'\n\n";
        let err = check_answer("add server app/x 127.0.0.1:abc", raw).unwrap_err();
        assert_eq!(
            err.rejection(),
            Some("invalid character 'a' in port number 'abc' in '127.0.0.1:abc'")
        );
        let raw = "\n[3]: first\nsecond\n\nthird\n";
        let err = check_answer("c", raw).unwrap_err();
        assert_eq!(err.rejection(), Some("first second third"));
    }

    #[test]
    fn unknown_command_is_an_error_whatever_its_level() {
        let raw = "\n[6]: Unknown command, but maybe one of the following ones is a better match:\n  show fd [num]   : dump\n  quit   : disconnect\n\n";
        let err = check_answer("bogus", raw).unwrap_err();
        assert!(
            err.rejection().unwrap().starts_with("Unknown command"),
            "{err}"
        );
        let raw = "Unknown command. Please enter one of the following commands only :\n help\n";
        assert!(check_answer("bogus", raw).is_err());
        assert!(check_answer("add server a/b c", "\nPermission denied\n\n").is_err());
    }

    #[test]
    fn data_lines_pass_through() {
        let raw = "\n1\n# be_id be_name\n3 app 1 blue\n\n";
        assert_eq!(
            check_answer("show servers state app", raw).unwrap(),
            "1\n# be_id be_name\n3 app 1 blue"
        );
    }

    #[test]
    fn severity_prefix_parsing() {
        assert_eq!(
            severity("[3]: No such server."),
            Some((3, "No such server."))
        );
        assert_eq!(severity("[x]: no"), None);
        assert_eq!(severity("3 app 1 blue"), None);
        assert_eq!(severity("[6]:ok"), Some((6, "ok")));
    }

    #[tokio::test]
    async fn commands_with_separators_are_refused_before_sending() {
        let api = RuntimeApi::new("/nonexistent/haproxy.sock", Duration::from_secs(1));
        for bad in ["set weight app/g 1; shutdown frontend fe", "a\nb", ""] {
            let err = api.run(bad).await.unwrap_err();
            assert!(matches!(err, HaproxyError::Invalid { .. }), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn missing_socket_is_a_connect_error_with_the_fix() {
        let api = RuntimeApi::new("/nonexistent/haproxy.sock", Duration::from_secs(1));
        let err = api.run("show info").await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/haproxy.sock"), "{msg}");
        assert!(msg.contains("`show info`"), "{msg}");
        assert!(msg.contains("stats socket"), "{msg}");
    }
}
