//! Which Compose tuner runs: `compose.command` when the config names one,
//! else Compose v2 (`docker compose`, the CLI plugin most users have) when
//! it answers `version`, else v1 (`docker-compose`, end of life but the only
//! one installable on some machines). Found once per process, so every
//! caller (the config hash, the env levers' recreate) runs the same Compose.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Compose v2, the CLI plugin.
pub const V2: [&str; 2] = ["docker", "compose"];
/// Compose v1, the standalone Python tool.
pub const V1: [&str; 1] = ["docker-compose"];

/// How long `… version` may take before the candidate counts as absent: a
/// wedged plugin must not stall every command.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The argv prefix that runs Compose, and how it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeCommand {
    argv: Vec<String>,
    pub source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `compose.command` in the config.
    Configured,
    /// `docker compose version` answered.
    Plugin,
    /// Neither of the above: `docker-compose`, whether or not it is there,
    /// so the error of the first real run names it.
    Fallback,
}

impl ComposeCommand {
    /// Chooses the command. `probe` runs an argv (the candidate plus
    /// `version`) and says whether it succeeded; tests inject their own.
    pub fn detect(
        configured: Option<&[String]>,
        probe: impl Fn(&[String]) -> bool,
    ) -> ComposeCommand {
        if let Some(argv) = configured.filter(|a| !a.is_empty()) {
            return ComposeCommand {
                argv: argv.to_vec(),
                source: Source::Configured,
            };
        }
        let v2: Vec<String> = V2.iter().map(|s| s.to_string()).collect();
        let mut version = v2.clone();
        version.push("version".into());
        if probe(&version) {
            return ComposeCommand {
                argv: v2,
                source: Source::Plugin,
            };
        }
        ComposeCommand {
            argv: V1.iter().map(|s| s.to_string()).collect(),
            source: Source::Fallback,
        }
    }

    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The command followed by `args`, for argv-shaped config such as
    /// `tune.recreate`.
    pub fn with_args(&self, args: &[&str]) -> Vec<String> {
        let mut out = self.argv.clone();
        out.extend(args.iter().map(|s| s.to_string()));
        out
    }

    /// A `Command` ready for Compose's own arguments.
    pub fn command(&self) -> Command {
        // `detect` never yields an empty argv: a configured one is checked
        // for emptiness and the others are constants.
        let (program, rest) = self
            .argv
            .split_first()
            .map_or(("docker-compose", &[][..]), |(p, r)| (p.as_str(), r));
        let mut cmd = Command::new(program);
        cmd.args(rest);
        cmd
    }

    /// As a user would type it, for messages and plans.
    pub fn display(&self) -> String {
        self.argv.join(" ")
    }
}

static CONFIGURED: OnceLock<Vec<String>> = OnceLock::new();
static CHOSEN: OnceLock<ComposeCommand> = OnceLock::new();

/// Records `compose.command` from the config. Called by the command layer
/// right after loading the config, before anything runs Compose; a second
/// call (or one after the choice was made) is ignored, since the process
/// already committed to one Compose.
pub fn configure(argv: Option<&[String]>) {
    if let Some(a) = argv.filter(|a| !a.is_empty()) {
        let _ = CONFIGURED.set(a.to_vec());
    }
}

/// The Compose of this process, chosen on first use.
pub fn get() -> &'static ComposeCommand {
    CHOSEN.get_or_init(|| ComposeCommand::detect(CONFIGURED.get().map(Vec::as_slice), answers))
}

/// Runs `argv` with no input or output and says whether it exited 0 within
/// `PROBE_TIMEOUT`; a missing program is simply "no".
fn answers(argv: &[String]) -> bool {
    let Some((program, args)) = argv.split_first() else {
        return false;
    };
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if start.elapsed() < PROBE_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_configured_command_wins_without_probing() {
        let asked = RefCell::new(Vec::new());
        let argv = strings(&["podman", "compose"]);
        let c = ComposeCommand::detect(Some(&argv), |a| {
            asked.borrow_mut().push(a.to_vec());
            true
        });
        assert_eq!(c.argv(), argv.as_slice());
        assert_eq!(c.source, Source::Configured);
        assert!(asked.borrow().is_empty());
    }

    #[test]
    fn the_v2_plugin_is_used_when_it_answers_version() {
        let asked = RefCell::new(Vec::new());
        let c = ComposeCommand::detect(None, |a| {
            asked.borrow_mut().push(a.to_vec());
            true
        });
        assert_eq!(c.argv(), strings(&["docker", "compose"]).as_slice());
        assert_eq!(c.source, Source::Plugin);
        assert_eq!(
            *asked.borrow(),
            vec![strings(&["docker", "compose", "version"])]
        );
    }

    #[test]
    fn v1_is_the_fallback_when_the_plugin_does_not_answer() {
        let c = ComposeCommand::detect(None, |_| false);
        assert_eq!(c.argv(), strings(&["docker-compose"]).as_slice());
        assert_eq!(c.source, Source::Fallback);
        assert_eq!(c.display(), "docker-compose");
    }

    #[test]
    fn an_empty_configured_command_is_ignored() {
        let c = ComposeCommand::detect(Some(&[]), |_| true);
        assert_eq!(c.source, Source::Plugin);
    }

    #[test]
    fn with_args_and_command_put_the_prefix_first() {
        let c = ComposeCommand::detect(None, |_| true);
        assert_eq!(
            c.with_args(&["up", "-d"]),
            strings(&["docker", "compose", "up", "-d"])
        );
        let cmd = c.command();
        assert_eq!(cmd.get_program(), "docker");
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args, ["compose"]);
    }

    #[test]
    fn the_real_probe_says_no_for_a_missing_program_and_yes_for_true() {
        assert!(!answers(&strings(&[
            "tuner-no-such-program-xyz",
            "version"
        ])));
        assert!(answers(&strings(&["true"])));
        assert!(!answers(&strings(&["false"])));
        assert!(!answers(&[]));
    }
}
