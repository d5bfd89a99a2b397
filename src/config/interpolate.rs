//! `${VAR}` and `${VAR:-default}` in config text, as docker-compose does it:
//! the process environment wins, then the Compose project's env file. This
//! lets the shipped config follow the ports and password the demo's setup
//! picked, with no edits.

use std::collections::HashMap;
use std::path::Path;

/// Reads `KEY=VALUE` lines; `#` comments and blank lines are skipped, and
/// matching outer quotes are removed.
pub fn read_env_file(path: &Path) -> std::io::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)?;
    Ok(parse_env(&text))
}

pub fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            Some((
                key.trim().trim_start_matches("export ").trim().to_string(),
                value.to_string(),
            ))
        })
        .collect()
}

/// Replaces every `${NAME}` / `${NAME:-default}`. Unset names without a
/// default are errors (`line:col: ...`), so a missing `.env` is never a
/// silently empty password or port. `$$` is a literal `$`.
pub fn interpolate(text: &str, env_file: Option<&Path>) -> Result<String, Vec<String>> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let file_vars = env_file
        .and_then(|p| read_env_file(p).ok())
        .unwrap_or_default();
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
        let mut rest = line;
        let mut col = 1;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            col += rest[..i].chars().count();
            let after = &rest[i + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
                col += 2;
                continue;
            }
            let Some(body) = after.strip_prefix('{') else {
                out.push('$');
                rest = after;
                col += 1;
                continue;
            };
            let Some(end) = body.find('}') else {
                problems.push(format!(
                    "{}:{col}: unclosed ${{ in {:?}",
                    n + 1,
                    line.trim_end()
                ));
                out.push_str(&rest[i..]);
                rest = "";
                break;
            };
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr, None),
            };
            match lookup(name)
                .filter(|v| !v.is_empty())
                .or(default.map(str::to_string))
            {
                Some(value) => out.push_str(&value),
                None => {
                    let hint = env_file
                        .map(|p| {
                            format!(
                                "set it in the environment or in {} (make dev-up creates it)",
                                p.display()
                            )
                        })
                        .unwrap_or_else(|| "set it in the environment".to_string());
                    problems.push(format!("{}:{col}: ${{{name}}} is not set; {hint}", n + 1));
                }
            }
            col += expr.chars().count() + 3;
            rest = &body[end + 1..];
        }
        out.push_str(rest);
        out.push_str(comment);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
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
mod tests {
    use super::*;

    #[test]
    fn substitutes_from_env_file_with_defaults_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join(".env");
        std::fs::write(&env, "# c\nTUNER_T_PORT=27432\nTUNER_T_PW=\"s3cret\"\n").unwrap();
        let text = "# ${NOT_A_VAR}\nurl: http://127.0.0.1:${TUNER_T_PORT}/x # ${X}\npw: ${TUNER_T_PW}\nd: ${TUNER_T_NONE:-5s}\nlit: $$5\nq: \"a#${TUNER_T_PORT}\"\n";
        let out = interpolate(text, Some(&env)).unwrap();
        assert_eq!(out, "# ${NOT_A_VAR}\nurl: http://127.0.0.1:27432/x # ${X}\npw: s3cret\nd: 5s\nlit: $5\nq: \"a#27432\"\n");
    }

    #[test]
    fn unset_variable_is_located() {
        let err = interpolate("a: 1\nb: x${TUNER_T_MISSING}\n", None).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(
            err[0].starts_with("2:5: ${TUNER_T_MISSING} is not set"),
            "{err:?}"
        );
    }
}
