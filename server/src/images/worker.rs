//! The analyse-image job: load the bytes (inline payload, or fetch the URL),
//! analyse them, and commit everything the facts imply in one transaction,
//! guarded by the job's lease.

use std::sync::Arc;

use super::Images;
use crate::{
    context::{render, tokens},
    error::{Error, Result},
    jobs::{JobDone, JobFailure, JobHandler},
    model::{
        EventType, ImageAnalysis, ImageFacts, ImageStatus, Job, MemoryItem, MemoryPut, MemorySource, MemoryType,
        Millis, NewEvent, TenantId, now_ms,
    },
    store::{ImageReady, WriteTx},
    vision::intake,
};

/// Confidence of a preference an image implies the first time.
pub const DERIVED_CONFIDENCE: f64 = 0.7;
/// How much each further image implying the same value adds.
pub const DERIVED_CONFIDENCE_STEP: f64 = 0.1;
/// Images alone never make a preference more certain than this.
pub const DERIVED_CONFIDENCE_CAP: f64 = 0.95;
/// Key of the mood preference.
pub const PREFERRED_MOOD: &str = "preferred_mood";
/// Key of the colours preference.
pub const PREFERRED_COLORS: &str = "preferred_colors";
/// Palette colours with at least this share count towards the colour preference.
const SIGNIFICANT_SHARE: f64 = 0.1;

pub(super) struct AnalyzeImage {
    pub images: Images,
}

#[async_trait::async_trait]
impl JobHandler for AnalyzeImage {
    async fn claimed_in(&self, txn: &WriteTx, job: &Job) -> Result<()> {
        txn.set_image_progress(&job.project_id, &job.subject_id, ImageStatus::Running, job.attempts).await
    }

    async fn run(&self, mut job: Job) -> std::result::Result<JobDone, JobFailure> {
        let inner = &self.images.inner;
        let image = inner
            .store
            .get_image(&job.tenant_id, &job.project_id, &job.subject_id)
            .await
            .map_err(|e| JobFailure::transient(format!("cannot read the image record: {}", e.message())))?;
        let orchestration_id = image.orchestration_id.clone();
        let tag = |f: JobFailure| f.with_orchestration(orchestration_id.clone());
        let (bytes, format) = match (job.payload.take(), &image.source_url) {
            (Some(bytes), _) => {
                let format = intake::sniff(&bytes).ok_or_else(|| {
                    tag(JobFailure::permanent(format!(
                        "unsupported image type: the data is {}, not PNG, JPEG, WebP or GIF",
                        intake::describe_unsupported(&bytes)
                    )))
                })?;
                (bytes, format)
            }
            (None, Some(url)) => {
                let fetched = inner.fetcher.fetch(url).await.map_err(|e| {
                    tag(if e.is_permanent() {
                        JobFailure::permanent(e.to_string())
                    } else if e.is_slow() {
                        // Each try of a slow source holds a worker for the whole deadline.
                        JobFailure::transient(e.to_string())
                            .with_attempt_limit(inner.fetcher.settings().slow_max_attempts)
                    } else {
                        JobFailure::transient(e.to_string())
                    })
                })?;
                (fetched.bytes, fetched.format)
            }
            (None, None) => return Err(tag(JobFailure::permanent("the job has no image data"))),
        };
        let facts = inner.analyzer.analyze(&bytes).await.map_err(|e| {
            tag(if e.is_permanent() {
                JobFailure::permanent(e.to_string())
            } else {
                JobFailure::transient(e.to_string())
            })
        })?;
        let analysis_ms = facts.processing_ms;
        self.complete(&job, &image, facts, format.mime(), bytes.len() as u64).await.map_err(tag)?;
        Ok(JobDone { orchestration_id, analysis_ms: Some(analysis_ms) })
    }

    async fn retry(&self, job: &Job, error: &str, run_after: Millis) -> Result<()> {
        let store = &self.images.inner.store;
        let txn = store.begin_write().await?;
        if txn.retry_job(job, error, run_after).await? {
            txn.set_image_progress(&job.project_id, &job.subject_id, ImageStatus::Pending, job.attempts).await?;
            txn.commit().await?;
        } else {
            txn.rollback().await?;
        }
        Ok(())
    }

    async fn fail(&self, job: &Job, error: &str) -> Result<Option<String>> {
        let inner = &self.images.inner;
        let store = &inner.store;
        let txn = store.begin_write().await?;
        txn.lock_project(&job.tenant_id, &job.project_id).await?;
        if !txn.finish_job(job, false, Some(error)).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        let now = now_ms();
        txn.set_image_failed(&job.project_id, &job.subject_id, error, job.attempts, now).await?;
        let image = txn.image(&job.project_id, &job.subject_id).await?;
        let event = NewEvent {
            event_type: EventType::ImageFactsFailed,
            image_id: job.subject_id.clone(),
            orchestration_id: image.orchestration_id.clone(),
            facts: None,
            error: Some(error.to_owned()),
            derived_preferences: Vec::new(),
        };
        txn.touch_project(&job.project_id, now).await?;
        let events = txn.append_events(&job.tenant_id, &job.project_id, &[event]).await?;
        txn.commit().await?;
        let orchestration_id = image.orchestration_id.clone();
        self.committed(&job.project_id, image, events.last().map_or(0, |e| e.cursor));
        Ok(orchestration_id)
    }

    async fn released_in(&self, txn: &WriteTx, job: &Job) -> Result<()> {
        let attempts = job.attempts.saturating_sub(1);
        txn.set_image_progress(&job.project_id, &job.subject_id, ImageStatus::Pending, attempts).await
    }
}

impl AnalyzeImage {
    /// The completion transaction: facts, derived preferences, READY and
    /// PROCESSED events and the job's success commit together or not at all.
    async fn complete(
        &self,
        job: &Job,
        image: &ImageAnalysis,
        facts: ImageFacts,
        mime: &'static str,
        byte_size: u64,
    ) -> std::result::Result<(), JobFailure> {
        let inner = &self.images.inner;
        let store = &inner.store;
        let result = async {
            let txn = store.begin_write().await?;
            txn.lock_project(&job.tenant_id, &job.project_id).await?;
            if !txn.finish_job(job, true, None).await? {
                txn.rollback().await?;
                return Ok(None);
            }
            let now = now_ms();
            let ready = ImageReady {
                facts: &facts,
                mime_type: Some(mime),
                byte_size,
                attempts: job.attempts,
                completed_at: now,
            };
            txn.set_image_ready(&job.project_id, &job.subject_id, &ready).await?;
            let preferences = derive_preferences_in(&txn, &job.tenant_id, &job.project_id, &facts, now).await?;
            txn.touch_project(&job.project_id, now).await?;
            let new_event = |event_type, derived_preferences| NewEvent {
                event_type,
                image_id: job.subject_id.clone(),
                orchestration_id: image.orchestration_id.clone(),
                facts: Some(facts.clone()),
                error: None,
                derived_preferences,
            };
            let events = txn
                .append_events(
                    &job.tenant_id,
                    &job.project_id,
                    &[
                        new_event(EventType::ImageFactsReady, Vec::new()),
                        new_event(EventType::ImageFactsProcessed, preferences),
                    ],
                )
                .await?;
            txn.commit().await?;
            let finished = ImageAnalysis {
                status: ImageStatus::Ready,
                facts: Some(facts.clone()),
                error: None,
                attempts: job.attempts,
                mime_type: Some(mime.to_owned()),
                byte_size: Some(byte_size),
                content_sha256: Some(facts.content_sha256.clone()),
                completed_at: Some(now),
                ..image.clone()
            };
            Ok::<_, Error>(Some((finished, events.last().map_or(0, |e| e.cursor))))
        }
        .await;
        match result {
            Ok(Some((finished, cursor))) => {
                self.committed(&job.project_id, finished, cursor);
                Ok(())
            }
            Ok(None) => Err(JobFailure::lease_lost()),
            Err(err) => Err(JobFailure::transient(format!(
                "cannot store the result: {}",
                err.detail().unwrap_or(err.message())
            ))),
        }
    }

    /// After a commit: invalidate the project's context, cache the finished
    /// analysis, and wake this replica's subscribers.
    fn committed(&self, project_id: &str, analysis: ImageAnalysis, cursor: u64) {
        let inner = &self.images.inner;
        inner.changes.changed(project_id);
        inner.cache.insert(Arc::new(analysis));
        inner.bus.publish(project_id, cursor);
    }
}

/// The preferences an image implies: its mood, and its significant colours.
fn implied_preferences(facts: &ImageFacts) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mood = render::one_line(&facts.mood);
    if !mood.is_empty() {
        out.push((PREFERRED_MOOD, mood));
    }
    let mut colors: Vec<String> = Vec::new();
    for color in &facts.palette {
        let name = render::one_line(&color.name);
        if color.proportion >= SIGNIFICANT_SHARE && !name.is_empty() && !colors.contains(&name) && colors.len() < 3 {
            colors.push(name);
        }
    }
    if !colors.is_empty() {
        out.push((PREFERRED_COLORS, colors.join(", ")));
    }
    out
}

/// Confidence of an image-derived value given what the project already holds;
/// None when an explicitly stated, more confident preference with another
/// value should stand.
pub(crate) fn derived_confidence(existing: Option<&MemoryItem>, value: &str, now: Millis) -> Option<f64> {
    let live = existing.filter(|m| m.expires_at.is_none_or(|t| t > now));
    match live {
        None => Some(DERIVED_CONFIDENCE),
        Some(m) if m.value == value => {
            let rising = (m.confidence.max(DERIVED_CONFIDENCE) + DERIVED_CONFIDENCE_STEP).min(DERIVED_CONFIDENCE_CAP);
            Some(rising.max(m.confidence))
        }
        Some(m) if m.source != MemorySource::Image && m.confidence > DERIVED_CONFIDENCE => None,
        Some(_) => Some(DERIVED_CONFIDENCE),
    }
}

async fn derive_preferences_in(
    txn: &WriteTx,
    tenant: &TenantId,
    project_id: &str,
    facts: &ImageFacts,
    now: Millis,
) -> Result<Vec<MemoryItem>> {
    let mut derived = Vec::new();
    for (key, value) in implied_preferences(facts) {
        let existing = txn.memory_by_key(project_id, MemoryType::UserPreference, key).await?;
        let Some(confidence) = derived_confidence(existing.as_ref(), &value, now) else { continue };
        let token_count = tokens::count(&render::memory_line(key, &value, confidence));
        let put = MemoryPut {
            project_id: project_id.to_owned(),
            memory_type: MemoryType::UserPreference,
            key: key.to_owned(),
            value,
            confidence,
            source: MemorySource::Image,
            source_prompt: None,
            ttl_ms: None,
        };
        let (item, _) = txn.put_memory(tenant, &put, token_count, now).await?;
        derived.push(item);
    }
    Ok(derived)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(value: &str, confidence: f64, source: MemorySource) -> MemoryItem {
        MemoryItem {
            id: "m".into(),
            project_id: "p".into(),
            memory_type: MemoryType::UserPreference,
            key: PREFERRED_MOOD.into(),
            value: value.into(),
            confidence,
            source,
            source_prompt: None,
            token_count: 5,
            occurrences: 1,
            expires_at: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn confidence_starts_at_0_7_and_rises_when_repeated() {
        assert_eq!(derived_confidence(None, "calm", 0), Some(0.7));
        let first = item("calm", 0.7, MemorySource::Image);
        let second = derived_confidence(Some(&first), "calm", 0).expect("some"); // ok: unit test only (#[cfg(test)]), not on a request path
        assert!((second - 0.8).abs() < 1e-9);
        let capped = derived_confidence(Some(&item("calm", 0.95, MemorySource::Image)), "calm", 0);
        assert_eq!(capped, Some(0.95));
        // A stated preference of the same value never loses confidence.
        assert_eq!(derived_confidence(Some(&item("calm", 1.0, MemorySource::Api)), "calm", 0), Some(1.0));
    }

    #[test]
    fn a_stated_preference_outranks_a_different_image_guess() {
        assert_eq!(derived_confidence(Some(&item("moody", 0.9, MemorySource::Prompt)), "calm", 0), None);
        assert_eq!(derived_confidence(Some(&item("moody", 0.7, MemorySource::Image)), "calm", 0), Some(0.7));
        let mut expired = item("moody", 0.9, MemorySource::Api);
        expired.expires_at = Some(10);
        assert_eq!(derived_confidence(Some(&expired), "calm", 20), Some(0.7));
    }
}
