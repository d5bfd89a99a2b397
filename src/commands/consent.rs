//! Asking before anything drastic. Only the edge talks to the person at the
//! terminal; the core is handed the answer as data (`tune::Options::
//! allow_restart`, or a rollback that runs or does not).

use std::io::{BufRead as _, IsTerminal as _, Write as _};

/// Someone can answer: both stdin (to read the answer) and stderr (where
/// the question goes) are terminals. A pipe, a cron job or CI is not.
pub fn attended() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks `question` on stderr and reads a line from stdin. Only `y` or `yes`
/// is a yes; anything else, end of input or an error is a no.
pub fn ask(question: &str) -> bool {
    let mut err = std::io::stderr().lock();
    if write!(err, "{question} [y/N] ")
        .and_then(|()| err.flush())
        .is_err()
    {
        return false;
    }
    drop(err);
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => false,
        Ok(_) => is_yes(&line),
    }
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_explicit_yes_is_a_yes() {
        assert!(is_yes("y\n") && is_yes(" YES ") && is_yes("Yes"));
        assert!(!is_yes("") && !is_yes("\n") && !is_yes("n") && !is_yes("yep"));
    }
}
