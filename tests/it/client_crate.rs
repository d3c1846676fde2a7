//! The typed client crate (`latchkey-client`, what the CLI and `latchkey mcp` use) against the
//! daemon: an agent's whole approval flow — a pending lease, the approver's vote, the long-poll
//! that wakes, the one use, the revocation — a one-call read, a scoped token, and the API's
//! errors as typed values.

use latchkey_client::{
    Client, Decision, Error, LeaseRequest, LeaseState, MintToken, PutSecret, ReadOutcome,
};
use secrecy::{ExposeSecret, SecretString};

use crate::lease_world::world;

fn typed(base: &str, token: &str) -> Client {
    Client::new(base, token).unwrap()
}

#[tokio::test]
async fn an_agent_waits_for_a_human_through_the_client_crate() {
    let w = world().await;
    let admin = typed(&w.d.base, &w.d.admin);
    let put = PutSecret {
        value: Some(SecretString::from("crate-value-5521")),
        sensitivity: Some("sensitive".into()),
        ..Default::default()
    };
    admin
        .put_secret("production/crate/key", &put)
        .await
        .unwrap();
    let (_, key) = w.d.agent("crate-agent", 1).await;
    let agent = typed(&w.d.base, &key);
    assert!(agent.whoami().await.unwrap().is_agent());

    // Tier 1 × sensitive: the lease waits for an approver.
    let lease = agent
        .request_lease(&LeaseRequest {
            path: "/production/crate/key".into(),
            action: "read".into(),
            reason: "typed client".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(lease.state, LeaseState::Pending);
    let approval = lease.approval_id.clone().unwrap();
    // Using it before the decision is a typed API error.
    match agent.use_lease(&lease.id).await {
        Err(Error::Api(e)) => assert_eq!(
            (e.status, e.code.as_deref()),
            (409, Some("conflict")),
            "{e}"
        ),
        other => panic!("a pending lease cannot be used: {other:?}"),
    }
    // The long-poll wakes when the approver votes.
    let poll = {
        let agent = agent.clone();
        let id = lease.id.clone();
        tokio::spawn(async move { agent.lease(&id, Some((30, LeaseState::Pending))).await })
    };
    let alice = typed(&w.d.base, &w.alice);
    let listed = alice.list_approvals(false).await.unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == approval.as_str())
    );
    alice
        .vote(&approval, Decision::Approve, Some("go"))
        .await
        .unwrap();
    let woke = poll.await.unwrap().unwrap();
    assert_eq!(woke.state, LeaseState::Active);
    let value = agent.use_lease(&lease.id).await.unwrap();
    assert_eq!(value.value.unwrap().expose_secret(), "crate-value-5521");
    // A second vote is refused with the API's code.
    match alice.vote(&approval, Decision::Deny, None).await {
        Err(Error::Api(e)) => {
            assert_eq!(e.status, 409);
            assert_eq!(e.code.as_deref(), Some("already_decided"));
        }
        other => panic!("a decided approval takes no vote: {other:?}"),
    }

    // Inside its namespace the one-call read answers the value; a scoped token reads too.
    agent
        .put_secret(
            "own/key",
            &PutSecret {
                value: Some(SecretString::from("own-value-8810")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    match agent
        .read_secret("own/key", "one call", None)
        .await
        .unwrap()
    {
        ReadOutcome::Value(v) => assert_eq!(v.value.unwrap().expose_secret(), "own-value-8810"),
        ReadOutcome::Pending(l) => panic!("standard in its own namespace is instant: {l:?}"),
    }
    let minted = agent
        .mint_token(&MintToken {
            scopes: vec!["secrets:read:own/**".into()],
            ttl_seconds: Some(300),
            description: "sub-agent".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let sub = agent.with_token(minted.token.expose_secret());
    let sub_lease = sub
        .request_lease(&LeaseRequest {
            path: "own/key".into(),
            action: "read".into(),
            reason: "sub".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sub_lease.state, LeaseState::Active);
    let revoked = sub.revoke_lease(&sub_lease.id, Some("done")).await.unwrap();
    assert_eq!(revoked.state, LeaseState::Revoked);
    // The scoped token cannot write: 403 with the API's code.
    match sub
        .put_secret(
            "own/other",
            &PutSecret {
                value: Some(SecretString::from("x")),
                ..Default::default()
            },
        )
        .await
    {
        Err(Error::Api(e)) => assert_eq!(e.status, 403, "{e}"),
        other => panic!("a read-only token cannot write: {other:?}"),
    }
    // Nothing answers at a closed port: a typed transport error naming the address.
    let gone = typed("http://127.0.0.1:9", &key);
    assert!(matches!(
        gone.whoami().await,
        Err(Error::Unreachable { .. })
    ));
    w.d.stop().await;
}
