//! Secret paths and namespaces: validation, and resolving an agent's relative path.

/// Why a path was refused (the message names the path, printable, never more).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PathError(pub String);

/// Longest accepted path, in bytes.
pub const MAX_PATH_LEN: usize = 512;
/// Longest accepted segment, in bytes.
pub const MAX_SEGMENT_LEN: usize = 128;
/// Deepest accepted path.
pub const MAX_DEPTH: usize = 32;

/// The namespace prefix under which agents are provisioned.
pub const ENTITIES: &str = "entities";

/// Checks a full (absolute, without leading slash) secret path.
///
/// Segments may hold ASCII letters, digits and `. _ - @ + = :`; `.` and `..`
/// are refused, as are empty segments, control characters and over-long paths.
pub fn validate(path: &str) -> Result<(), PathError> {
    let bad = |why: &str| Err(PathError(format!("{why}: {}", printable(path))));
    if path.is_empty() {
        return bad("path is empty");
    }
    if path.len() > MAX_PATH_LEN {
        return bad("path is longer than 512 bytes");
    }
    let mut depth = 0;
    for seg in path.split('/') {
        depth += 1;
        if seg.is_empty() {
            return bad("path has an empty segment");
        }
        if seg == "." || seg == ".." {
            return bad("path may not contain `.` or `..` segments");
        }
        if seg.len() > MAX_SEGMENT_LEN {
            return bad("path segment is longer than 128 bytes");
        }
        if let Some(c) = seg.chars().find(|c| !allowed(*c)) {
            if c.is_control() {
                return bad("path contains a control character");
            }
            return bad(&format!(
                "path contains the character {c:?} (allowed: letters, digits and . _ - @ + = : between the /)"
            ));
        }
    }
    if depth > MAX_DEPTH {
        return bad("path is deeper than 32 segments");
    }
    Ok(())
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+' | '=' | ':')
}

/// A path with control characters replaced, fit for an error message.
fn printable(path: &str) -> String {
    path.chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The namespace a full path belongs to: `entities/<id>` for agent namespaces,
/// otherwise its first segment (`production` for `production/openai/key`).
pub fn namespace_of(path: &str) -> &str {
    let mut parts = path.splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(ENTITIES), Some(id)) => &path[..ENTITIES.len() + 1 + id.len()],
        (Some(first), _) => first,
        _ => path,
    }
}

/// The namespace provisioned for an agent.
pub fn agent_namespace(agent_id: &str) -> String {
    format!("{ENTITIES}/{agent_id}")
}

/// Joins a namespace and a path relative to it.
pub fn join(namespace: &str, relative: &str) -> String {
    format!("{namespace}/{relative}")
}

/// Strips a namespace prefix from a full path, if the path lies inside it.
pub fn relative_to<'a>(namespace: &str, path: &'a str) -> Option<&'a str> {
    path.strip_prefix(namespace)?.strip_prefix('/')
}

/// Checks a path prefix used for listing (may be empty, may end with `/`).
pub fn validate_prefix(prefix: &str) -> Result<(), PathError> {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(());
    }
    validate(trimmed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for p in ["a", "production/openai/api-key", "x/y.z/A_B-c@d+e=f:g"] {
            validate(p).unwrap();
        }
    }

    #[test]
    fn refuses_bad_paths() {
        let long = "a".repeat(600);
        let seg = "b".repeat(200);
        let deep = vec!["d"; 40].join("/");
        for p in [
            "", "/a", "a/", "a//b", "a/../b", "..", ".", "a/./b", "a\nb", "a\0b", "a b", "a/*",
            "a?b", "a%2Fb", "a\\b", &long, &seg, &deep, "é",
        ] {
            assert!(validate(p).is_err(), "{p:?} should be refused");
        }
        let why = validate("a/b c").unwrap_err().to_string();
        assert!(
            why.contains("' '") && why.contains("allowed: letters, digits"),
            "{why}"
        );
    }

    #[test]
    fn namespaces() {
        assert_eq!(namespace_of("entities/01ABC/prod/key"), "entities/01ABC");
        assert_eq!(namespace_of("entities/01ABC"), "entities/01ABC");
        assert_eq!(namespace_of("production/openai/key"), "production");
        assert_eq!(namespace_of("single"), "single");
        assert_eq!(relative_to("entities/x", "entities/x/a/b"), Some("a/b"));
        assert_eq!(relative_to("entities/x", "entities/xy/a"), None);
    }
}
