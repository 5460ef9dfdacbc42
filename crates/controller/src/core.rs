//! The controller's operations, shared by the gRPC and REST front ends.
//!
//! Records are read, changed by the pure rules of [`crate::model`], and written back with a
//! version check (retried on conflict). Changes that need the segment store run as workflows:
//! the workflow is written into the stream's record first, then its idempotent steps run, then
//! the record is updated and the workflow cleared. A controller that restarts resumes every
//! workflow it finds.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use pravaha_segment_client::{ClientConfig, ClientError, ScalePolicy, SegmentClient};
use pravaha_types::{qualified_segment_name, validate_scope_name, validate_stream_name};
use tokio::sync::Mutex;

use crate::directory::{SegmentStoreNode, SegmentStores};
use crate::error::ControllerError;
use crate::metadata::{MetadataTable, Versioned};
use crate::model::{
    Precondition, ScaleType, ScopeRecord, SegmentRange, StreamConfig, StreamRecord, StreamState,
    Workflow, RECORD_VERSION,
};

/// How many times a read-modify-write is retried when another writer got there first.
const MAX_ATTEMPTS: usize = 64;

/// Controller settings.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub stores: SegmentStores,
    pub client: ClientConfig,
    /// Items per page of the list RPCs (Pravega uses 1000).
    pub page_size: usize,
    /// Delegation tokens are signed with this key when set (auth on); `None` = auth off.
    pub token_signing_key: Option<Vec<u8>>,
    /// How long issued delegation tokens are valid.
    pub token_lifetime: Duration,
    /// With users, every gRPC and REST call (but health) must carry Basic credentials of one of
    /// them; `None` checks no credentials (see [`crate::auth`]).
    pub users: Option<Arc<crate::auth::Users>>,
    /// Test hook for crash tests: a workflow stops (hangs) after this many segment-store steps.
    pub pause_workflow_after_steps: Option<usize>,
    /// How often expired transactions are aborted and interrupted commits finished.
    pub transaction_sweep_interval: Duration,
    /// How often the retention service records stream tails and truncates streams.
    pub retention_interval: Duration,
    /// How often writers' marks are aggregated into watermarks.
    pub watermark_interval: Duration,
}

impl ControllerConfig {
    pub fn new(stores: SegmentStores) -> Self {
        Self {
            stores,
            client: ClientConfig::default(),
            page_size: 1000,
            token_signing_key: None,
            token_lifetime: Duration::from_secs(600),
            users: None,
            pause_workflow_after_steps: None,
            transaction_sweep_interval: Duration::from_secs(1),
            retention_interval: Duration::from_secs(60),
            watermark_interval: Duration::from_secs(10),
        }
    }
}

/// The outcome of `scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleStarted {
    /// The epoch the scale starts from (what `check_scale` takes).
    pub epoch: u32,
    pub segments: Vec<SegmentRange>,
}

/// What `check_scale` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleStatus {
    InProgress,
    Success,
    InvalidInput,
}

/// A scaling event for the REST API: an epoch and how it came about.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingEvent {
    pub timestamp_ms: i64,
    pub segments: Vec<(u32, i64, f64, f64)>,
    pub splits: i32,
    pub merges: i32,
}

/// The controller; cheap to clone.
#[derive(Clone)]
pub struct Controller {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) table: MetadataTable,
    pub(crate) client: SegmentClient,
    pub(crate) config: ControllerConfig,
    /// One lock per stream key, held while a workflow of that stream runs in this process.
    running: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Per stream key, the last watermark read from or written to its mark stream.
    pub(crate) last_watermarks: crate::watermarks::LastWatermarks,
}

fn scope_key(scope: &str) -> String {
    format!("scope/{scope}")
}

pub(crate) fn stream_key(scope: &str, stream: &str) -> String {
    format!("stream/{scope}/{stream}")
}

pub(crate) fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn policy_of(config: &StreamConfig) -> ScalePolicy {
    let scaling = &config.scaling;
    ScalePolicy {
        scale_type: match scaling.scale_type {
            ScaleType::FixedNumSegments => 0,
            ScaleType::ByRateInKbytesPerSec => 1,
            ScaleType::ByRateInEventsPerSec => 2,
        },
        target_rate: scaling.target_rate,
    }
}

impl Controller {
    /// Connects to the metadata table (creating it on first start) and resumes every workflow
    /// a previous run left unfinished.
    pub async fn start(config: ControllerConfig) -> Result<Self, ControllerError> {
        let client = SegmentClient::new(segment_client_config(&config));
        let table = MetadataTable::new(client.clone(), config.stores.clone());
        table.ensure_exists().await?;
        let controller = Self {
            inner: Arc::new(Inner {
                table,
                client,
                config,
                running: Mutex::new(HashMap::new()),
                last_watermarks: crate::watermarks::LastWatermarks::default(),
            }),
        };
        controller.resume_workflows().await?;
        controller.resume_group_and_table_workflows();
        let config = &controller.inner.config;
        controller.every(
            config.transaction_sweep_interval,
            "transaction sweep",
            |c| async move { c.sweep_transactions().await },
        );
        controller.every(
            config.retention_interval,
            "retention pass",
            |c| async move { c.run_retention().await },
        );
        controller.every(
            config.watermark_interval,
            "watermarking pass",
            |c| async move { c.run_watermarking().await },
        );
        Ok(controller)
    }

    /// Runs `pass` every `interval` while the controller exists (the task holds only a weak
    /// reference); a failed pass is logged and the next one tries again.
    fn every<F, Fut>(&self, interval: Duration, what: &'static str, pass: F)
    where
        F: Fn(Controller) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), ControllerError>> + Send,
    {
        let inner = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                if let Err(error) = pass(Controller { inner }).await {
                    tracing::warn!(%error, "{what} failed; retrying later");
                }
            }
        });
    }

    pub fn config(&self) -> &ControllerConfig {
        &self.inner.config
    }

    async fn resume_workflows(&self) -> Result<(), ControllerError> {
        let mut token = String::new();
        loop {
            let (page, next): (Vec<(String, StreamRecord)>, String) =
                self.inner.table.list("stream/", &token, 1000).await?;
            if page.is_empty() {
                return Ok(());
            }
            for (key, record) in page {
                if let Some(workflow) = &record.workflow {
                    tracing::info!(
                        stream = key,
                        workflow = workflow.name(),
                        "resuming an unfinished workflow"
                    );
                    let controller = self.clone();
                    tokio::spawn(async move {
                        if let Err(error) = controller.drive(&key).await {
                            tracing::warn!(stream = key, %error, "resumed workflow failed; it will be retried on the next start or request");
                        }
                    });
                }
            }
            token = next;
        }
    }

    // ---- scopes -------------------------------------------------------------------------

    /// Creates a scope; false if it exists.
    pub async fn create_scope(&self, scope: &str) -> Result<bool, ControllerError> {
        validate_scope_name(scope, true)
            .map_err(|e| ControllerError::InvalidName(e.to_string()))?;
        let record = ScopeRecord {
            v: RECORD_VERSION,
            name: scope.to_owned(),
            created_ms: now_ms(),
            deleting: false,
        };
        Ok(self
            .inner
            .table
            .create(&scope_key(scope), &record)
            .await?
            .is_some())
    }

    pub async fn scope_exists(&self, scope: &str) -> Result<bool, ControllerError> {
        Ok(self
            .inner
            .table
            .get::<ScopeRecord>(&scope_key(scope))
            .await?
            .is_some_and(|record| !record.value.deleting))
    }

    /// One page of scope names and the token for the next.
    pub async fn list_scopes(&self, token: &str) -> Result<(Vec<String>, String), ControllerError> {
        let (page, next) = self
            .inner
            .table
            .list::<ScopeRecord>("scope/", token, self.inner.config.page_size)
            .await?;
        Ok((page.into_iter().map(|(_, r)| r.name).collect(), next))
    }

    /// Deletes an empty scope; false if it does not exist.
    ///
    /// The scope is first marked as being deleted, then checked for streams; `create_stream`
    /// writes its stream first and then checks the scope. Each side writes before it reads the
    /// other's key, so a stream is never left behind in a deleted scope.
    pub async fn delete_scope(&self, scope: &str) -> Result<bool, ControllerError> {
        let key = scope_key(scope);
        let marked = loop {
            let Some(Versioned { mut value, version }) =
                self.inner.table.get::<ScopeRecord>(&key).await?
            else {
                return Ok(false);
            };
            value.deleting = true;
            if let Some(version) = self.inner.table.replace(&key, &value, version).await? {
                break Versioned { value, version };
            }
        };
        self.refuse_scope_with_groups_or_tables(scope, &marked)
            .await?;
        let (streams, _) = self
            .inner
            .table
            .list::<StreamRecord>(&format!("stream/{scope}/"), "", 1)
            .await?;
        if !streams.is_empty() {
            let mut value = marked.value;
            value.deleting = false;
            // If this fails another request changed the scope meanwhile; it stays usable.
            self.inner
                .table
                .replace(&key, &value, marked.version)
                .await?;
            return Err(ControllerError::ScopeNotEmpty(scope.to_owned()));
        }
        self.inner.table.remove(&key, marked.version).await
    }

    // ---- streams ------------------------------------------------------------------------

    async fn require_scope(&self, scope: &str) -> Result<(), ControllerError> {
        if self.scope_exists(scope).await? {
            Ok(())
        } else {
            Err(ControllerError::ScopeNotFound(scope.to_owned()))
        }
    }

    /// Creates a stream and its first segments (and, for a user stream, its mark stream);
    /// false if it exists.
    pub async fn create_stream(
        &self,
        scope: &str,
        stream: &str,
        config: StreamConfig,
    ) -> Result<bool, ControllerError> {
        validate_scope_name(scope, true)
            .map_err(|e| ControllerError::InvalidName(e.to_string()))?;
        validate_stream_name(stream, true)
            .map_err(|e| ControllerError::InvalidName(e.to_string()))?;
        config
            .validate()
            .map_err(ControllerError::InvalidArgument)?;
        self.require_scope(scope).await?;
        let created = self.create_stream_in(scope, stream, config, true).await?;
        // Pravega creates a user stream's mark stream with it, and its Java readers refuse to
        // start on a stream without one. Internal streams (`_RG`, `_MARK`) get none.
        if !stream.starts_with(pravaha_types::INTERNAL_NAME_PREFIX) {
            self.ensure_mark_stream(scope, stream).await?;
        }
        Ok(created)
    }

    /// Writes the stream's record and drives its creation; false if it existed. With
    /// `check_scope`, a scope deleted meanwhile undoes the record (see `delete_scope`); without,
    /// the caller holds a stream of the scope already, which keeps the scope from being deleted.
    pub(crate) async fn create_stream_in(
        &self,
        scope: &str,
        stream: &str,
        config: StreamConfig,
        check_scope: bool,
    ) -> Result<bool, ControllerError> {
        validate_stream_name(stream, true)
            .map_err(|e| ControllerError::InvalidName(e.to_string()))?;
        config
            .validate()
            .map_err(ControllerError::InvalidArgument)?;
        let key = stream_key(scope, stream);
        let record = StreamRecord::new(scope, stream, config, now_ms());
        let created = self.inner.table.create(&key, &record).await?;
        if let Some(version) = created {
            // The scope may have been deleted since it was checked (see `delete_scope`).
            if check_scope && !self.scope_exists(scope).await? {
                self.inner.table.remove(&key, version).await?;
                return Err(ControllerError::ScopeNotFound(scope.to_owned()));
            }
        }
        // A stream still being created (here or by a controller that stopped) is finished first.
        self.drive(&key).await?;
        Ok(created.is_some())
    }

    pub async fn stream(&self, scope: &str, stream: &str) -> Result<StreamRecord, ControllerError> {
        Ok(self.load(scope, stream).await?.value)
    }

    pub(crate) async fn load(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Versioned<StreamRecord>, ControllerError> {
        match self
            .inner
            .table
            .get::<StreamRecord>(&stream_key(scope, stream))
            .await?
        {
            Some(record) if record.value.state != StreamState::Creating => Ok(record),
            _ => Err(ControllerError::StreamNotFound {
                scope: scope.to_owned(),
                stream: stream.to_owned(),
            }),
        }
    }

    /// One page of a scope's streams (optionally only those with `tag`), and the next token.
    pub async fn list_streams(
        &self,
        scope: &str,
        token: &str,
        tag: Option<&str>,
    ) -> Result<(Vec<StreamRecord>, String), ControllerError> {
        self.require_scope(scope).await?;
        let prefix = format!("stream/{scope}/");
        let limit = self.inner.config.page_size;
        let mut token = token.to_owned();
        let mut streams = Vec::new();
        loop {
            let (page, _) = self
                .inner
                .table
                .list::<StreamRecord>(&prefix, &token, limit)
                .await?;
            let exhausted = page.is_empty();
            for (key, record) in page {
                if streams.len() == limit {
                    break;
                }
                token = key;
                let wanted = record.state != StreamState::Creating
                    && tag.is_none_or(|t| record.config.tags.iter().any(|x| x == t));
                if wanted {
                    streams.push(record);
                }
            }
            if exhausted || streams.len() >= limit {
                return Ok((streams, token));
            }
        }
    }

    /// Applies `change` to the stream's record and writes it back, retrying on conflicts.
    async fn update<R>(
        &self,
        scope: &str,
        stream: &str,
        mut change: impl FnMut(&mut StreamRecord) -> Result<R, ControllerError>,
    ) -> Result<R, ControllerError> {
        let key = stream_key(scope, stream);
        for _ in 0..MAX_ATTEMPTS {
            let Versioned { mut value, version } = self.load(scope, stream).await?;
            let result = change(&mut value)?;
            if self
                .inner
                .table
                .replace(&key, &value, version)
                .await?
                .is_some()
            {
                return Ok(result);
            }
        }
        Err(ControllerError::Contention(key))
    }

    /// Starts `workflow` on the stream once no other is pending (finishing that one first), and
    /// runs it to the end.
    async fn run(
        &self,
        scope: &str,
        stream: &str,
        mut start: impl FnMut(&StreamRecord) -> Result<Option<Workflow>, ControllerError>,
    ) -> Result<(), ControllerError> {
        let key = stream_key(scope, stream);
        for _ in 0..MAX_ATTEMPTS {
            self.drive(&key).await?;
            let Versioned { mut value, version } = self.load(scope, stream).await?;
            if value.workflow.is_some() {
                continue;
            }
            let Some(workflow) = start(&value)? else {
                return Ok(());
            };
            value.workflow = Some(workflow);
            if self
                .inner
                .table
                .replace(&key, &value, version)
                .await?
                .is_some()
            {
                return self.drive(&key).await;
            }
        }
        Err(ControllerError::Contention(key))
    }

    /// Replaces the stream's configuration (and pushes the scaling policy to its segments).
    pub async fn update_stream(
        &self,
        scope: &str,
        stream: &str,
        config: StreamConfig,
    ) -> Result<(), ControllerError> {
        config
            .validate()
            .map_err(ControllerError::InvalidArgument)?;
        let key = stream_key(scope, stream);
        for _ in 0..MAX_ATTEMPTS {
            self.drive(&key).await?;
            let Versioned { mut value, version } = self.load(scope, stream).await?;
            if value.state == StreamState::Sealed {
                return Err(ControllerError::StreamSealed {
                    scope: scope.to_owned(),
                    stream: stream.to_owned(),
                });
            }
            if value.workflow.is_some() {
                continue;
            }
            value.config = config.clone();
            value.workflow = Some(Workflow::UpdatePolicy);
            if self
                .inner
                .table
                .replace(&key, &value, version)
                .await?
                .is_some()
            {
                self.drive(&key).await?;
                return self.reach_min_segments(scope, stream).await;
            }
        }
        Err(ControllerError::Contention(key))
    }

    /// Splits the widest segments until the stream has at least its configured minimum number
    /// of segments (as Pravega does when an update raises the minimum).
    async fn reach_min_segments(&self, scope: &str, stream: &str) -> Result<(), ControllerError> {
        let key = stream_key(scope, stream);
        for _ in 0..MAX_ATTEMPTS {
            let record = self.stream(scope, stream).await?;
            let current = record.current_segments();
            let min = usize::try_from(record.config.scaling.min_num_segments).unwrap_or(1);
            if current.len() >= min || record.state != StreamState::Active {
                return Ok(());
            }
            let Some(widest) = current
                .iter()
                .max_by(|a, b| (a.key_end - a.key_start).total_cmp(&(b.key_end - b.key_start)))
            else {
                return Ok(());
            };
            let middle = (widest.key_start + widest.key_end) / 2.0;
            let ranges = [(widest.key_start, middle), (middle, widest.key_end)];
            match self.scale(scope, stream, &[widest.id], &ranges).await {
                // Another change got there first: look again.
                Ok(_) | Err(ControllerError::PreconditionFailed(_)) => {}
                Err(error) => return Err(error),
            }
            self.drive(&key).await?;
        }
        Err(ControllerError::Contention(key))
    }

    /// Seals every segment; the stream takes no more writes.
    pub async fn seal_stream(&self, scope: &str, stream: &str) -> Result<(), ControllerError> {
        self.run(scope, stream, |record| {
            Ok((record.state == StreamState::Active).then_some(Workflow::Seal))
        })
        .await
    }

    /// Deletes a sealed stream and its segments, and with it its watermarks (writer marks and
    /// mark stream, as Pravega does); false if it does not exist.
    pub async fn delete_stream(&self, scope: &str, stream: &str) -> Result<bool, ControllerError> {
        let deleted = self.delete_stream_only(scope, stream).await?;
        if deleted {
            self.forget_watermarks(scope, stream).await?;
        }
        Ok(deleted)
    }

    /// Deletes a sealed stream and its segments (nothing else); false if it does not exist.
    pub(crate) async fn delete_stream_only(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<bool, ControllerError> {
        let result = self
            .run(scope, stream, |record| {
                if record.state == StreamState::Sealed {
                    Ok(Some(Workflow::Delete))
                } else {
                    Err(ControllerError::StreamNotSealed {
                        scope: scope.to_owned(),
                        stream: stream.to_owned(),
                    })
                }
            })
            .await;
        match result {
            Ok(()) => Ok(true),
            Err(ControllerError::StreamNotFound { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Truncates the stream at `cut`: data before it is gone for readers.
    pub async fn truncate_stream(
        &self,
        scope: &str,
        stream: &str,
        cut: BTreeMap<i64, i64>,
    ) -> Result<(), ControllerError> {
        // Offsets beyond a segment's length would make the workflow fail at every attempt:
        // refuse them before anything is recorded.
        let record = self.stream(scope, stream).await?;
        record
            .validate_cut(&cut)
            .map_err(ControllerError::InvalidArgument)?;
        for (id, offset) in &cut {
            if record.truncated_segments.contains(id) {
                continue;
            }
            let segment = qualified_segment_name(scope, stream, *id);
            let info = self
                .inner
                .client
                .segment_info(self.locate(&segment), &segment, "")
                .await;
            match info {
                Ok(info) if *offset > info.length => {
                    return Err(ControllerError::InvalidArgument(format!(
                        "offset {offset} is beyond the end ({}) of segment {id}",
                        info.length
                    )))
                }
                Ok(_) | Err(ClientError::NoSuchSegment(_)) => {}
                Err(error) => return Err(ControllerError::SegmentStore(error)),
            }
        }
        self.run(scope, stream, |record| {
            record
                .validate_cut(&cut)
                .map_err(ControllerError::InvalidArgument)?;
            if record.truncation == cut {
                return Ok(None);
            }
            for (id, offset) in &cut {
                let behind = record.truncated_segments.contains(id)
                    || record
                        .truncation
                        .get(id)
                        .is_some_and(|current| offset < current);
                if behind {
                    return Err(ControllerError::PreconditionFailed(format!(
                        "segment {id} at {offset} is before the stream's current truncation"
                    )));
                }
            }
            let delete = record.segments_before(&cut);
            Ok(Some(Workflow::Truncate {
                cut: cut.clone(),
                delete,
            }))
        })
        .await
    }

    /// Starts a scale that seals `sealed` and creates segments for `new_ranges`; it completes
    /// in the background (see [`Self::check_scale`]).
    pub async fn scale(
        &self,
        scope: &str,
        stream: &str,
        sealed: &[i64],
        new_ranges: &[(f64, f64)],
    ) -> Result<ScaleStarted, ControllerError> {
        let key = stream_key(scope, stream);
        let (epoch, created) = self
            .update(scope, stream, |record| {
                let workflow = record
                    .plan_scale(sealed, new_ranges, now_ms())
                    .map_err(|Precondition(why)| ControllerError::PreconditionFailed(why))?;
                let epoch = record.current_epoch().epoch;
                let created = match &workflow {
                    Workflow::Scale { created, .. } => {
                        created.iter().map(SegmentRange::from).collect::<Vec<_>>()
                    }
                    _ => Vec::new(),
                };
                record.workflow = Some(workflow);
                Ok((epoch, created))
            })
            .await?;
        let controller = self.clone();
        tokio::spawn(async move {
            if let Err(error) = controller.drive(&key).await {
                tracing::warn!(stream = key, %error, "scale failed; it resumes on the next request or restart");
            }
        });
        Ok(ScaleStarted {
            epoch,
            segments: created,
        })
    }

    /// Whether the scale started from `epoch` has completed.
    pub async fn check_scale(
        &self,
        scope: &str,
        stream: &str,
        epoch: i32,
    ) -> Result<ScaleStatus, ControllerError> {
        let record = self.stream(scope, stream).await?;
        let current = i64::from(record.current_epoch().epoch);
        let epoch = i64::from(epoch);
        Ok(if current > epoch && epoch >= 0 {
            ScaleStatus::Success
        } else if current == epoch
            && matches!(record.workflow, Some(Workflow::Scale { new_epoch, .. }) if i64::from(new_epoch) == epoch + 1)
        {
            ScaleStatus::InProgress
        } else {
            ScaleStatus::InvalidInput
        })
    }

    // ---- workflows ----------------------------------------------------------------------

    async fn lock_for(&self, key: &str) -> Arc<Mutex<()>> {
        self.inner
            .running
            .lock()
            .await
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    /// Runs the stream's pending workflow, if any, to its end.
    pub(crate) async fn drive(&self, key: &str) -> Result<(), ControllerError> {
        let lock = self.lock_for(key).await;
        let _running = lock.lock().await;
        let mut steps = 0usize;
        loop {
            let Some(Versioned { value, version }) =
                self.inner.table.get::<StreamRecord>(key).await?
            else {
                return Ok(());
            };
            let Some(workflow) = value.workflow.clone() else {
                return Ok(());
            };
            self.perform(&value, &workflow, &mut steps).await?;
            let mut next = value.clone();
            next.workflow = None;
            match workflow {
                Workflow::Create => next.state = StreamState::Active,
                Workflow::Scale {
                    new_epoch,
                    sealed,
                    created,
                    ..
                } => next.complete_scale(new_epoch, &sealed, &created),
                Workflow::Truncate { cut, delete } => {
                    next.truncation = cut;
                    next.truncated_segments.extend(delete);
                }
                Workflow::Seal => next.state = StreamState::Sealed,
                Workflow::UpdatePolicy => {}
                Workflow::CommitTransactions { rolling, .. } => {
                    if let Some(rolling) = rolling {
                        next.complete_rolling(&rolling);
                    }
                }
                Workflow::Delete => {
                    self.inner.table.remove(key, version).await?;
                    continue;
                }
            }
            // On a conflict the loop reads the record again and redoes the (idempotent) steps.
            self.inner.table.replace(key, &next, version).await?;
        }
    }

    /// The segment-store steps of `workflow`; each may run more than once.
    async fn perform(
        &self,
        record: &StreamRecord,
        workflow: &Workflow,
        steps: &mut usize,
    ) -> Result<(), ControllerError> {
        let (scope, stream) = (record.scope.as_str(), record.name.as_str());
        let policy = policy_of(&record.config);
        let name = |id: i64| qualified_segment_name(scope, stream, id);
        match workflow {
            Workflow::Create => {
                for id in &record.epochs[0].segments {
                    self.step(steps).await;
                    self.create_segment(&name(*id), policy).await?;
                }
            }
            Workflow::Scale {
                sealed, created, ..
            } => {
                for segment in created {
                    self.step(steps).await;
                    self.create_segment(&name(segment.id), policy).await?;
                }
                for id in sealed {
                    self.step(steps).await;
                    self.seal_segment(&name(*id)).await?;
                }
            }
            Workflow::Truncate { cut, delete } => {
                for (id, offset) in cut {
                    self.step(steps).await;
                    let segment = name(*id);
                    let at = self.locate(&segment);
                    match self
                        .inner
                        .client
                        .truncate_segment(at, &segment, *offset, "")
                        .await
                    {
                        Ok(()) | Err(ClientError::NoSuchSegment(_)) => {}
                        Err(error) => return Err(ControllerError::SegmentStore(error)),
                    }
                }
                for id in delete {
                    self.step(steps).await;
                    self.delete_segment(&name(*id)).await?;
                }
            }
            Workflow::Seal => {
                for id in &record.current_epoch().segments {
                    self.step(steps).await;
                    self.seal_segment(&name(*id)).await?;
                }
            }
            Workflow::Delete => {
                for id in record.segments.keys() {
                    if record.truncated_segments.contains(id) {
                        continue;
                    }
                    self.step(steps).await;
                    self.delete_segment(&name(*id)).await?;
                }
            }
            Workflow::UpdatePolicy => {
                for id in &record.current_epoch().segments {
                    self.step(steps).await;
                    let segment = name(*id);
                    let at = self.locate(&segment);
                    self.inner
                        .client
                        .update_segment_policy(at, &segment, policy, "")
                        .await
                        .map_err(ControllerError::SegmentStore)?;
                }
            }
            Workflow::CommitTransactions {
                txns,
                epoch,
                rolling,
            } => {
                self.perform_commit(record, txns, *epoch, rolling.as_ref(), steps)
                    .await?;
            }
        }
        Ok(())
    }

    /// Counts a step; with the crash-test hook set, hangs forever once the count is reached.
    pub(crate) async fn step(&self, steps: &mut usize) {
        if self.inner.config.pause_workflow_after_steps == Some(*steps) {
            tracing::warn!(steps = *steps, "workflow paused by the test hook");
            std::future::pending::<()>().await;
        }
        *steps += 1;
    }

    pub(crate) fn locate(&self, segment: &str) -> std::net::SocketAddr {
        self.inner.config.stores.locate(segment).address
    }

    pub(crate) async fn create_segment(
        &self,
        segment: &str,
        policy: ScalePolicy,
    ) -> Result<(), ControllerError> {
        self.inner
            .client
            .create_segment(self.locate(segment), segment, policy, "")
            .await
            .map(|_| ())
            .map_err(ControllerError::SegmentStore)
    }

    pub(crate) async fn seal_segment(&self, segment: &str) -> Result<(), ControllerError> {
        self.inner
            .client
            .seal_segment(self.locate(segment), segment, "")
            .await
            .map_err(ControllerError::SegmentStore)
    }

    pub(crate) async fn delete_segment(&self, segment: &str) -> Result<(), ControllerError> {
        match self
            .inner
            .client
            .delete_segment(self.locate(segment), segment, "")
            .await
        {
            Ok(()) | Err(ClientError::NoSuchSegment(_)) => Ok(()),
            Err(error) => Err(ControllerError::SegmentStore(error)),
        }
    }

    // ---- queries ------------------------------------------------------------------------

    /// The segment store clients use for a segment of (scope, stream) — any name, including
    /// `<name>_kvtable` pseudo-streams and transaction segments (routed with their parent).
    pub fn endpoint(&self, scope: &str, stream: &str, segment_id: i64) -> &SegmentStoreNode {
        self.inner
            .config
            .stores
            .locate(&qualified_segment_name(scope, stream, segment_id))
    }

    /// What `caller` may do with `resource`: everything when no users are configured, nothing
    /// for a call that carried no credentials when they are (see [`crate::auth`]).
    pub fn permission(
        &self,
        caller: Option<&crate::auth::Caller>,
        resource: &str,
    ) -> crate::auth::Permission {
        let Some(users) = &self.inner.config.users else {
            return crate::auth::Permission::ReadUpdate;
        };
        match caller {
            Some(crate::auth::Caller(user)) => users.permission(user, resource),
            None => crate::auth::Permission::None,
        }
    }

    /// Whether `caller` has `needed` on `resource`; what it has, or why it is refused.
    pub fn authorize(
        &self,
        caller: Option<&crate::auth::Caller>,
        resource: &str,
        needed: crate::auth::Permission,
    ) -> Result<crate::auth::Permission, crate::auth::Denied> {
        let granted = self.permission(caller, resource);
        if granted >= needed {
            return Ok(granted);
        }
        Err(crate::auth::Denied {
            user: caller.map_or_else(|| "the caller".to_owned(), |caller| caller.0.clone()),
            granted,
            resource: resource.to_owned(),
            needed,
        })
    }

    /// A delegation token for the stream, granting everything: empty with auth off.
    pub fn delegation_token(&self, scope: &str, stream: &str) -> Result<String, ControllerError> {
        self.delegation_token_for(scope, stream, crate::auth::Permission::ReadUpdate)
    }

    /// A delegation token for the stream granting `permission` (`READ` or `READ_UPDATE`):
    /// empty with auth off.
    pub fn delegation_token_for(
        &self,
        scope: &str,
        stream: &str,
        permission: crate::auth::Permission,
    ) -> Result<String, ControllerError> {
        let Some(key) = &self.inner.config.token_signing_key else {
            return Ok(String::new());
        };
        sign_token(
            key,
            &crate::auth::resource::stream(scope, stream),
            permission.as_str(),
            self.inner.config.token_lifetime,
        )
        .map_err(|error| ControllerError::Internal(format!("signing a token: {error}")))
    }

    /// The segment client the controller's own requests go through.
    pub(crate) fn segment_client(&self) -> SegmentClient {
        self.inner.client.clone()
    }

    /// Whether `segment_id` is an active segment of the stream.
    pub async fn is_segment_valid(
        &self,
        scope: &str,
        stream: &str,
        segment_id: i64,
    ) -> Result<bool, ControllerError> {
        let record = self.stream(scope, stream).await?;
        Ok(record
            .current_segments()
            .iter()
            .any(|segment| segment.id == segment_id))
    }

    /// Scaling events between two times (ms), for the REST API.
    pub async fn scaling_events(
        &self,
        scope: &str,
        stream: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ScalingEvent>, ControllerError> {
        let record = self.stream(scope, stream).await?;
        let mut events = Vec::new();
        for epoch in &record.epochs {
            if epoch.created_ms < from_ms || epoch.created_ms > to_ms {
                continue;
            }
            let segments = epoch
                .segments
                .iter()
                .filter_map(|id| record.segments.get(id))
                .map(|s| (s.number(), s.created_ms, s.key_start, s.key_end))
                .collect();
            let (mut splits, mut merges) = (0, 0);
            if epoch.epoch > 0 {
                let previous = &record.epochs[epoch.epoch as usize - 1];
                for id in &previous.segments {
                    let successors = record.successors(*id).unwrap_or_default();
                    let here = successors
                        .iter()
                        .filter(|(s, _)| pravaha_types::segment_epoch(s.id) == epoch.epoch)
                        .count();
                    if here > 1 {
                        splits += 1;
                    }
                }
                for id in &epoch.segments {
                    if pravaha_types::segment_epoch(*id) != epoch.epoch {
                        continue;
                    }
                    let predecessors = previous
                        .segments
                        .iter()
                        .filter(|p| {
                            record
                                .successors(**p)
                                .unwrap_or_default()
                                .iter()
                                .any(|(s, _)| s.id == *id)
                        })
                        .count();
                    if predecessors > 1 {
                        merges += 1;
                    }
                }
            }
            events.push(ScalingEvent {
                timestamp_ms: epoch.created_ms,
                segments,
                splits,
                merges,
            });
        }
        Ok(events)
    }
}

// ---- for reader groups and Key-Value Tables (crate::readergroups, crate::subscribers,
// crate::kvtables), which keep their own records in the same table -------------------------

impl Controller {
    /// The metadata table.
    pub(crate) fn records(&self) -> &MetadataTable {
        &self.inner.table
    }

    /// The wall clock records are stamped with, in milliseconds since the Unix epoch.
    pub(crate) fn wall_clock_ms(&self) -> i64 {
        now_ms()
    }

    /// The segment-store client.
    pub(crate) fn segment_store_client(&self) -> &SegmentClient {
        &self.inner.client
    }

    /// The segment store that owns `segment`.
    pub(crate) fn segment_store_of(&self, segment: &str) -> std::net::SocketAddr {
        self.inner.config.stores.locate(segment).address
    }

    /// The lock held in this process while a workflow of the record at `key` runs.
    pub(crate) async fn workflow_lock(&self, key: &str) -> Arc<Mutex<()>> {
        self.lock_for(key).await
    }

    /// Counts a workflow step (where the crash-test hook may stop a workflow).
    pub(crate) async fn workflow_step(&self, steps: &mut usize) {
        self.step(steps).await;
    }

    /// Runs the stream's pending workflow, if any (a stream still being created is finished).
    pub(crate) async fn finish_stream_workflow(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<(), ControllerError> {
        self.drive(&stream_key(scope, stream)).await
    }

    /// For `delete_scope`, right after it marked the scope as being deleted: a scope that still
    /// has reader groups or Key-Value Tables is unmarked and refused (`ScopeNotEmpty`). Their
    /// creation writes its record before it checks the scope, as `create_stream` does.
    pub(crate) async fn refuse_scope_with_groups_or_tables(
        &self,
        scope: &str,
        marked: &Versioned<ScopeRecord>,
    ) -> Result<(), ControllerError> {
        let occupied =
            self.has_reader_groups(scope).await? || self.has_key_value_tables(scope).await?;
        if !occupied {
            return Ok(());
        }
        let mut value = marked.value.clone();
        value.deleting = false;
        // If this fails another request changed the scope meanwhile; it stays usable.
        self.inner
            .table
            .replace(&scope_key(scope), &value, marked.version)
            .await?;
        Err(ControllerError::ScopeNotEmpty(scope.to_owned()))
    }
}

/// The segment client settings of the controller's own requests: with auth on, requests made
/// without a stream's token carry a token of the controller's own that grants every resource
/// (`prn::/*`), signed afresh for each request so that it never runs out.
pub(crate) fn segment_client_config(config: &ControllerConfig) -> ClientConfig {
    let mut client = config.client.clone();
    if let Some(key) = config.token_signing_key.clone() {
        let lifetime = config.token_lifetime;
        client.default_token = Some(Arc::new(move || {
            // HS256 over a fixed claim set cannot fail.
            sign_token(&key, "prn::/*", "READ_UPDATE", lifetime).unwrap_or_default()
        }));
    }
    client
}

/// An HS256 JWT granting READ_UPDATE on `resource` for `lifetime`, as the segment store checks
/// it (`pravaha_segment_server::TokenVerifier`).
fn sign_token(
    key: &[u8],
    resource: &str,
    permission: &str,
    lifetime: Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    let expires = now_ms() / 1000 + i64::try_from(lifetime.as_secs()).unwrap_or(600);
    let claims = serde_json::json!({
        "sub": "pravaha-controller",
        "aud": "segmentstore",
        "exp": expires,
        resource: permission,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
}
