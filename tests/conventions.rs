//! The conventions a CLI owes its users, checked on the real binary: shell
//! completions and a man page generated from the clap definitions, and
//! examples in every subcommand's `--help`.

mod support;

use std::process::{Command, Output, Stdio};

fn tuner(args: &[&str]) -> Output {
    Command::new(support::tuner_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tuner")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommands `tuner --help` lists (but `help`).
fn subcommands() -> Vec<String> {
    let help = stdout(&tuner(&["--help"]));
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|n| n != "help")
        .collect();
    assert!(names.len() >= 5, "{help}");
    names
}

#[test]
fn completions_name_every_subcommand() {
    let bash = stdout(&tuner(&["completions", "bash"]));
    for name in subcommands() {
        assert!(bash.contains(&name), "bash completion misses {name}");
    }
    assert!(bash.contains("complete -F"), "{bash}");
    let zsh = stdout(&tuner(&["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef tuner"), "{zsh}");
    let fish = stdout(&tuner(&["completions", "fish"]));
    assert!(fish.contains("complete -c tuner"), "{fish}");
    let out = tuner(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_page_has_its_sections_and_reads_with_man() {
    let page = stdout(&tuner(&["man"]));
    for section in [".TH tuner 1", ".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS"] {
        assert!(page.contains(section), "missing {section}:\n{page}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tuner.1");
    std::fs::write(&file, &page).unwrap();
    // `man -l` where man is installed: it must parse and render the page.
    if let Ok(out) = Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(text.contains("NAME") && text.contains("SYNOPSIS"), "{text}");
        assert!(text.contains("TUNER_CONFIG"), "{text}");
    }
}

#[test]
fn every_subcommand_shows_examples_in_its_help() {
    for name in subcommands() {
        let help = stdout(&tuner(&[&name, "--help"]));
        assert!(
            help.contains("Examples:\n  tuner "),
            "{name} --help has no examples:\n{help}"
        );
    }
}
