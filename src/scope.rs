//! Scopes carried by tokens (`secrets:read:production/openai/*`), path globs, and the
//! narrowing rule: a child scope set must be covered by its parent's.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a scope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScopeError(pub String);

/// What a holder may do with a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Read the value (through a lease).
    Read,
    /// Use the value through the proxy without seeing it.
    Proxy,
    /// List and describe (metadata only).
    List,
    /// Create, update, delete, restore, roll back.
    Write,
}

impl Action {
    /// Parses a lowercase action name.
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "read" => Some(Action::Read),
            "proxy" => Some(Action::Proxy),
            "list" => Some(Action::List),
            "write" => Some(Action::Write),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Proxy => "proxy",
            Action::List => "list",
            Action::Write => "write",
        }
    }
}

/// A path glob: `*` matches within one segment, `**` (a whole segment) any number of segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    segments: Vec<String>,
}

impl Glob {
    /// Parses and validates a glob.
    pub fn parse(s: &str) -> Result<Glob, String> {
        if s.is_empty() || s.len() > crate::paths::MAX_PATH_LEN {
            return Err("pattern is empty or too long".into());
        }
        let mut segments = Vec::new();
        for seg in s.split('/') {
            if seg.contains("**") && seg != "**" {
                return Err(format!("`**` must be a whole segment in {s:?}"));
            }
            let literal = seg.replace('*', "x");
            if seg != "**" && seg != "*" {
                crate::paths::validate(&literal)
                    .map_err(|_| format!("bad pattern segment {seg:?}"))?;
            }
            segments.push(seg.to_string());
        }
        Ok(Glob { segments })
    }

    /// The glob matching everything.
    pub fn everything() -> Glob {
        Glob {
            segments: vec!["**".into()],
        }
    }

    /// Does this glob match a concrete relative path?
    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        match_segments(&self.segments, &parts)
    }

    /// Is every path this glob could match also matched by `self`? Conservative:
    /// when unsure it answers no, so a narrowing check can only refuse too much.
    pub fn covers(&self, child: &Glob) -> bool {
        covers(&self.segments, &child.segments)
    }

    /// Does the glob match the path itself or anything below it? Used for listing.
    pub fn may_match_below(&self, prefix: &str) -> bool {
        let prefix = prefix.trim_end_matches('/');
        if prefix.is_empty() {
            return true;
        }
        let parts: Vec<&str> = prefix.split('/').collect();
        prefix_compatible(&self.segments, &parts)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segments.join("/"))
    }
}

fn segment_matches(pattern: &str, seg: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if !pattern.contains('*') {
        return pattern == seg;
    }
    // In-segment wildcard: classic `*` matching by pieces.
    let pieces: Vec<&str> = pattern.split('*').collect();
    let mut rest = seg;
    for (i, piece) in pieces.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(piece) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == pieces.len() - 1 {
            return rest.len() >= piece.len() && rest.ends_with(piece);
        } else {
            match rest.find(piece) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

fn match_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((p, rest)) => match path.split_first() {
            Some((s, path_rest)) => segment_matches(p, s) && match_segments(rest, path_rest),
            None => false,
        },
    }
}

fn prefix_compatible(pattern: &[String], prefix: &[&str]) -> bool {
    match (pattern.split_first(), prefix.split_first()) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some((p, _)), Some(_)) if p == "**" => true,
        (Some((p, rest)), Some((s, prefix_rest))) => {
            segment_matches(p, s) && prefix_compatible(rest, prefix_rest)
        }
    }
}

fn covers(parent: &[String], child: &[String]) -> bool {
    match (parent.split_first(), child.split_first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some((p, p_rest)), _) if p == "**" => {
            covers(p_rest, child) || (!child.is_empty() && covers(parent, &child[1..]))
        }
        (Some(_), None) => false,
        (Some((p, p_rest)), Some((c, c_rest))) => {
            let seg_ok = if c == "**" {
                false
            } else if c.contains('*') {
                p == "*" || p == c
            } else {
                segment_matches(p, c)
            };
            seg_ok && covers(p_rest, c_rest)
        }
    }
}

/// One permission: `secrets:<action|*>:<glob>`, the glob relative to the holder's
/// namespace, or absolute (a full path) when it starts with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `None` means every action.
    pub action: Option<Action>,
    /// The glob names full paths (it was written with a leading `/`).
    pub absolute: bool,
    /// Which paths.
    pub pattern: Glob,
}

impl Scope {
    /// What an agent key holds: every action on every path of its namespace, and on any
    /// full path (where grants still decide).
    pub fn full() -> Vec<Scope> {
        [false, true]
            .into_iter()
            .map(|absolute| Scope {
                action: None,
                absolute,
                pattern: Glob::everything(),
            })
            .collect()
    }

    /// Parses `secrets:read:production/openai/*`.
    pub fn parse(s: &str) -> Result<Scope, ScopeError> {
        let bad = |why: String| ScopeError(format!("{s:?}: {why}"));
        let mut parts = s.splitn(3, ':');
        let (Some(resource), Some(action), Some(pattern)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected `secrets:<action>:<pattern>`".into()));
        };
        if resource != "secrets" {
            return Err(bad(format!("unknown resource {resource:?}")));
        }
        let action = match action {
            "*" => None,
            a => Some(Action::parse(a).ok_or_else(|| bad(format!("unknown action {a:?}")))?),
        };
        let (absolute, pattern) = match pattern.strip_prefix('/') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        let pattern = Glob::parse(pattern).map_err(bad)?;
        Ok(Scope {
            action,
            absolute,
            pattern,
        })
    }

    /// Does this scope allow `action` on a path, given as relative to the holder's
    /// namespace (None when outside it) and as a full path?
    pub fn allows(&self, action: Action, relative: Option<&str>, full: &str) -> bool {
        let path = if self.absolute { Some(full) } else { relative };
        self.action.is_none_or(|a| a == action) && path.is_some_and(|p| self.pattern.matches(p))
    }

    /// Is `child` no wider than `self`?
    pub fn covers(&self, child: &Scope) -> bool {
        let action_ok = match (self.action, child.action) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        };
        action_ok && self.absolute == child.absolute && self.pattern.covers(&child.pattern)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = self.action.map_or("*", Action::as_str);
        let slash = if self.absolute { "/" } else { "" };
        write!(f, "secrets:{action}:{slash}{}", self.pattern)
    }
}

/// Does some scope in `set` allow the action on the path?
pub fn any_allows(set: &[Scope], action: Action, relative: Option<&str>, full: &str) -> bool {
    set.iter().any(|s| s.allows(action, relative, full))
}

/// Is every scope of `child` covered by some scope of `parent`?
pub fn set_covers(parent: &[Scope], child: &[Scope]) -> bool {
    child.iter().all(|c| parent.iter().any(|p| p.covers(c)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(x: &str) -> Scope {
        Scope::parse(x).unwrap()
    }

    #[test]
    fn parse_and_display_round_trip() {
        for x in [
            "secrets:read:production/openai/*",
            "secrets:*:**",
            "secrets:write:a/**/b",
            "secrets:read:/production/openai/*",
        ] {
            assert_eq!(s(x).to_string(), x);
        }
        for bad in [
            "read:x",
            "keys:read:x",
            "secrets:eat:x",
            "secrets:read:",
            "secrets:read:a/../b",
            "secrets:read:a**",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn glob_matching() {
        let g = Glob::parse("production/openai/*").unwrap();
        assert!(g.matches("production/openai/api-key"));
        assert!(!g.matches("production/openai/a/b"));
        assert!(!g.matches("production/anthropic/key"));
        let g = Glob::parse("production/**").unwrap();
        assert!(g.matches("production/a"));
        assert!(g.matches("production/a/b/c"));
        assert!(g.matches("production"));
        let g = Glob::parse("prod/api-*").unwrap();
        assert!(g.matches("prod/api-key"));
        assert!(!g.matches("prod/key-api"));
        let g = Glob::parse("a/**/z").unwrap();
        assert!(g.matches("a/z") && g.matches("a/b/c/z") && !g.matches("a/b/c"));
    }

    #[test]
    fn narrowing() {
        assert!(s("secrets:*:**").covers(&s("secrets:read:production/openai/*")));
        assert!(s("secrets:read:production/**").covers(&s("secrets:read:production/openai/*")));
        assert!(s("secrets:read:production/*").covers(&s("secrets:read:production/x")));
        assert!(s("secrets:read:production/*").covers(&s("secrets:read:production/api-*")));
        assert!(!s("secrets:read:production/*").covers(&s("secrets:read:production/**")));
        assert!(!s("secrets:read:production/*").covers(&s("secrets:write:production/x")));
        assert!(!s("secrets:read:production/*").covers(&s("secrets:*:production/x")));
        assert!(!s("secrets:read:production/openai/*").covers(&s("secrets:read:production/*")));
        assert!(!s("secrets:read:prod/api-*").covers(&s("secrets:read:prod/*")));
        assert!(s("secrets:read:prod/api-*").covers(&s("secrets:read:prod/api-key")));
        assert!(s("secrets:*:a/**").covers(&s("secrets:list:a/**/z")));
        assert!(set_covers(
            &[s("secrets:read:a/*"), s("secrets:list:**")],
            &[s("secrets:list:b/c"), s("secrets:read:a/b")]
        ));
        assert!(!set_covers(
            &[s("secrets:read:a/*")],
            &[s("secrets:read:a/b"), s("secrets:read:b/c")]
        ));
    }

    #[test]
    fn absolute_scopes() {
        let abs = s("secrets:read:/production/**");
        assert!(abs.allows(Action::Read, None, "production/x"));
        assert!(!abs.allows(
            Action::Read,
            Some("production/x"),
            "entities/a/production/x"
        ));
        assert!(!s("secrets:read:**").allows(Action::Read, None, "production/x"));
        let key = Scope::full();
        assert!(set_covers(&key, &[abs.clone(), s("secrets:list:a/*")]));
        assert!(
            !s("secrets:read:**").covers(&abs),
            "relative never covers absolute"
        );
    }

    #[test]
    fn listing_prefixes() {
        let g = Glob::parse("production/openai/*").unwrap();
        assert!(g.may_match_below("production"));
        assert!(g.may_match_below("production/openai/"));
        assert!(!g.may_match_below("staging"));
        assert!(Glob::everything().may_match_below("anything/at/all"));
    }
}
