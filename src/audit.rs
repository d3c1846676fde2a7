//! Audit events and their hash chain (pure). Each event records who did what to which
//! resource, from where, with what outcome — never a secret value — and carries the SHA-256
//! of the previous event, so any gap or edit in the stored log is detectable.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    /// `admin`, `agent`, `token`, `system` or `anonymous`.
    #[serde(rename = "actor_type")]
    pub kind: String,
    /// The admin token id, agent id or token id.
    #[serde(rename = "actor_id")]
    pub id: String,
    /// The agent whose credential acted (its key or one of its scoped tokens), so consumers
    /// attribute events without parsing `actor_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

impl Actor {
    /// An actor that is not an agent's credential.
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Actor {
        Actor {
            kind: kind.into(),
            id: id.into(),
            agent_id: None,
        }
    }

    /// The daemon itself (jobs, start-up).
    pub fn system() -> Actor {
        Actor::new("system", "latchkey")
    }

    /// Someone who did not authenticate.
    pub fn anonymous() -> Actor {
        Actor::new("anonymous", "")
    }
}

/// An event before it is numbered and chained.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Event type, e.g. `secret.created`.
    pub event: &'static str,
    /// Who acted.
    pub actor: Actor,
    /// Namespace of the resource (may be empty).
    pub namespace: String,
    /// Path or id of the resource.
    pub resource_path: String,
    /// What was attempted (`write`, `read`, `mint`, …).
    pub action: String,
    /// `success`, `denied` or `failure`.
    pub outcome: &'static str,
    /// Client address, when the event comes from a request.
    pub ip: Option<String>,
    /// Event-specific facts (never a value).
    pub details: serde_json::Value,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// Unique id (ULID).
    pub id: String,
    /// When it happened (RFC 3339, UTC).
    pub timestamp: String,
    /// Event type, e.g. `secret.created`.
    pub event: String,
    /// Who acted.
    #[serde(flatten)]
    pub actor: Actor,
    /// Namespace of the resource.
    pub namespace: String,
    /// Path or id of the resource.
    pub resource_path: String,
    /// What was attempted.
    pub action: String,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    /// Client address.
    pub ip: Option<String>,
    /// Event-specific facts.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// Hash of the previous event.
    pub prev_hash: String,
    /// SHA-256 of this event's fields (hex).
    pub hash: String,
}

impl Event {
    /// Numbers and chains a draft.
    pub fn from_draft(d: Draft, seq: u64, prev_hash: String, timestamp: String) -> Event {
        let mut e = Event {
            seq,
            id: crate::util::new_id(),
            timestamp,
            event: d.event.to_string(),
            actor: d.actor,
            namespace: d.namespace,
            resource_path: d.resource_path,
            action: d.action,
            outcome: d.outcome.to_string(),
            ip: d.ip,
            details: d.details,
            prev_hash,
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        e
    }

    /// The hash over every field but `hash` itself, in a fixed order with length prefixes.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        let details = serde_json::to_string(&self.details).unwrap_or_default();
        let seq = self.seq.to_string();
        let fields: [&str; 12] = [
            "latchkey-audit-v1",
            &seq,
            &self.id,
            &self.timestamp,
            &self.event,
            &self.actor.kind,
            &self.actor.id,
            &self.namespace,
            &self.resource_path,
            &self.action,
            &self.outcome,
            self.ip.as_deref().unwrap_or("-"),
        ];
        // The agent id joined the event later: hashed only when present, so the events
        // written before it verify unchanged.
        let agent = self.actor.agent_id.as_ref().map(|a| format!("agent:{a}"));
        for f in fields
            .iter()
            .chain([&details.as_str(), &self.prev_hash.as_str()])
            .chain(agent.as_deref().as_ref())
        {
            h.update((f.len() as u64).to_be_bytes());
            h.update(f.as_bytes());
        }
        crate::util::hex(&h.finalize())
    }
}

/// Where a chain walk found a problem.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Break {
    /// The first seq that does not verify.
    pub seq: u64,
    /// What is wrong there.
    pub reason: String,
}

/// Incremental verifier: feed events in seq order.
pub struct ChainVerifier {
    expected_seq: u64,
    prev_hash: String,
}

impl ChainVerifier {
    /// Starts at seq `first` expecting `prev_hash` (GENESIS at the start of the log).
    pub fn new(first: u64, prev_hash: String) -> ChainVerifier {
        ChainVerifier {
            expected_seq: first,
            prev_hash,
        }
    }

    /// Checks the next event.
    pub fn check(&mut self, stored_seq: u64, e: &Event) -> Result<(), Break> {
        let brk = |reason: String| {
            Err(Break {
                seq: self.expected_seq,
                reason,
            })
        };
        if stored_seq != self.expected_seq || e.seq != stored_seq {
            return brk(format!(
                "expected seq {}, found {} (stored under {stored_seq})",
                self.expected_seq, e.seq
            ));
        }
        if e.prev_hash != self.prev_hash {
            return brk("prev_hash does not match the previous event's hash".into());
        }
        if e.compute_hash() != e.hash {
            return brk("event content does not match its hash".into());
        }
        self.prev_hash = e.hash.clone();
        self.expected_seq += 1;
        Ok(())
    }
}

/// Does an event type match a pattern such as `secret.*`, `*` or `auth.failed`?
pub fn type_matches(pattern: &str, event: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => event.starts_with(prefix),
        None => pattern == event,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_id_is_chained_when_present_and_old_events_verify_unchanged() {
        let e = Event::from_draft(draft(1), 1, GENESIS.into(), "2026-01-01T00:00:00Z".into());
        // An event stored before agent_id existed has no such field; it reads as None and
        // hashes as it did.
        let mut old = serde_json::to_value(&e).unwrap();
        assert!(old.get("agent_id").is_none());
        old.as_object_mut().unwrap().remove("agent_id");
        let back: Event = serde_json::from_value(old).unwrap();
        assert_eq!(back.compute_hash(), e.hash);
        let mut by_agent = e.clone();
        by_agent.actor.agent_id = Some("01agent".into());
        assert_ne!(
            by_agent.compute_hash(),
            e.hash,
            "agent_id is covered by the hash"
        );
    }

    fn draft(n: u32) -> Draft {
        Draft {
            event: "secret.created",
            actor: Actor::system(),
            namespace: "production".into(),
            resource_path: format!("production/k{n}"),
            action: "write".into(),
            outcome: "success",
            ip: None,
            details: serde_json::json!({"version": n}),
        }
    }

    fn chain(n: u32) -> Vec<Event> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|i| {
                let e = Event::from_draft(
                    draft(i),
                    i as u64,
                    prev.clone(),
                    "2026-01-01T00:00:00Z".into(),
                );
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn chain_verifies_and_detects_edits() {
        let events = chain(5);
        let mut v = ChainVerifier::new(1, GENESIS.into());
        for e in &events {
            v.check(e.seq, e).unwrap();
        }
        let mut edited = events.clone();
        edited[2].outcome = "denied".into();
        let mut v = ChainVerifier::new(1, GENESIS.into());
        let err = edited.iter().find_map(|e| v.check(e.seq, e).err()).unwrap();
        assert_eq!(err.seq, 3);
        // A removed event shows as a seq gap.
        let mut v = ChainVerifier::new(1, GENESIS.into());
        let gap: Vec<_> = events.iter().filter(|e| e.seq != 2).collect();
        let err = gap.iter().find_map(|e| v.check(e.seq, e).err()).unwrap();
        assert_eq!(err.seq, 2);
    }

    #[test]
    fn patterns() {
        assert!(type_matches("*", "secret.created"));
        assert!(type_matches("secret.*", "secret.created"));
        assert!(!type_matches("secret.*", "agent.created"));
        assert!(type_matches("auth.failed", "auth.failed"));
    }
}
