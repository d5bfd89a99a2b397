//! Running a lever's argv: no shell (so values are never interpreted), no
//! stdin, a timeout, and an error that quotes the command and its stderr.

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

/// Replaces `placeholder` in every argument.
pub fn substitute(argv: &[String], placeholder: &str, value: &str) -> Vec<String> {
    argv.iter().map(|a| a.replace(placeholder, value)).collect()
}

/// `docker-compose up -d app`, quoting arguments that need it, for plans.
pub fn display(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@{}".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `argv` in `dir`; `Ok(stdout)` on exit status 0.
pub async fn run(argv: &[String], dir: Option<&Path>, timeout: Duration) -> Result<String, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let shown = display(argv);
    let output = match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => {
            return Err(format!(
                "`{shown}` did not finish within {timeout:?} and was killed"
            ))
        }
        Ok(Err(e)) => return Err(format!("cannot run `{shown}`: {e}")),
        Ok(Ok(o)) => o,
    };
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: String = stderr
        .trim()
        .chars()
        .rev()
        .take(400)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let code = output
        .status
        .code()
        .map(|c| c.to_string())
        .unwrap_or_else(|| "a signal".into());
    Err(format!("`{shown}` exited with {code}: {tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn runs_without_a_shell_and_reports_failures() {
        let out = run(
            &argv(&["echo", "a; rm -rf /", "$HOME"]),
            None,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(
            out, "a; rm -rf / $HOME\n",
            "arguments reach the program verbatim"
        );
        let err = run(&argv(&["false"]), None, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(err.contains("`false` exited with 1"), "{err}");
        let err = run(&argv(&["/nonexistent/tool"]), None, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(err.contains("cannot run"), "{err}");
        let err = run(&argv(&["sleep", "5"]), None, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(err.contains("did not finish"), "{err}");
        assert!(run(&[], None, Duration::from_secs(1)).await.is_err());
    }

    #[test]
    fn substitutes_and_displays() {
        let a = substitute(&argv(&["pool", "--mode={value}"]), "{value}", "on");
        assert_eq!(a, ["pool", "--mode=on"]);
        assert_eq!(
            display(&argv(&["echo", "two words", "it's"])),
            "echo 'two words' 'it'\\''s'"
        );
    }
}
