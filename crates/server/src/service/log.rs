//! The key directory's transparency log, as the service serves it: tree heads signed by
//! the HSM's log key on demand (one per log size, the first stored wins, so several
//! processes agree), and the proofs built from the store's complete subtrees with
//! `sealpost_transparency::tree`.

use std::collections::HashMap;

use sealpost_proto as proto;
use sealpost_proto::Bytes;
use sealpost_transparency::SignedHead;
use sealpost_transparency::tree::{
    self, Hash, NodeId, consistency_ranges, hash_ranges, inclusion_ranges, nodes_for, root_nodes,
};
use sealpost_transparency::wire::{hashes_to_wire, head_to_wire};

use super::{Service, blocking, email};
use crate::error::ServerError;
use crate::store::DirectoryKey;

impl Service {
    /// The log's public key (Ed25519), which clients pin.
    pub fn log_public_key(&self) -> [u8; 32] {
        self.log_key
    }

    /// A signed head for the log as it is now: the stored one if the log has not grown
    /// since, else a new one signed by the HSM (and stored, unless another process
    /// stored one of the same size first: then that one).
    pub async fn log_head(&self) -> Result<SignedHead, ServerError> {
        let size = self.store.log_size().await?;
        if let Some(head) = self.store.latest_log_head().await?
            && head.size >= size
        {
            return Ok(head);
        }
        let root = self.root(size).await?;
        let time = u64::try_from(self.clock.now()).unwrap_or(0);
        let message = SignedHead::signed_bytes(size, time, &root);
        let signature = blocking(&self.hsm, move |h| h.log_sign(&message)).await?;
        let head = SignedHead {
            size,
            time,
            root,
            signature,
        };
        Ok(self.store.put_log_head(head).await?)
    }

    async fn hashes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>, ServerError> {
        let found = self.store.log_nodes(ids).await?;
        Ok(ids.iter().copied().zip(found).collect())
    }

    async fn ranges(&self, ranges: &[(u64, u64)]) -> Result<Vec<Hash>, ServerError> {
        let nodes = self.hashes(&nodes_for(ranges)).await?;
        hash_ranges(ranges, |id| nodes.get(id).copied())
            .ok_or_else(|| ServerError::internal("log", "a subtree hash is missing"))
    }

    async fn root(&self, size: u64) -> Result<Hash, ServerError> {
        let ids = root_nodes(size);
        let nodes = self.hashes(&ids).await?;
        let hashes: Vec<Hash> = ids.iter().filter_map(|id| nodes.get(id).copied()).collect();
        Ok(tree::fold(&hashes).unwrap_or_else(tree::empty_root))
    }

    async fn consistency(
        &self,
        from: u64,
        head: &SignedHead,
    ) -> Result<Option<proto::ConsistencyProof>, ServerError> {
        if from > head.size {
            return Ok(None);
        }
        let proof = self.ranges(&consistency_ranges(from, head.size)).await?;
        Ok(Some(proto::ConsistencyProof {
            from,
            to: head.size,
            proof: hashes_to_wire(&proof),
        }))
    }

    /// A directory answer with its proof: the entry, its inclusion proof against the
    /// current head, and the consistency proof from `known`.
    pub(super) async fn proven_entry(
        &self,
        key: DirectoryKey,
        known: Option<u64>,
    ) -> Result<proto::DirectoryEntry, ServerError> {
        let head = self.log_head().await?;
        let entries = self
            .store
            .log_entries(key.log_index, key.log_index.saturating_add(1))
            .await?;
        let entry = entries
            .into_iter()
            .next()
            .ok_or_else(|| ServerError::internal("log", "a published key has no entry"))?;
        let inclusion = self
            .ranges(&inclusion_ranges(key.log_index, head.size))
            .await?;
        let consistency = match known {
            Some(from) => self.consistency(from, &head).await?,
            None => None,
        };
        Ok(proto::DirectoryEntry {
            address: email(&key.address)?,
            cert: Bytes(key.cert),
            published_at: key.published_at,
            proof: proto::KeyProof {
                index: key.log_index,
                entry: Bytes(entry),
                head: head_to_wire(&head),
                inclusion: hashes_to_wire(&inclusion),
                consistency,
            },
        })
    }

    /// `GET /v1/directory/log`.
    pub async fn log_info(&self) -> Result<proto::LogInfo, ServerError> {
        Ok(proto::LogInfo {
            algorithm: "ed25519".into(),
            public_key: Bytes(self.log_key.to_vec()),
            head: head_to_wire(&self.log_head().await?),
        })
    }

    /// `GET /v1/directory/log/consistency?from=N&to=M`: `to` must be a size with a
    /// signed head (any head the server ever gave out), `from` at most `to`.
    pub async fn log_consistency(
        &self,
        from: u64,
        to: u64,
    ) -> Result<proto::ConsistencyProof, ServerError> {
        let size = self.store.log_size().await?;
        if from > to || to > size {
            return Err(ServerError::bad_request(
                "bad_log_range",
                format!("need from <= to <= {size} (the log's size)"),
            ));
        }
        let proof = self.ranges(&consistency_ranges(from, to)).await?;
        Ok(proto::ConsistencyProof {
            from,
            to,
            proof: hashes_to_wire(&proof),
        })
    }

    /// `GET /v1/directory/log/entries?start=N`.
    pub async fn log_entries(&self, start: u64) -> Result<proto::LogEntries, ServerError> {
        let head = self.log_head().await?;
        if start > head.size {
            return Err(ServerError::bad_request(
                "bad_log_range",
                format!("start must be at most {} (the log's size)", head.size),
            ));
        }
        let end = head
            .size
            .min(start.saturating_add(proto::transparency::MAX_ENTRIES_PER_PAGE));
        let entries = self.store.log_entries(start, end).await?;
        let ids = root_nodes(start);
        let nodes = self.hashes(&ids).await?;
        let frontier: Vec<Hash> = ids.iter().filter_map(|id| nodes.get(id).copied()).collect();
        Ok(proto::LogEntries {
            start,
            frontier: hashes_to_wire(&frontier),
            entries: entries.into_iter().map(Bytes).collect(),
            head: head_to_wire(&head),
        })
    }

    /// `GET /v1/directory/log/heads?after=N`.
    pub async fn log_heads(&self, after: u64) -> Result<proto::LogHeads, ServerError> {
        let heads = self
            .store
            .log_heads(after, proto::transparency::MAX_HEADS_PER_PAGE)
            .await?;
        Ok(proto::LogHeads {
            heads: heads.iter().map(head_to_wire).collect(),
        })
    }
}
