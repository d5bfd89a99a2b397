//! `${VAR}` and `${VAR:-default}` in config text, as docker-compose does it:
//! the process environment wins, then the Compose project's env file. This
//! lets the shipped config follow the ports and password the demo's setup
//! picked, with no edits.

use std::collections::HashMap;
use std::path::Path;

use super::envfile;

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
                    "{}:{}:{col}: unclosed ${{ in {:?}",
                    path.display(),
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
                    problems.push(format!(
                        "{}:{}:{col}: ${{{name}}} is not set; {hint}",
                        path.display(),
                        n + 1
                    ));
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
        let out = interpolate(Path::new("t.yaml"), text, Some(&env)).unwrap();
        assert_eq!(out, "# ${NOT_A_VAR}\nurl: http://127.0.0.1:27432/x # ${X}\npw: s3cret\nd: 5s\nlit: $5\nq: \"a#27432\"\n");
    }

    #[test]
    fn env_file_is_read_as_compose_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join(".env");
        std::fs::write(
            &env,
            "export TUNER_T2_A=1 # port\r\nTUNER_T2_B='x y' # pw\r\nTUNER_T2_A=2\r\n",
        )
        .unwrap();
        let out = interpolate(
            Path::new("t.yaml"),
            "a: ${TUNER_T2_A}\nb: ${TUNER_T2_B}\n",
            Some(&env),
        );
        assert_eq!(out.unwrap(), "a: 2\nb: x y\n");
    }

    #[test]
    fn a_broken_env_file_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join(".env");
        std::fs::write(&env, "A=1\nPW=\"s3cret\n").unwrap();
        let err = interpolate(Path::new("t.yaml"), "a: ${A}\n", Some(&env)).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(
            err[0].starts_with(&format!("{}:2: ", env.display())),
            "{err:?}"
        );
        assert!(!err[0].contains("s3cret"), "{err:?}");
    }

    #[test]
    fn unset_variable_is_located() {
        let err =
            interpolate(Path::new("t.yaml"), "a: 1\nb: x${TUNER_T_MISSING}\n", None).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(
            err[0].starts_with("t.yaml:2:5: ${TUNER_T_MISSING} is not set"),
            "{err:?}"
        );
    }
}
