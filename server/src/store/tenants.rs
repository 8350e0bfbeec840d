//! Tenants and API keys.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, sea_query::Expr,
};

use super::{
    Store, WriteTx,
    entities::{admin_keys, api_keys, projects, tenants},
};
use crate::{
    error::{Error, Reason, Result},
    model::{ApiKeyInfo, Caller, Tenant, TenantId, new_id, now_ms},
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

    /// Stores a new admin key's hash.
    pub async fn create_admin_key(&self, key_hash: &str, key_prefix: &str) -> Result<ApiKeyInfo> {
        let txn = self.begin_write().await?;
        let row = admin_keys::ActiveModel {
            id: Set(new_id()),
            key_hash: Set(key_hash.to_owned()),
            key_prefix: Set(key_prefix.to_owned()),
            created_at: Set(now_ms()),
            revoked_at: Set(None),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(admin_key_info(row))
    }

    /// Who an active (not revoked) key with this hash acts as: a tenant, or an admin.
    pub async fn caller_for_key_hash(&self, key_hash: &str) -> Result<Option<Caller>> {
        let row = api_keys::Entity::find()
            .filter(api_keys::Column::KeyHash.eq(key_hash))
            .filter(api_keys::Column::RevokedAt.is_null())
            .one(self.reader())
            .await?;
        if let Some(key) = row {
            return Ok(Some(Caller::Tenant(TenantId(key.tenant_id))));
        }
        let admin = admin_keys::Entity::find()
            .filter(admin_keys::Column::KeyHash.eq(key_hash))
            .filter(admin_keys::Column::RevokedAt.is_null())
            .one(self.reader())
            .await?;
        Ok(admin.map(|_| Caller::Admin))
    }

    /// Number of active keys, tenant and admin; zero means the server runs in
    /// single-tenant loopback mode.
    pub async fn active_key_count(&self) -> Result<u64> {
        let tenant_keys = api_keys::Entity::find().filter(api_keys::Column::RevokedAt.is_null()).count(self.reader());
        let admin_keys =
            admin_keys::Entity::find().filter(admin_keys::Column::RevokedAt.is_null()).count(self.reader());
        Ok(tenant_keys.await? + admin_keys.await?)
    }

    /// Every key record, tenant keys then admin keys, oldest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        let keys = api_keys::Entity::find().order_by_asc(api_keys::Column::CreatedAt).all(self.reader()).await?;
        let names: std::collections::HashMap<String, String> =
            tenants::Entity::find().all(self.reader()).await?.into_iter().map(|t| (t.id, t.name)).collect();
        let mut out: Vec<ApiKeyInfo> = keys
            .into_iter()
            .map(|k| {
                let name = names.get(&k.tenant_id).cloned().unwrap_or_default();
                key_info(k, &name)
            })
            .collect();
        let admin = admin_keys::Entity::find().order_by_asc(admin_keys::Column::CreatedAt).all(self.reader()).await?;
        out.extend(admin.into_iter().map(admin_key_info));
        Ok(out)
    }

    /// The tenant with this name; TENANT_NOT_FOUND if there is none.
    pub async fn tenant_named(&self, name: &str) -> Result<TenantId> {
        let row = tenants::Entity::find().filter(tenants::Column::Name.eq(name)).one(self.reader()).await?;
        row.map(|t| TenantId(t.id))
            .ok_or_else(|| Error::new(Reason::TenantNotFound, format!("no tenant named {name}")).with_field("tenant"))
    }

    /// Every project of the tenant, deleted ones not yet removed included.
    pub async fn tenant_project_ids(&self, tenant: &TenantId) -> Result<Vec<String>> {
        let ids = projects::Entity::find()
            .select_only()
            .column(projects::Column::Id)
            .filter(projects::Column::TenantId.eq(tenant.as_str()))
            .into_tuple()
            .all(self.reader())
            .await?;
        Ok(ids)
    }

    /// Deletes the tenant's API keys (revoked ones too); returns how many.
    pub async fn delete_tenant_keys(&self, tenant: &TenantId) -> Result<u64> {
        let txn = self.begin_write().await?;
        let deleted =
            api_keys::Entity::delete_many().filter(api_keys::Column::TenantId.eq(tenant.as_str())).exec(&txn).await?;
        txn.commit().await?;
        Ok(deleted.rows_affected)
    }

    /// Deletes the tenant row; its foreign keys cascade over anything of the tenant left.
    pub async fn remove_tenant(&self, tenant: &TenantId) -> Result<()> {
        let txn = self.begin_write().await?;
        tenants::Entity::delete_many().filter(tenants::Column::Id.eq(tenant.as_str())).exec(&txn).await?;
        txn.commit().await
    }

    /// Revokes the key (tenant or admin) with this id or prefix; false when none matched.
    pub async fn revoke_api_key(&self, id_or_prefix: &str) -> Result<bool> {
        let txn = self.begin_write().await?;
        use {admin_keys as admin, api_keys as tenant};
        let revoked = revoke_matching::<tenant::Entity>(
            &txn,
            [tenant::Column::Id, tenant::Column::KeyPrefix, tenant::Column::RevokedAt],
            id_or_prefix,
        )
        .await?
            || revoke_matching::<admin::Entity>(
                &txn,
                [admin::Column::Id, admin::Column::KeyPrefix, admin::Column::RevokedAt],
                id_or_prefix,
            )
            .await?;
        if revoked {
            txn.commit().await?;
        }
        Ok(revoked)
    }
}

/// Revokes the one active key of `E` whose id or prefix is `key` (columns: id, prefix,
/// revoked_at); false when none is, INVALID_FIELD when several are.
async fn revoke_matching<E: EntityTrait>(
    txn: &WriteTx,
    [id, prefix, revoked]: [E::Column; 3],
    key: &str,
) -> Result<bool>
where
    E::Model: Sync,
{
    let matching = || Condition::all().add(Condition::any().add(id.eq(key)).add(prefix.eq(key))).add(revoked.is_null());
    match E::find().filter(matching()).count(txn).await? {
        0 => Ok(false),
        1 => {
            E::update_many().col_expr(revoked, Expr::value(now_ms())).filter(matching()).exec(txn).await?;
            Ok(true)
        }
        _ => Err(Error::invalid("key", format!("{key} matches several keys; use the key id"))),
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
        admin: false,
    }
}

fn admin_key_info(row: admin_keys::Model) -> ApiKeyInfo {
    ApiKeyInfo {
        id: row.id,
        tenant_id: TenantId(String::new()),
        tenant_name: String::new(),
        prefix: row.key_prefix,
        created_at: row.created_at,
        revoked_at: row.revoked_at,
        admin: true,
    }
}
