//! Claiming a global name: first claim wins, the loser gets `Conflict`, never silence.
//!
//! Steps: (1) a live holder in this node's directory view, or (2) an answer on the name's
//! whois subject (NATS says "no responders" at once when nobody serves it), is a conflict;
//! (3) otherwise the node subscribes, announces its claim `(wall-clock time, node)` on the
//! directory subject and listens for one claim window: if a smaller claim of the same name
//! arrived, it withdraws and reports the conflict. Every node orders claims the same way, so
//! of two racing claims exactly one stands (given clocks closer than the claim window).

use super::{dir_subject_of, now_ns, whois_subject, Bridge, Held};
use crate::directory::DirMsg;
use crate::error::ClusterError;
use crate::inbound::serve_name;
use crate::link::Done;
use crate::serve::Serve;
use crate::wire;
use std::sync::Arc;
use std::time::Instant;

impl Bridge {
    /// Claims `name` for `serve`; `done` gets the outcome on a bridge agent's shard.
    pub(super) async fn claim(&mut self, name: String, serve: Arc<dyn Serve>, done: Done<Result<(), ClusterError>>) {
        let outcome = self.try_claim(&name, serve).await;
        self.link.run(Box::new(move |ctx| done(outcome, ctx)));
    }

    async fn try_claim(&mut self, name: &str, serve: Arc<dyn Serve>) -> Result<(), ClusterError> {
        let me = self.link.config.node.clone();
        let conflict = |node: String| ClusterError::Conflict { name: name.to_owned(), node };
        if self.held.contains_key(name) {
            return Err(conflict(me));
        }
        if let Some(node) = self.link.owner(name) {
            return Err(conflict(node));
        }
        match self.client.request(whois_subject(&self.link, name), bytes::Bytes::new()).await {
            Ok(answer) => return Err(conflict(String::from_utf8_lossy(&answer.payload).into_owned())),
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {}
            Err(_) => return Err(ClusterError::Unreachable(format!("the directory (claiming '{name}')"))),
        }
        let unreachable = || ClusterError::Unreachable(format!("the directory (claiming '{name}')"));
        let messages = self.client.subscribe(self.link.name_subject(name)).await.map_err(|_| unreachable())?;
        let whois = self.client.subscribe(whois_subject(&self.link, name)).await.map_err(|_| unreachable())?;
        let at_ns = now_ns();
        let claim = DirMsg::Claim { node: me.clone(), name: name.to_owned(), at_ns };
        if let Ok(mut dir) = self.link.dir.lock() {
            dir.apply(claim.clone(), Instant::now());
        }
        let body = wire::encode(&claim)?;
        self.client.publish(dir_subject_of(&self.link), body.into()).await.map_err(|_| unreachable())?;
        self.client.flush().await.map_err(|_| unreachable())?;
        tokio::time::sleep(self.link.config.claim_window).await;
        let winner = {
            let mut dir = self.link.dir.lock().map_err(|_| ClusterError::Stopped)?;
            let winner = dir.best_claim(name).cloned();
            dir.settle_claim(name);
            match winner {
                Some((t, node)) if (t, node.as_str()) < (at_ns, me.as_str()) => Some(node),
                _ => {
                    dir.hold(&me, name, Instant::now());
                    None
                }
            }
        };
        if let Some(node) = winner {
            // Dropping the subscriptions unsubscribes: the earlier claim stands alone.
            return Err(conflict(node));
        }
        let task = tokio::spawn(serve_name(self.link.clone(), self.client.clone(), serve, messages, whois));
        self.held.insert(name.to_owned(), Held { task });
        self.heartbeat().await;
        Ok(())
    }
}
