//! The only SQL text we build from user input.
//!
//! `ALTER SYSTEM` is a utility statement: it takes no bind parameters, so
//! the value has to be spliced in as a literal. We quote it the way
//! PostgreSQL's own `quote_literal()` does, and we only ever splice a
//! parameter name that the live `pg_settings` returned.

/// Quotes a string as an SQL literal: single quotes doubled; if there is a
/// backslash, an `E'...'` literal with backslashes doubled too, so the result
/// means the same whatever `standard_conforming_strings` says. The caller
/// rejects NUL (PostgreSQL text cannot hold it).
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 3);
    if value.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Quotes a parameter name as an identifier, each dotted part on its own
/// (`"my_ext"."setting"`), double quotes doubled.
pub fn quote_name(name: &str) -> String {
    name.split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

pub fn alter_system_set(name: &str, literal: &str) -> String {
    format!("ALTER SYSTEM SET {} = {literal}", quote_name(name))
}

pub fn alter_system_reset(name: &str) -> String {
    format!("ALTER SYSTEM RESET {}", quote_name(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_single_quoted() {
        assert_eq!(quote_literal("16MB"), "'16MB'");
        assert_eq!(quote_literal(""), "''");
    }

    #[test]
    fn quotes_are_doubled() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(
            quote_literal("'; DROP TABLE x; --"),
            "'''; DROP TABLE x; --'"
        );
    }

    #[test]
    fn backslashes_use_an_escape_string() {
        assert_eq!(quote_literal(r"C:\tmp"), r"E'C:\\tmp'");
        assert_eq!(quote_literal(r"a\'b"), r"E'a\\''b'");
    }

    #[test]
    fn names_are_quoted_identifiers() {
        assert_eq!(quote_name("max_wal_size"), "\"max_wal_size\"");
        assert_eq!(quote_name("ext.knob"), "\"ext\".\"knob\"");
        assert_eq!(quote_name("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(
            alter_system_set("wal_buffers", "'16MB'"),
            "ALTER SYSTEM SET \"wal_buffers\" = '16MB'"
        );
        assert_eq!(
            alter_system_reset("wal_buffers"),
            "ALTER SYSTEM RESET \"wal_buffers\""
        );
    }
}
