//! `${VAR}` substitution: values stay inside their scalar, lines are kept.
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
    let err = interpolate(Path::new("t.yaml"), "a: 1\nb: x${TUNER_T_MISSING}\n", None).unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(
        err[0].starts_with("t.yaml:2:5: ${TUNER_T_MISSING} is not set"),
        "{err:?}"
    );
}

/// `config` interpolated with `PW` from an env file (compose's double
/// quotes, so `\n` is a line break), parsed as YAML.
fn with_password(pw_in_env_file: &str, config: &str) -> Result<(String, Value), Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(
        &env,
        format!("TUNER_T3_PW=\"{pw_in_env_file}\"\nTUNER_T3_PORT=5432\n"),
    )
    .unwrap();
    let out = interpolate(Path::new("t.yaml"), config, Some(&env))?;
    assert_eq!(
        out.lines().count(),
        config.lines().count(),
        "lines kept: {out}"
    );
    let doc = from_str::<Value>(&out).unwrap();
    Ok((out, doc))
}

const DSN: &str = "postgres:\n  dsn: postgresql://app:${TUNER_T3_PW}@127.0.0.1:${TUNER_T3_PORT}/app # the demo\n  next: 1\n";

fn dsn_of(doc: &Value) -> &str {
    doc["postgres"]["dsn"].as_str().unwrap()
}

#[test]
fn a_hash_in_a_value_is_not_a_comment() {
    let (_, doc) = with_password("a #b#c", DSN).unwrap();
    assert_eq!(dsn_of(&doc), "postgresql://app:a #b#c@127.0.0.1:5432/app");
    assert_eq!(doc["postgres"]["next"], Value::Number(1.into()));
}

#[test]
fn a_colon_space_in_a_value_is_not_a_key() {
    let (_, doc) = with_password("a: b:c", DSN).unwrap();
    assert_eq!(dsn_of(&doc), "postgresql://app:a: b:c@127.0.0.1:5432/app");
    let (_, doc) = with_password("x: y", "pw: ${TUNER_T3_PW}\n").unwrap();
    assert_eq!(doc["pw"].as_str(), Some("x: y"));
}

#[test]
fn quotes_in_a_value_stay_in_it_plain_double_or_single_quoted() {
    let pw = r#"q\"d'"#; // q"d' once compose unescapes it
    let (_, doc) = with_password(pw, DSN).unwrap();
    assert_eq!(dsn_of(&doc), "postgresql://app:q\"d'@127.0.0.1:5432/app");
    let config = "a: \"x${TUNER_T3_PW}y\"\nb: 'x${TUNER_T3_PW}y'\nc: ${TUNER_T3_PW}\n";
    let (_, doc) = with_password(pw, config).unwrap();
    for key in ["a", "b", "c"] {
        let want = if key == "c" { "q\"d'" } else { "xq\"d'y" };
        assert_eq!(doc[key].as_str(), Some(want), "{key}");
    }
    // A value that starts with a quote does not open a quoted string.
    let (_, doc) = with_password(r#"\"abc"#, "pw: ${TUNER_T3_PW}\n").unwrap();
    assert_eq!(doc["pw"].as_str(), Some("\"abc"));
}

#[test]
fn a_line_break_in_a_value_stays_one_value_and_keeps_the_lines() {
    let (_, doc) = with_password("one\\ntwo: 3", DSN).unwrap();
    assert_eq!(
        dsn_of(&doc),
        "postgresql://app:one\ntwo: 3@127.0.0.1:5432/app"
    );
    let (_, doc) = with_password(
        "one\\ntwo",
        "a: \"${TUNER_T3_PW}\"\nb: [x, ${TUNER_T3_PW}, y]\n",
    )
    .unwrap();
    assert_eq!(doc["a"].as_str(), Some("one\ntwo"));
    assert_eq!(doc["b"][1].as_str(), Some("one\ntwo"));
    assert_eq!(doc["b"][2].as_str(), Some("y"));
    // A single-quoted string cannot hold one: named with file:line:col.
    let err = with_password("one\\ntwo", "a: 1\nb: 'x${TUNER_T3_PW}'\n").unwrap_err();
    assert!(err[0].starts_with("t.yaml:2:6: "), "{err:?}");
    assert!(!err[0].contains("one"), "the value stays secret: {err:?}");
}

#[test]
fn plain_values_keep_their_type_and_their_text() {
    let (out, doc) =
        with_password("s3cret", "port: ${TUNER_T3_PORT}\npw: ${TUNER_T3_PW} # c\n").unwrap();
    assert_eq!(out, "port: 5432\npw: s3cret # c\n");
    assert_eq!(doc["port"], Value::Number(5432.into()));
}

#[test]
fn file_line_errors_still_point_at_the_users_file() {
    // The typed parse of the interpolated text names the user's line.
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(&env, "TUNER_T4_PW=\"a#: b\"\n").unwrap();
    let text = "postgres:\n  dsn: postgresql://u:${TUNER_T4_PW}@h/db\nprofile: x: y\n";
    let out = interpolate(Path::new("t.yaml"), text, Some(&env)).unwrap();
    let err = crate::config::yaml::parse::<Value>(Path::new("t.yaml"), &out).unwrap_err();
    assert!(err.starts_with("t.yaml:3:"), "{err}");
    assert!(!err.contains("a#: b"), "{err}");
}
