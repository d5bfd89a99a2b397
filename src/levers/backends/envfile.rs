//! Reading and editing `KEY=value` lines of a Compose env file, keeping
//! every other line (comments, order) exactly as it was.

/// The value of `key` (the last assignment wins, as in Compose), unquoted.
pub fn get(text: &str, key: &str) -> Option<String> {
    text.lines().rev().find_map(|line| parse(line, key))
}

fn parse(line: &str, key: &str) -> Option<String> {
    let t = line.trim_start();
    if t.starts_with('#') {
        return None;
    }
    let t = t.strip_prefix("export ").unwrap_or(t);
    let rest = t.strip_prefix(key)?.trim_start();
    let value = rest.strip_prefix('=')?.trim();
    let unquoted = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    Some(unquoted.to_string())
}

/// Sets `key` to `value` (or removes it for `None`). An existing assignment
/// is replaced in place; a new one is appended.
pub fn set(text: &str, key: &str, value: Option<&str>) -> Result<String, String> {
    if let Some(v) = value {
        if v.contains('\n') || v.contains('\r') {
            return Err(format!(
                "{key}: a value with a line break cannot go into an env file"
            ));
        }
    }
    let mut out: Vec<String> = Vec::new();
    let mut placed = false;
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.iter().rposition(|l| parse(l, key).is_some());
    for (i, line) in lines.iter().enumerate() {
        if parse(line, key).is_none() {
            out.push(line.to_string());
        } else if Some(i) == last {
            if let Some(v) = value {
                out.push(format!("{key}={v}"));
                placed = true;
            }
        }
        // Earlier duplicate assignments are dropped: they were dead anyway.
    }
    if let (Some(v), false) = (value, placed) {
        out.push(format!("{key}={v}"));
    }
    let mut s = out.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_last_assignment_unquoted() {
        let text = "# BATCH_SIZE=1\nBATCH_SIZE=100\nOTHER=x\nexport BATCH_SIZE=\"200\"\nBATCH_SIZE_MAX=9\n";
        assert_eq!(get(text, "BATCH_SIZE").as_deref(), Some("200"));
        assert_eq!(get(text, "MISSING"), None);
    }

    #[test]
    fn replaces_in_place_appends_and_removes() {
        let text = "# app\nBATCH_SIZE=100\nOTHER=x\n";
        assert_eq!(
            set(text, "BATCH_SIZE", Some("500")).unwrap(),
            "# app\nBATCH_SIZE=500\nOTHER=x\n"
        );
        assert_eq!(
            set(text, "NEW", Some("1")).unwrap(),
            "# app\nBATCH_SIZE=100\nOTHER=x\nNEW=1\n"
        );
        assert_eq!(set(text, "BATCH_SIZE", None).unwrap(), "# app\nOTHER=x\n");
        assert_eq!(set("", "K", Some("v")).unwrap(), "K=v\n");
        assert!(set(text, "K", Some("a\nb")).is_err());
    }
}
