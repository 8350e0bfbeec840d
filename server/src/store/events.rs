//! The event outbox's queries. Cursors are allocated per project by
//! incrementing `projects.event_cursor` inside the writing transaction: the
//! increment locks the project row until commit, so cursors of a project are
//! committed in order and a reader that sees cursor N has every cursor below N.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, Query},
};

use super::{
    Backend, Store, WriteTx,
    entities::{events, projects},
};
use crate::{
    error::{Error, Result},
    model::{Event, EventPayload, EventType, NewEvent, TenantId, now_ms},
};

/// PostgreSQL channel carrying "project_id:cursor" for every committed event batch.
pub const EVENTS_CHANNEL: &str = "brain_events";

impl WriteTx {
    /// Appends events to the project's log inside the caller's transaction and
    /// returns them with their cursors. Call it last in the transaction: the
    /// events' time is taken here and stands for the commit time.
    pub async fn append_events(&self, tenant: &TenantId, project_id: &str, new: &[NewEvent]) -> Result<Vec<Event>> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let count = new.len() as i64;
        let bump = Query::update()
            .table(projects::Entity)
            .value(
                projects::Column::EventCursor,
                sea_orm::sea_query::ExprTrait::add(Expr::col(projects::Column::EventCursor), count),
            )
            .and_where(projects::Column::Id.eq(project_id))
            .and_where(projects::Column::TenantId.eq(tenant.as_str()))
            .returning_col(projects::Column::EventCursor)
            .to_owned();
        let row = self
            .query_one(&bump)
            .await?
            .ok_or_else(|| Error::internal(format!("project {project_id} vanished while appending events")))?;
        let last: i64 = row.try_get("", "event_cursor")?;
        let now = now_ms();
        let mut out = Vec::with_capacity(new.len());
        let mut rows = Vec::with_capacity(new.len());
        for (i, event) in new.iter().enumerate() {
            let cursor = last - count + 1 + i as i64;
            let payload = EventPayload {
                facts: event.facts.clone(),
                error: event.error.clone(),
                derived_preferences: event.derived_preferences.clone(),
            };
            let payload = serde_json::to_string(&payload).map_err(Error::internal)?;
            rows.push(events::ActiveModel {
                tenant_id: Set(tenant.0.clone()),
                project_id: Set(project_id.to_owned()),
                cursor: Set(cursor),
                event_type: Set(event.event_type.as_str().to_owned()),
                image_id: Set(Some(event.image_id.clone())),
                orchestration_id: Set(event.orchestration_id.clone()),
                payload: Set(payload),
                created_at: Set(now),
                ..Default::default()
            });
            out.push(Event {
                cursor: cursor.max(0) as u64,
                project_id: project_id.to_owned(),
                created_at: now,
                what: event.clone(),
            });
        }
        events::Entity::insert_many(rows).exec_without_returning(self).await?;
        self.notify_events(&format!("{project_id}:{last}")).await?;
        Ok(out)
    }

    /// PostgreSQL: sends `payload` on the events channel, delivered to every listening replica
    /// when this transaction commits (ids only; the store holds the data). Nothing on SQLite.
    pub(super) async fn notify_events(&self, payload: &str) -> Result<()> {
        if self.backend() == Backend::Postgres {
            let stmt = sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [EVENTS_CHANNEL.into(), payload.into()],
            );
            self.execute_raw(stmt).await?;
        }
        Ok(())
    }
}

impl Store {
    /// The project's latest committed event cursor (0 when it has none); PROJECT_NOT_FOUND once
    /// its row is gone (a subscriber rejoining after DeleteProject finished).
    pub async fn latest_event_cursor(&self, project_id: &str) -> Result<u64> {
        let cursor: Option<i64> = projects::Entity::find_by_id(project_id.to_owned())
            .select_only()
            .column(projects::Column::EventCursor)
            .into_tuple()
            .one(self.reader())
            .await?;
        let cursor = cursor.ok_or_else(|| Error::project_not_found(project_id))?;
        Ok(cursor.max(0) as u64)
    }

    /// The smallest stored event cursor of the project above `after`, if any
    /// (retention deletes the oldest events; cursors are otherwise dense).
    pub async fn first_event_cursor_after(&self, project_id: &str, after: u64) -> Result<Option<u64>> {
        let cursor: Option<i64> = events::Entity::find()
            .filter(events::Column::ProjectId.eq(project_id))
            .filter(events::Column::Cursor.gt(clamp(after)))
            .order_by_asc(events::Column::Cursor)
            .select_only()
            .column(events::Column::Cursor)
            .into_tuple()
            .one(self.reader())
            .await?;
        Ok(cursor.map(|c| c.max(0) as u64))
    }

    /// Up to `limit` committed events of the project with `after < cursor <= until`,
    /// oldest first, optionally only those of one orchestration.
    pub async fn events_after(
        &self,
        project_id: &str,
        after: u64,
        until: Option<u64>,
        orchestration_id: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Event>> {
        let mut query = events::Entity::find()
            .filter(events::Column::ProjectId.eq(project_id))
            .filter(events::Column::Cursor.gt(clamp(after)))
            .order_by_asc(events::Column::Cursor)
            .limit(limit);
        if let Some(until) = until {
            query = query.filter(events::Column::Cursor.lte(clamp(until)));
        }
        if let Some(orchestration_id) = orchestration_id {
            query = query.filter(events::Column::OrchestrationId.eq(orchestration_id));
        }
        query.all(self.reader()).await?.into_iter().map(event).collect()
    }
}

fn clamp(cursor: u64) -> i64 {
    i64::try_from(cursor).unwrap_or(i64::MAX)
}

fn event(row: events::Model) -> Result<Event> {
    let event_type = EventType::parse(&row.event_type)
        .ok_or_else(|| Error::internal(format!("event {} has unknown type {}", row.id, row.event_type)))?;
    let payload: EventPayload = serde_json::from_str(&row.payload)
        .map_err(|e| Error::internal(format!("event {} has an unreadable payload: {e}", row.id)))?;
    Ok(Event {
        cursor: row.cursor.max(0) as u64,
        project_id: row.project_id,
        created_at: row.created_at,
        what: NewEvent {
            event_type,
            image_id: row.image_id.unwrap_or_default(),
            orchestration_id: row.orchestration_id,
            facts: payload.facts,
            error: payload.error,
            derived_preferences: payload.derived_preferences,
        },
    })
}
