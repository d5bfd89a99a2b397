//! `${VAR}` and `${VAR:-default}` in config text, as docker-compose does it:
//! the process environment wins, then the Compose project's env file. This
//! lets the shipped config follow the ports and password the demo's setup
//! picked, with no edits.

use std::collections::HashMap;
use std::path::Path;

use super::envfile;
use super::yaml::{from_str, Value};

/// The variables of the env file at `path`; a missing file defines none
/// (the environment may set them all).
fn env_file_vars(path: &Path) -> Result<HashMap<String, String>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(format!("cannot read the env file {}: {e}", path.display())),
    };
    envfile::vars(&text).map_err(|e| match e {
        envfile::EnvFileError::Syntax { line, problem } => {
            format!("{}:{line}: {problem}", path.display())
        }
        other => format!("{}: {other}", path.display()),
    })
}

/// Replaces every `${NAME}` / `${NAME:-default}` in `text`, read from
/// `path`. Unset names without a default are errors (`path:line:col: ...`),
/// so a missing `.env` is never a silently empty password or port; so is an
/// env file compose would refuse. `$$` is a literal `$`.
///
/// A value lands *inside* the scalar it was written in, whatever it holds: a
/// password with `#`, `: `, quotes or a line break must not end the scalar,
/// start a comment or a new key. So each value is escaped for where it
/// stands (inside "...", inside '...', or in a plain scalar, which is turned
/// into a double-quoted one when the value needs it), the file keeps its
/// lines (so `file:line` errors still point at the user's file), and the
/// result is checked against the substitution done on the parsed scalars of
/// the original text (`same_as_parsed`).
pub fn interpolate(
    path: &Path,
    text: &str,
    env_file: Option<&Path>,
) -> Result<String, Vec<String>> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let file_vars = match env_file.map(env_file_vars).transpose() {
        Ok(vars) => vars.unwrap_or_default(),
        Err(problem) => return Err(vec![problem]),
    };
    let lookup = |name: &str| {
        std::env::var(name)
            .ok()
            .or_else(|| file_vars.get(name).cloned())
    };
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    for (n, full_line) in text.split_inclusive('\n').enumerate() {
        // Comments are left alone: they may explain `${VAR}` itself.
        let (line, comment) = full_line.split_at(comment_start(full_line));
        let at = |col: usize| format!("{}:{}:{col}", path.display(), n + 1);
        let pieces = match substitutions(line, &lookup) {
            Ok(p) => p,
            Err(missing) => {
                for (col, what) in missing {
                    let hint = env_file
                        .map(|p| {
                            format!(
                                "set it in the environment or in {} (make dev-up creates it)",
                                p.display()
                            )
                        })
                        .unwrap_or_else(|| "set it in the environment".to_string());
                    problems.push(match what {
                        Missing::Unset(name) => {
                            format!("{}: ${{{name}}} is not set; {hint}", at(col))
                        }
                        Missing::Unclosed => {
                            format!("{}: unclosed ${{ in {:?}", at(col), line.trim_end())
                        }
                    });
                }
                out.push_str(full_line);
                continue;
            }
        };
        match render(line, &pieces) {
            Ok(rendered) => out.push_str(&rendered),
            Err(col) => {
                problems.push(format!(
                    "{}: a value substituted inside a single-quoted string holds a line break, which such a string cannot hold; use double quotes",
                    at(col)
                ));
                out.push_str(line);
            }
        }
        out.push_str(comment);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if !same_as_parsed(text, &out, &lookup) {
        return Err(vec![format!(
            "{}: a ${{VAR}} value would change the YAML around it (a multi-line quoted string?); put the ${{VAR}} in a one-line double-quoted string",
            path.display()
        )]);
    }
    Ok(out)
}

enum Missing {
    Unset(String),
    Unclosed,
}

/// One `${...}` or `$$` in a line: its byte range and what replaces it.
struct Piece {
    start: usize,
    end: usize,
    value: String,
}

/// The substitutions of one line (comment excluded), or the columns of the
/// names that are unset and of an unclosed `${`.
fn substitutions(
    line: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Piece>, Vec<(usize, Missing)>> {
    let mut pieces = Vec::new();
    let mut missing = Vec::new();
    let mut i = 0;
    while let Some(found) = line[i..].find('$') {
        let start = i + found;
        let col = line[..start].chars().count() + 1;
        let after = &line[start + 1..];
        if after.starts_with('$') {
            pieces.push(Piece {
                start,
                end: start + 2,
                value: "$".into(),
            });
            i = start + 2;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            i = start + 1;
            continue;
        };
        let Some(close) = body.find('}') else {
            missing.push((col, Missing::Unclosed));
            break;
        };
        let expr = &body[..close];
        let (name, default) = match expr.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expr, None),
        };
        match lookup(name)
            .filter(|v| !v.is_empty())
            .or(default.map(str::to_string))
        {
            Some(value) => pieces.push(Piece {
                start,
                end: start + 2 + close + 1,
                value,
            }),
            None => missing.push((col, Missing::Unset(name.to_string()))),
        }
        i = start + 2 + close + 1;
    }
    if missing.is_empty() {
        Ok(pieces)
    } else {
        Err(missing)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoting {
    Plain,
    Double,
    Single,
}

/// Whether byte offset `at` of `line` sits inside a double- or
/// single-quoted string (one that opened on this line).
fn quoting_at(line: &str, at: usize) -> Quoting {
    let mut q = Quoting::Plain;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if i >= at {
            break;
        }
        match q {
            Quoting::Double if escaped => escaped = false,
            Quoting::Double if c == '\\' => escaped = true,
            Quoting::Double if c == '"' => q = Quoting::Plain,
            Quoting::Single if c == '\'' => q = Quoting::Plain,
            Quoting::Plain if c == '"' => q = Quoting::Double,
            Quoting::Plain if c == '\'' => q = Quoting::Single,
            _ => {}
        }
    }
    q
}

/// The byte range of the plain scalar holding the `${...}` at `at..after`: after the
/// mapping's `: ` or a list's `- ` (or a flow collection's `[`, `{`, `,`),
/// up to the end of the line or the flow item, without surrounding spaces.
fn plain_span(line: &str, at: usize, after: usize) -> (usize, usize) {
    let bytes = line.as_bytes();
    let mut start = line.len() - line.trim_start().len();
    while line[start..].starts_with("- ") {
        start += 2;
    }
    let mut flow = false;
    let first = start;
    for (i, c) in line[..at].char_indices().skip_while(|(i, _)| *i < first) {
        let next = bytes.get(i + 1).copied();
        let key_end = c == ':' && matches!(next, Some(b' ') | Some(b'\t'));
        if !flow && key_end && quoting_at(line, i) == Quoting::Plain {
            start = i + 1;
        } else if matches!(c, '[' | '{' | ',') && quoting_at(line, i) == Quoting::Plain {
            flow |= c != ',';
            start = i + 1;
        }
    }
    while start < at && bytes[start].is_ascii_whitespace() {
        start += 1;
    }
    // The flow item ends after the `${...}` (whose braces are not flow's).
    let rest = &line[after..];
    let end = if flow {
        after + rest.find([',', ']', '}']).unwrap_or(rest.len())
    } else {
        line.len()
    };
    let end = start.max(at) + line[start.max(at)..end].trim_end().len();
    (start, end)
}

/// A value that reads back as itself in a plain scalar, wherever in it.
fn plain_safe(value: &str) -> bool {
    value.trim() == value
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || " -_./+=~^()?;$".contains(c))
}

/// `text` as the body of a YAML double-quoted string.
fn escape_double(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// The line with its pieces substituted, each escaped for where it stands;
/// `Err(column)` for a line break bound for a single-quoted string.
fn render(line: &str, pieces: &[Piece]) -> Result<String, usize> {
    if pieces.is_empty() {
        return Ok(line.to_string());
    }
    // Plain scalars that some value cannot sit in unquoted.
    let mut quote: Vec<(usize, usize)> = Vec::new();
    for p in pieces {
        if quoting_at(line, p.start) == Quoting::Plain && !plain_safe(&p.value) {
            let span = plain_span(line, p.start, p.end);
            if !quote.contains(&span) {
                quote.push(span);
            }
        }
    }
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    let mut open: Option<usize> = None;
    while i < line.len() {
        if open.is_none() {
            if let Some(&(_, e)) = quote.iter().find(|(s, _)| *s == i) {
                out.push('"');
                open = Some(e);
            }
        }
        if open == Some(i) {
            out.push('"');
            open = None;
            continue;
        }
        if let Some(p) = pieces.iter().find(|p| p.start == i) {
            let value = match (open.is_some(), quoting_at(line, p.start)) {
                (true, _) | (false, Quoting::Double) => escape_double(&p.value),
                (false, Quoting::Single) if p.value.contains(['\n', '\r']) => {
                    return Err(line[..p.start].chars().count() + 1)
                }
                (false, Quoting::Single) => p.value.replace('\'', "''"),
                (false, Quoting::Plain) => p.value.clone(),
            };
            out.push_str(&value);
            i = p.end;
            continue;
        }
        let Some(c) = line[i..].chars().next() else {
            break;
        };
        if open.is_some() {
            out.push_str(&escape_double(&c.to_string()));
        } else {
            out.push(c);
        }
        i += c.len_utf8();
    }
    if open.is_some() {
        out.push('"');
    }
    Ok(out)
}

/// Whether `rendered` parses to the document `original` parses to with the
/// same substitution done in its parsed scalars: the textual substitution
/// changed values, never structure. A document that does not parse is left
/// to the typed parse, which names the line.
fn same_as_parsed(original: &str, rendered: &str, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
    let Ok(mut expected) = from_str::<Value>(original) else {
        return true;
    };
    substitute_scalars(&mut expected, lookup);
    from_str::<Value>(rendered).is_ok_and(|got| got == expected)
}

fn substitute_scalars(value: &mut Value, lookup: &dyn Fn(&str) -> Option<String>) {
    match value {
        Value::String(s) if s.contains('$') => {
            if let Ok(pieces) = substitutions(s, lookup) {
                let mut out = String::with_capacity(s.len());
                let mut i = 0;
                for p in pieces {
                    out.push_str(&s[i..p.start]);
                    out.push_str(&p.value);
                    i = p.end;
                }
                out.push_str(&s[i..]);
                // A plain `${PORT}` holding digits is a number in the text.
                *value = from_str::<Value>(&out)
                    .ok()
                    .filter(|v| !matches!(v, Value::String(_)) && plain_safe(&out))
                    .unwrap_or(Value::String(out));
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(|v| substitute_scalars(v, lookup)),
        Value::Mapping(map) => {
            let entries: Vec<(Value, Value)> = std::mem::take(map).into_iter().collect();
            for (mut k, mut v) in entries {
                substitute_scalars(&mut k, lookup);
                substitute_scalars(&mut v, lookup);
                map.insert(k, v);
            }
        }
        Value::Tagged(t) => substitute_scalars(&mut t.value, lookup),
        _ => {}
    }
}

/// Byte offset where a YAML comment starts (a `#` at the start or after
/// whitespace, outside quotes), or the line's length.
fn comment_start(line: &str) -> usize {
    let mut quote: Option<char> = None;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev_space => return i,
            None => {}
        }
        prev_space = c.is_whitespace();
    }
    line.len()
}

#[cfg(test)]
mod tests;
