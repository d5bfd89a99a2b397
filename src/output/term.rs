//! What the terminal can show, decided once from the environment:
//! colour (off with `NO_COLOR`, `TERM=dumb` or when stderr is not a
//! terminal), Unicode marks and borders (ASCII on `TERM=dumb` or a locale
//! that is set and is not UTF-8, such as `LANG=C`), and `--quiet` (no
//! progress, no notes; results still on stdout).

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

static QUIET: AtomicBool = AtomicBool::new(false);

/// Set once by the edge from `-q/--quiet`.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// ANSI colour on stderr.
    pub color: bool,
    /// ✓, ✗, → and box-drawing borders; otherwise ASCII.
    pub unicode: bool,
    /// Cursor movement for bars and spinners (not on `TERM=dumb`).
    pub animate: bool,
}

impl Caps {
    /// From the variables as given; `stderr_tty` whether stderr is a terminal.
    pub fn from_env(get: impl Fn(&str) -> Option<String>, stderr_tty: bool) -> Caps {
        let set = |k: &str| get(k).filter(|v| !v.is_empty());
        let dumb = set("TERM").is_some_and(|t| t == "dumb");
        // The first of these that is set names the character set, as libc
        // reads it; none set keeps Unicode, as most terminals today show it.
        let locale = ["LC_ALL", "LC_CTYPE", "LANG"].into_iter().find_map(set);
        let utf8 = locale.is_none_or(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("utf-8") || l.contains("utf8")
        });
        Caps {
            color: stderr_tty && !dumb && set("NO_COLOR").is_none(),
            unicode: !dumb && utf8,
            animate: !dumb,
        }
    }
}

/// This process's capabilities, read once.
pub fn caps() -> Caps {
    static CAPS: OnceLock<Caps> = OnceLock::new();
    *CAPS.get_or_init(|| Caps::from_env(|k| std::env::var(k).ok(), std::io::stderr().is_terminal()))
}

/// The pass/fail mark of a check line.
pub fn mark(ok: bool) -> &'static str {
    mark_for(caps().unicode, ok)
}

fn mark_for(unicode: bool, ok: bool) -> &'static str {
    match (unicode, ok) {
        (true, true) => "✓",
        (true, false) => "✗",
        (false, true) => "ok",
        (false, false) => "FAIL",
    }
}

/// "from → to".
pub fn arrow() -> &'static str {
    if caps().unicode {
        "→"
    } else {
        "->"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps_of(vars: &[(&str, &str)], tty: bool) -> Caps {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Caps::from_env(
            |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            tty,
        )
    }

    #[test]
    fn no_color_dumb_terminals_and_non_utf8_locales_are_honoured() {
        let plain = caps_of(&[("TERM", "xterm-256color")], true);
        assert!(plain.color && plain.unicode && plain.animate);
        assert!(!caps_of(&[("NO_COLOR", "1")], true).color);
        // An empty NO_COLOR does not count (no-color.org).
        assert!(caps_of(&[("NO_COLOR", "")], true).color);
        assert!(!caps_of(&[], false).color);
        let dumb = caps_of(&[("TERM", "dumb"), ("LANG", "en_US.UTF-8")], true);
        assert_eq!(
            dumb,
            Caps {
                color: false,
                unicode: false,
                animate: false
            }
        );
        assert!(!caps_of(&[("LANG", "C")], true).unicode);
        assert!(caps_of(&[("LC_ALL", "C.UTF-8"), ("LANG", "C")], true).unicode);
        assert!(!caps_of(&[("LC_ALL", "POSIX"), ("LANG", "en_US.utf8")], true).unicode);
    }

    #[test]
    fn marks_have_an_ascii_fallback() {
        assert_eq!(mark_for(true, true), "✓");
        assert_eq!(mark_for(true, false), "✗");
        assert_eq!(mark_for(false, true), "ok");
        assert_eq!(mark_for(false, false), "FAIL");
    }
}
