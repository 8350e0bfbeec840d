//! API keys and the tenant a request acts for.
//!
//! A key is `brk_` followed by 43 base64url characters (256 random bits). The
//! store keeps only its SHA-256, so a database leak does not leak keys; a fast
//! hash is enough because the keys are random, not passwords. Verified keys
//! are cached for `auth_cache_ttl_ms` (unknown keys for at most 5 s) so
//! authentication does not cost a query per RPC.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use quick_cache::sync::Cache;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{
    error::{Error, Reason, Result},
    model::{Caller, TenantId},
    store::Store,
};

/// Every key starts with this, so leaked keys are easy to find in code and logs.
pub const KEY_PREFIX: &str = "brk_";
/// Characters of a key shown in listings (the prefix plus 8 more).
const SHOWN_CHARS: usize = KEY_PREFIX.len() + 8;
/// How long an unknown key stays known-bad in the cache.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// A freshly generated key: shown once, then only its hash is kept.
pub struct NewKey {
    /// The key to give to the client.
    pub key: String,
    /// SHA-256 of the key, hex.
    pub hash: String,
    /// The first characters, to recognise the key in listings.
    pub prefix: String,
}

/// Generates a random key.
pub fn generate_key() -> NewKey {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewKey { hash: hash_key(&key), prefix: key[..SHOWN_CHARS].to_owned(), key }
}

/// SHA-256 of a key, hex.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Resolves the `authorization` metadata of a request to a tenant.
pub struct Authenticator {
    store: Store,
    cache: Cache<String, (Option<Caller>, Instant)>,
    ttl: Duration,
    implicit_tenant: Option<TenantId>,
}

impl Authenticator {
    /// `implicit_tenant` serves requests without a key; set only when no keys exist (loopback mode).
    pub fn new(store: Store, ttl: Duration, implicit_tenant: Option<TenantId>) -> Self {
        Self { store, cache: Cache::new(10_000), ttl, implicit_tenant }
    }

    /// True when requests without a key are served as the implicit tenant.
    pub fn is_open(&self) -> bool {
        self.implicit_tenant.is_some()
    }

    /// Who an `authorization` header value (`Bearer KEY`) acts as: a tenant, or an admin.
    ///
    /// A missing header is the implicit tenant in loopback mode and
    /// API_KEY_MISSING otherwise; a present but wrong key is always
    /// API_KEY_INVALID, so a client never silently lands in the wrong tenant.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller> {
        let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
            return self
                .implicit_tenant
                .clone()
                .map(Caller::Tenant)
                .ok_or_else(|| Error::new(Reason::ApiKeyMissing, "send 'authorization: Bearer <API key>'"));
        };
        let invalid = || Error::new(Reason::ApiKeyInvalid, "the API key is unknown, revoked or malformed");
        let key = match header.split_once(' ') {
            Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
            _ => return Err(invalid()),
        };
        if !key.starts_with(KEY_PREFIX) || key.len() > 128 {
            return Err(invalid());
        }
        let hash = hash_key(key);
        if let Some((caller, at)) = self.cache.get(&hash) {
            let fresh = match caller {
                Some(_) => at.elapsed() < self.ttl,
                None => at.elapsed() < NEGATIVE_TTL.min(self.ttl),
            };
            if fresh {
                return caller.ok_or_else(invalid);
            }
        }
        let caller = self.store.caller_for_key_hash(&hash).await?;
        self.cache.insert(hash, (caller.clone(), Instant::now()));
        caller.ok_or_else(invalid)
    }

    /// Forgets every cached key of `tenant` on this replica (after its keys were deleted);
    /// other replicas stop accepting them within `auth_cache_ttl_ms`.
    pub fn forget_tenant(&self, tenant: &TenantId) {
        self.cache.retain(|_, (caller, _)| caller.as_ref() != Some(&Caller::Tenant(tenant.clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hashed() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a.key, b.key);
        assert!(a.key.starts_with(KEY_PREFIX));
        assert_eq!(a.key.len(), KEY_PREFIX.len() + 43);
        assert_eq!(a.hash, hash_key(&a.key));
        assert_eq!(a.hash.len(), 64);
        assert!(a.key.starts_with(&a.prefix));
    }
}
