//! Tenants and API keys.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};

use super::{
    Store,
    entities::{api_keys, tenants},
};
use crate::{
    error::{Error, Result},
    model::{ApiKeyInfo, Tenant, TenantId, new_id, now_ms},
};

impl Store {
    /// Returns the tenant with this name, creating it if needed.
    pub async fn ensure_tenant(&self, name: &str) -> Result<Tenant> {
        let txn = self.begin_write().await?;
        let tenant = ensure_tenant_in(&txn, name).await?;
        txn.commit().await?;
        Ok(tenant)
    }

    /// Stores a new API key's hash for the named tenant (created if needed).
    pub async fn create_api_key(&self, tenant_name: &str, key_hash: &str, key_prefix: &str) -> Result<ApiKeyInfo> {
        let txn = self.begin_write().await?;
        let tenant = ensure_tenant_in(&txn, tenant_name).await?;
        let row = api_keys::ActiveModel {
            id: Set(new_id()),
            tenant_id: Set(tenant.id.0.clone()),
            key_hash: Set(key_hash.to_owned()),
            key_prefix: Set(key_prefix.to_owned()),
            created_at: Set(now_ms()),
            revoked_at: Set(None),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(key_info(row, &tenant.name))
    }

    /// The tenant of an active (not revoked) key with this hash.
    pub async fn tenant_for_key_hash(&self, key_hash: &str) -> Result<Option<TenantId>> {
        let row = api_keys::Entity::find()
            .filter(api_keys::Column::KeyHash.eq(key_hash))
            .filter(api_keys::Column::RevokedAt.is_null())
            .one(self.reader())
            .await?;
        Ok(row.map(|k| TenantId(k.tenant_id)))
    }

    /// Number of active keys; zero means the server runs in single-tenant loopback mode.
    pub async fn active_key_count(&self) -> Result<u64> {
        Ok(api_keys::Entity::find().filter(api_keys::Column::RevokedAt.is_null()).count(self.reader()).await?)
    }

    /// Every key record, oldest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        let keys = api_keys::Entity::find().order_by_asc(api_keys::Column::CreatedAt).all(self.reader()).await?;
        let names: std::collections::HashMap<String, String> =
            tenants::Entity::find().all(self.reader()).await?.into_iter().map(|t| (t.id, t.name)).collect();
        Ok(keys
            .into_iter()
            .map(|k| {
                let name = names.get(&k.tenant_id).cloned().unwrap_or_default();
                key_info(k, &name)
            })
            .collect())
    }

    /// Revokes the key with this id or prefix; false when none matched.
    pub async fn revoke_api_key(&self, id_or_prefix: &str) -> Result<bool> {
        let txn = self.begin_write().await?;
        let matches = api_keys::Entity::find()
            .filter(
                sea_orm::Condition::any()
                    .add(api_keys::Column::Id.eq(id_or_prefix))
                    .add(api_keys::Column::KeyPrefix.eq(id_or_prefix)),
            )
            .filter(api_keys::Column::RevokedAt.is_null())
            .all(&txn)
            .await?;
        if matches.len() > 1 {
            return Err(Error::invalid("key", format!("{id_or_prefix} matches several keys; use the key id")));
        }
        let Some(key) = matches.into_iter().next() else {
            return Ok(false);
        };
        let mut active: api_keys::ActiveModel = key.into();
        active.revoked_at = Set(Some(now_ms()));
        active.update(&txn).await?;
        txn.commit().await?;
        Ok(true)
    }
}

async fn ensure_tenant_in(conn: &impl ConnectionTrait, name: &str) -> Result<Tenant> {
    if let Some(row) = tenants::Entity::find().filter(tenants::Column::Name.eq(name)).one(conn).await? {
        return Ok(tenant(row));
    }
    let row = tenants::ActiveModel { id: Set(new_id()), name: Set(name.to_owned()), created_at: Set(now_ms()) }
        .insert(conn)
        .await?;
    Ok(tenant(row))
}

fn tenant(row: tenants::Model) -> Tenant {
    Tenant { id: TenantId(row.id), name: row.name, created_at: row.created_at }
}

fn key_info(row: api_keys::Model, tenant_name: &str) -> ApiKeyInfo {
    ApiKeyInfo {
        id: row.id,
        tenant_id: TenantId(row.tenant_id),
        tenant_name: tenant_name.to_owned(),
        prefix: row.key_prefix,
        created_at: row.created_at,
        revoked_at: row.revoked_at,
    }
}
