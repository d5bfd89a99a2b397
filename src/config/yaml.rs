//! The one YAML module. Every parse and serialisation of YAML in tuner goes
//! through here, so moving off `serde_yaml` (frozen upstream since 2024) to
//! a successor with the same API, such as `serde_yaml_ng`, is a change to
//! the `use` below and to Cargo.toml.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use serde_yaml as backend;

/// A YAML document as data, for files edited in place (the Compose override).
pub use backend::{Mapping, Number, Value};

/// What the YAML crate reports: the message and, for parse errors, where.
pub type Error = backend::Error;

/// Parses `text`, read from `path`, into `T`; on failure the message starts
/// with `file:line:col`, like every config problem.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, String> {
    from_str(text).map_err(|e| match e.location() {
        Some(loc) => format!(
            "{}:{}:{}: {}",
            path.display(),
            loc.line(),
            loc.column(),
            strip_location(&e.to_string())
        ),
        None => format!("{}: {}", path.display(), e),
    })
}

/// Parses `text` into `T`, for callers that word the error themselves.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    backend::from_str(text)
}

/// Serialises `value` as a YAML document.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    backend::to_string(value)
}

/// The crate appends " at line L column C" itself; `parse` puts the
/// position first instead.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        name: String,
        size: u32,
    }

    #[test]
    fn errors_start_with_file_line_and_column() {
        let err = parse::<Doc>(Path::new("x.yaml"), "name: a\nsize: 1\nsise: 2\n").unwrap_err();
        assert!(err.starts_with("x.yaml:3:1: "), "{err}");
        assert!(err.contains("unknown field `sise`"), "{err}");
        assert!(!err.contains(" at line "), "{err}");
    }

    #[test]
    fn documents_round_trip() {
        let doc = Doc {
            name: "a".into(),
            size: 1,
        };
        let text = to_string(&doc).unwrap();
        assert_eq!(from_str::<Doc>(&text).unwrap(), doc);
        let v: Value = from_str("n: 1.5\n").unwrap();
        assert_eq!(v["n"], Value::Number(Number::from(1.5)));
    }
}
