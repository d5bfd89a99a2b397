//! Compose env files (`.env`): the one reader, for `${VAR}` in tuner.yaml
//! and for `env` levers, and the one editor, which changes a single
//! assignment and leaves every other byte of the file as it was.
//!
//! The file is read the way docker-compose reads it, so tuner and the
//! services it recreates see the same values:
//! - `KEY=value` and `export KEY=value`; blanks around `=` are allowed;
//! - blank lines and lines starting with `#` are skipped;
//! - an unquoted value ends at ` #` (an inline comment) and loses trailing
//!   blanks, so CRLF line endings read like LF ones;
//! - `'single'` quotes keep everything literally (only `\'` is an escape);
//!   `"double"` quotes take `\n`, `\r`, `\t`, `\"`, `\\` and `\$`; both may
//!   span lines;
//! - a key assigned twice takes its last value.
//!
//! Unlike compose, `${VAR}` inside a value is not expanded: the values
//! tuner reads (ports, passwords, batch sizes) are plain.

use std::collections::HashMap;
use std::ops::Range;

/// Why an env file cannot be read or edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvFileError {
    /// The text is not an env file docker-compose would accept. The line
    /// text is not quoted: it may hold a password.
    #[error("line {line}: {problem}")]
    Syntax { line: usize, problem: String },
    /// The edit itself is impossible.
    #[error("{key}: {problem}")]
    Edit { key: String, problem: String },
}

/// One `KEY=value` statement of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub key: String,
    /// The value as compose reads it: unquoted, escapes resolved.
    pub value: String,
    /// The 1-based line the statement starts on.
    pub line: usize,
    /// The value as written, quotes included: what an edit replaces.
    raw: Range<usize>,
    /// The whole statement with its line terminators: what a removal deletes.
    lines: Range<usize>,
    /// Whether the rest of the last line after the value is blank, so an
    /// empty unquoted value cannot swallow a trailing comment.
    nothing_after: bool,
    quote: Option<u8>,
}

/// Every assignment, in file order (duplicates included).
pub fn parse(text: &str) -> Result<Vec<Assignment>, EnvFileError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    while pos < b.len() {
        let start = pos;
        let eol = line_end(b, pos);
        let next = (eol + 1).min(b.len());
        let mut i = skip_blanks(b, pos, eol);
        if i == eol || b[i] == b'#' {
            pos = next;
            line += 1;
            continue;
        }
        if text[i..eol].starts_with("export") && b.get(i + 6).is_some_and(|c| is_blank(*c)) {
            i = skip_blanks(b, i + 6, eol);
        }
        let key_start = i;
        while i < eol && b[i] != b'=' && !is_blank(b[i]) {
            i += 1;
        }
        let key = &text[key_start..i];
        let syntax = |line: usize, problem: String| EnvFileError::Syntax { line, problem };
        if !valid_key(key) {
            return Err(syntax(
                line,
                format!("{key:?} is not a variable name; use letters, digits and `_`"),
            ));
        }
        i = skip_blanks(b, i, eol);
        if i == eol {
            // `KEY` alone: compose takes it from its own environment, not the file.
            pos = next;
            line += 1;
            continue;
        }
        if b[i] != b'=' {
            return Err(syntax(line, format!("expected `{key}=value`")));
        }
        i = skip_blanks(b, i + 1, eol);
        let first_line = line;
        let (value, raw, quote, end) = match b.get(i) {
            Some(&q) if i < eol && (q == b'"' || q == b'\'') => {
                let close = closing_quote(b, i, q).ok_or_else(|| {
                    syntax(
                        first_line,
                        format!(
                            "the value of {key} opens a {} quote that is never closed",
                            if q == b'"' { "double" } else { "single" }
                        ),
                    )
                })?;
                line += text[i..close].matches('\n').count();
                let end = line_end(b, close);
                let rest = &text[close + 1..end];
                let rest = rest.trim_matches(|c: char| c.is_ascii() && is_blank(c as u8));
                if !(rest.is_empty() || rest.starts_with('#')) {
                    return Err(syntax(
                        line,
                        format!("unexpected text after the closing quote of {key}; put a comment after ` #`"),
                    ));
                }
                let value = unescape(&text[i + 1..close], q);
                (value, i..close + 1, Some(q), end)
            }
            _ => {
                let region = &text[i..eol];
                let value = region.split(" #").next().unwrap_or(region);
                let value = value.trim_end_matches(|c: char| c.is_ascii() && is_blank(c as u8));
                (value.to_string(), i..i + value.len(), None, eol)
            }
        };
        let nothing_after = text[raw.end..end].bytes().all(is_blank);
        let after = (end + 1).min(b.len());
        out.push(Assignment {
            key: key.to_string(),
            value,
            line: first_line,
            raw,
            lines: start..after,
            nothing_after,
            quote,
        });
        pos = after;
        line += 1;
    }
    Ok(out)
}

/// Every variable the file defines, the last assignment of a key winning.
pub fn vars(text: &str) -> Result<HashMap<String, String>, EnvFileError> {
    Ok(parse(text)?.into_iter().map(|a| (a.key, a.value)).collect())
}

/// The value of `key` (its last assignment), or `None` when unset.
pub fn get(text: &str, key: &str) -> Result<Option<String>, EnvFileError> {
    Ok(parse(text)?
        .into_iter()
        .rev()
        .find(|a| a.key == key)
        .map(|a| a.value))
}

/// Sets `key` to `value`, or removes it for `None`, changing no other byte.
///
/// An existing key gets the new value in its last assignment, written in
/// the quotes it had when they can hold it, so setting the old value back
/// restores the file byte for byte. A new key is appended in the file's
/// line ending (a file without a final newline gets none either), so
/// removing it again restores the file too. Removing deletes every
/// assignment of the key: an earlier one would otherwise come back to life.
pub fn set(text: &str, key: &str, value: Option<&str>) -> Result<String, EnvFileError> {
    let edit = |problem: &str| EnvFileError::Edit {
        key: key.to_string(),
        problem: problem.to_string(),
    };
    if !valid_key(key) {
        return Err(edit("not a variable name; use letters, digits and `_`"));
    }
    if value.is_some_and(|v| v.contains(['\n', '\r'])) {
        return Err(edit("a value with a line break cannot go into an env file"));
    }
    let assignments = parse(text)?;
    let mine: Vec<&Assignment> = assignments.iter().filter(|a| a.key == key).collect();
    match (value, mine.last()) {
        (Some(v), Some(last)) => Ok(format!(
            "{}{}{}",
            &text[..last.raw.start],
            encode(v, last.quote, last.nothing_after),
            &text[last.raw.end..]
        )),
        (Some(v), None) => {
            let newline = if text.split('\n').next().is_some_and(|l| l.ends_with('\r')) {
                "\r\n"
            } else {
                "\n"
            };
            let line = format!("{key}={}", encode(v, None, true));
            Ok(if text.is_empty() {
                format!("{line}{newline}")
            } else if text.ends_with('\n') {
                format!("{text}{line}{newline}")
            } else {
                format!("{text}{newline}{line}")
            })
        }
        (None, _) => {
            let mut out = text.to_string();
            for a in mine.iter().rev() {
                let mut cut = a.lines.clone();
                // The last line of a file without a final newline takes the
                // newline before it along: what an append added.
                if cut.end == out.len() && !out.ends_with('\n') && cut.start > 0 {
                    cut.start -= 1;
                    if cut.start > 0 && out.as_bytes()[cut.start - 1] == b'\r' {
                        cut.start -= 1;
                    }
                }
                out.replace_range(cut, "");
            }
            Ok(out)
        }
    }
}

/// `value` written so compose reads it back unchanged, in the slot's own
/// quotes when they can hold it: unquoted, then single, then double quotes.
fn encode(value: &str, quote: Option<u8>, nothing_after: bool) -> String {
    // Compose expands `$` and strips blanks and ` #` outside quotes.
    let bare = if value.is_empty() {
        nothing_after
    } else {
        !value.contains(['$', '\\', '"', '\'']) && !value.contains(" #") && value.trim() == value
    };
    let single = !value.contains(['\'', '\\']);
    let order: [Option<u8>; 3] = match quote {
        None => [None, Some(b'\''), Some(b'"')],
        Some(b'\'') => [Some(b'\''), None, Some(b'"')],
        Some(_) => [Some(b'"'), None, Some(b'\'')],
    };
    for style in order {
        match style {
            None if bare => return value.to_string(),
            Some(b'\'') if single => return format!("'{value}'"),
            Some(b'"') => {
                let mut out = String::from("\"");
                for c in value.chars() {
                    if matches!(c, '"' | '\\' | '$') {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
                return out;
            }
            _ => {}
        }
    }
    // Unreachable: double quotes hold any value without a line break.
    format!("\"{value}\"")
}

/// Resolves the escapes compose resolves inside quotes.
fn unescape(inner: &str, quote: u8) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match (quote, chars.next()) {
            (_, None) => out.push('\\'),
            (_, Some(n)) if n as u32 == u32::from(quote) => out.push(n),
            (b'"', Some('n')) => out.push('\n'),
            (b'"', Some('r')) => out.push('\r'),
            (b'"', Some('t')) => out.push('\t'),
            (b'"', Some(n @ ('\\' | '$'))) => out.push(n),
            (_, Some(n)) => {
                out.push('\\');
                out.push(n);
            }
        }
    }
    out
}

/// The index of the quote closing the one at `open`, skipping escaped ones.
fn closing_quote(b: &[u8], open: usize, quote: u8) -> Option<usize> {
    let mut j = open + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            c if c == quote => return Some(j),
            _ => j += 1,
        }
    }
    None
}

/// Letters, digits, `_`, and the `.`/`-` compose also allows.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Space, tab and the `\r` of a CRLF line ending.
fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | 0x0b | 0x0c)
}

fn skip_blanks(b: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && is_blank(b[i]) {
        i += 1;
    }
    i
}

/// The index of the `\n` ending the line at `from`, or the text's length.
fn line_end(b: &[u8], from: usize) -> usize {
    b[from..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, key: &str) -> Option<String> {
        get(text, key).unwrap()
    }

    /// Sets `to`, checks what compose would read, then sets `back` and
    /// checks the file is byte for byte what it was.
    fn round_trip(text: &str, key: &str, to: Option<&str>, back: Option<&str>) -> String {
        let edited = set(text, key, to).unwrap();
        assert_eq!(value(&edited, key).as_deref(), to, "{edited:?}");
        assert_eq!(set(&edited, key, back).unwrap(), text, "{edited:?}");
        edited
    }

    #[test]
    fn plain_assignments_with_blanks_and_comments() {
        let text = "# demo stack\n\nA=1\n  B = two words  \nC=\nD=x # note\nE=a#b\n";
        assert_eq!(value(text, "A").as_deref(), Some("1"));
        assert_eq!(value(text, "B").as_deref(), Some("two words"));
        assert_eq!(value(text, "C").as_deref(), Some(""));
        assert_eq!(value(text, "D").as_deref(), Some("x"));
        assert_eq!(
            value(text, "E").as_deref(),
            Some("a#b"),
            "no blank before #"
        );
        assert_eq!(value(text, "MISSING"), None);
        let edited = round_trip(text, "D", Some("500"), Some("x"));
        assert_eq!(edited, text.replace("D=x # note", "D=500 # note"));
    }

    #[test]
    fn export_prefix() {
        let text = "export BATCH_SIZE=100\nexport\tOTHER=x\nexporter=y\n";
        assert_eq!(value(text, "BATCH_SIZE").as_deref(), Some("100"));
        assert_eq!(value(text, "OTHER").as_deref(), Some("x"));
        assert_eq!(value(text, "exporter").as_deref(), Some("y"));
        let edited = round_trip(text, "BATCH_SIZE", Some("500"), Some("100"));
        assert!(edited.starts_with("export BATCH_SIZE=500\n"), "{edited:?}");
    }

    #[test]
    fn single_quotes_are_literal() {
        let text = "PW='s3cret # not a comment'\nRAW='a\\nb $HOME'\nQ='it\\'s'\n";
        assert_eq!(value(text, "PW").as_deref(), Some("s3cret # not a comment"));
        assert_eq!(value(text, "RAW").as_deref(), Some("a\\nb $HOME"));
        assert_eq!(value(text, "Q").as_deref(), Some("it's"));
        let edited = round_trip(text, "PW", Some("new pw"), Some("s3cret # not a comment"));
        assert!(edited.starts_with("PW='new pw'\n"), "{edited:?}");
    }

    #[test]
    fn double_quotes_take_escapes_and_may_span_lines() {
        let text =
            "A=\"x \\\"y\\\" \\\\ \\$z\" # c\nB=\"two\nlines\"\nC=after\nD=\"t\\tu\\nv\\qw\"\n";
        assert_eq!(value(text, "A").as_deref(), Some("x \"y\" \\ $z"));
        assert_eq!(value(text, "D").as_deref(), Some("t\tu\nv\\qw"));
        assert_eq!(value(text, "B").as_deref(), Some("two\nlines"));
        assert_eq!(value(text, "C").as_deref(), Some("after"));
        assert_eq!(parse(text).unwrap()[2].line, 4);
        let edited = round_trip(text, "A", Some("a \"b\" $c"), Some("x \"y\" \\ $z"));
        assert!(
            edited.starts_with("A=\"a \\\"b\\\" \\$c\" # c\n"),
            "{edited:?}"
        );
        // A value the slot's quotes cannot hold changes the quotes: the
        // file then reads right, but setting the old value back keeps them.
        let edited = set(text, "C", Some("a \"quoted\" $x")).unwrap();
        assert!(edited.contains("\nC='a \"quoted\" $x'\n"), "{edited:?}");
        assert_eq!(value(&edited, "C").as_deref(), Some("a \"quoted\" $x"));
        let edited = set(text, "B", Some("200")).unwrap();
        assert_eq!(edited, text.replace("\"two\nlines\"", "\"200\""));
    }

    #[test]
    fn crlf_line_endings() {
        let text = "# c\r\nA=1\r\nB='x'\r\n";
        assert_eq!(value(text, "A").as_deref(), Some("1"));
        assert_eq!(value(text, "B").as_deref(), Some("x"));
        round_trip(text, "A", Some("500"), Some("1"));
        let added = round_trip(text, "NEW", Some("v"), None);
        assert_eq!(added, "# c\r\nA=1\r\nB='x'\r\nNEW=v\r\n");
    }

    #[test]
    fn duplicate_keys_last_wins_and_only_the_last_is_edited() {
        let text = "A=1\nB=x\nexport A=\"2\"\n";
        assert_eq!(value(text, "A").as_deref(), Some("2"));
        let edited = round_trip(text, "A", Some("3"), Some("2"));
        assert_eq!(edited, "A=1\nB=x\nexport A=\"3\"\n");
        assert_eq!(
            set(text, "A", None).unwrap(),
            "B=x\n",
            "every assignment goes"
        );
    }

    #[test]
    fn appending_and_removing_restore_the_file() {
        assert_eq!(round_trip("A=1\n", "K", Some("v"), None), "A=1\nK=v\n");
        assert_eq!(round_trip("A=1", "K", Some("v"), None), "A=1\nK=v");
        assert_eq!(round_trip("", "K", Some("v"), None), "K=v\n");
        assert_eq!(round_trip("# c\n", "K", Some(""), None), "# c\nK=\n");
    }

    #[test]
    fn values_that_need_quotes_get_them() {
        for v in [" padded ", "a #b", "$HOME", "back\\slash", "it's"] {
            let edited = set("K=1\n", "K", Some(v)).unwrap();
            assert_eq!(value(&edited, "K").as_deref(), Some(v), "{edited:?}");
        }
        let edited = set("K=1 # note\n", "K", Some("")).unwrap();
        assert_eq!(value(&edited, "K").as_deref(), Some(""), "{edited:?}");
    }

    #[test]
    fn bad_files_and_edits_are_refused_without_quoting_the_line() {
        let err = get("A=1\nB='s3cret\n", "A").unwrap_err();
        assert_eq!(
            err,
            EnvFileError::Syntax {
                line: 2,
                problem: "the value of B opens a single quote that is never closed".into()
            }
        );
        assert!(!err.to_string().contains("s3cret"));
        assert!(matches!(
            get("A B=1\n", "A"),
            Err(EnvFileError::Syntax { line: 1, .. })
        ));
        assert!(matches!(
            get("A=\"x\" junk\n", "A"),
            Err(EnvFileError::Syntax { line: 1, .. })
        ));
        assert!(set("K=1\n", "K", Some("a\nb")).is_err());
        assert!(set("K=1\n", "BAD KEY", Some("1")).is_err());
        assert_eq!(value("LONE\nA=1\n", "LONE"), None, "no value in the file");
    }
}
