//! Setting a session up (again): locating the segment, connecting, `SetupAppend`, retries with
//! back-off; and, when the segment turns out sealed, learning which events it holds after all.

use std::sync::atomic::Ordering;

use pravaha_wire::{self as wire, Reply, Request};

use super::{Attempt, Link, Outcome, Refresh, Session};
use crate::segment::connection::{Connection, ConnectionError};
use crate::segment::writer::WriterError;
use crate::segment::{next_request_id, Endpoint, LocatorError};

impl Session {
    /// Connects and sets up the session, retrying as the policy allows.
    pub(super) async fn establish(&mut self, mut refresh: Refresh) -> Result<Link, Outcome> {
        self.pipeline.requeue();
        loop {
            self.pause_before_retry()?;
            if self.failures > 0 {
                tokio::time::sleep(self.config.retry.backoff(self.failures)).await;
            }
            let attempt = async {
                let (endpoint, mut connection) = self.open(refresh).await?;
                let last = self
                    .setup_append(&endpoint, &mut connection, refresh.token)
                    .await?;
                Ok::<_, Attempt>((connection, last))
            };
            match attempt.await {
                Ok((connection, last_event_number)) => {
                    self.stats.connections.fetch_add(1, Ordering::Relaxed);
                    self.acknowledge_setup(last_event_number)?;
                    let (reader, writer) = connection.into_split();
                    return Ok(Link { reader, writer });
                }
                Err(Attempt::Retry {
                    cause,
                    refresh: wanted,
                }) => {
                    tracing::debug!(segment = %self.segment, error = %cause, "append setup failed");
                    self.failures += 1;
                    self.last_failure = Some(cause);
                    refresh = wanted;
                }
                Err(Attempt::End(outcome)) => return Err(outcome),
            }
        }
    }

    /// The segment is sealed. Events written on an earlier connection may be in it although
    /// they were not acknowledged: a block from a lost connection can become durable after the
    /// next `AppendSetup` was answered, and its resent copy then finds the segment sealed
    /// (sealing is checked before duplicates). Once the seal is durable the writer's last event
    /// number is final: ask for it and complete what it covers, so that only events not in the
    /// segment are handed back.
    pub(super) async fn settle_sealed(&mut self) -> Outcome {
        if !self.pipeline.written_before_this_connection() {
            // Acks come in order: everything before the refused block was acknowledged.
            return Outcome::Sealed;
        }
        self.failures = 0;
        loop {
            if let Err(outcome) = self.pause_before_retry() {
                return outcome;
            }
            if self.failures > 0 {
                tokio::time::sleep(self.config.retry.backoff(self.failures)).await;
            }
            match self.final_event_number().await {
                Ok(last) => {
                    self.pipeline.requeue();
                    return match self.acknowledge_setup(last) {
                        Ok(()) => Outcome::Sealed,
                        Err(outcome) => outcome,
                    };
                }
                Err(Attempt::Retry { cause, .. }) => {
                    self.failures += 1;
                    self.last_failure = Some(cause);
                }
                Err(Attempt::End(outcome)) => return outcome,
            }
        }
    }

    /// `Err` once the failures since the last progress exhaust the retry policy.
    fn pause_before_retry(&mut self) -> Result<(), Outcome> {
        if self.failures == 0 || self.config.retry.allows_another(self.failures) {
            return Ok(());
        }
        let last = self
            .last_failure
            .take()
            .unwrap_or_else(|| self.protocol("no failure recorded".to_owned()));
        Err(Outcome::Failed(WriterError::RetriesExhausted {
            segment: self.segment.clone(),
            attempts: self.failures,
            last: Box::new(last),
        }))
    }

    /// The writer's last event number in a segment whose seal is durable.
    async fn final_event_number(&self) -> Result<i64, Attempt> {
        let (endpoint, mut connection) = self.open(Refresh::default()).await?;
        let info = Request::GetStreamSegmentInfo(wire::GetStreamSegmentInfo {
            request_id: next_request_id(),
            segment_name: self.segment.clone(),
            delegation_token: self.token(false).await?,
        });
        match self.exchange(&endpoint, &mut connection, &info).await? {
            Reply::StreamSegmentInfo(info) if info.is_sealed => {}
            Reply::StreamSegmentInfo(_) => {
                return Err(Attempt::Retry {
                    cause: self.protocol("the seal is not durable yet".to_owned()),
                    refresh: Refresh::default(),
                })
            }
            other => return Err(self.refusal(other, &endpoint, "GetStreamSegmentInfo")),
        }
        self.setup_append(&endpoint, &mut connection, false).await
    }

    /// Locates the segment and connects.
    async fn open(&self, refresh: Refresh) -> Result<(Endpoint, Connection), Attempt> {
        let endpoint = self
            .locator
            .endpoint(&self.segment, refresh.endpoint)
            .await
            .map_err(|error| self.locate_failure(&error, refresh))?;
        let connection = Connection::connect(&endpoint, &self.config.connection)
            .await
            .map_err(|error| connection_failure(error, refresh))?;
        Ok((endpoint, connection))
    }

    async fn token(&self, refresh: bool) -> Result<String, Attempt> {
        self.locator
            .token(&self.segment, refresh)
            .await
            .map_err(|error| self.locate_failure(&error, Refresh::default()))
    }

    /// `SetupAppend` with this session's writer id: the writer's last event number.
    async fn setup_append(
        &self,
        endpoint: &Endpoint,
        connection: &mut Connection,
        refresh_token: bool,
    ) -> Result<i64, Attempt> {
        let request = Request::SetupAppend(wire::SetupAppend {
            request_id: next_request_id(),
            writer_id: self.writer_id,
            segment: self.segment.clone(),
            delegation_token: self.token(refresh_token).await?,
        });
        match self.exchange(endpoint, connection, &request).await? {
            Reply::AppendSetup(setup) => Ok(setup.last_event_number),
            other => Err(self.refusal(other, endpoint, "SetupAppend")),
        }
    }

    /// One exchange, bounded by the setup time-out.
    async fn exchange(
        &self,
        endpoint: &Endpoint,
        connection: &mut Connection,
        request: &Request,
    ) -> Result<Reply, Attempt> {
        let timeout = self.config.setup_timeout;
        match tokio::time::timeout(timeout, connection.exchange(request)).await {
            Ok(reply) => reply.map_err(|error| connection_failure(error, Refresh::default())),
            Err(_) => Err(Attempt::Retry {
                cause: WriterError::SetupTimeout {
                    segment: self.segment.clone(),
                    endpoint: endpoint.clone(),
                    timeout,
                },
                refresh: Refresh::default(),
            }),
        }
    }

    /// The segment store holds every event of this writer up to `last_event_number`: those are
    /// done (they were sent before; the rest will be sent again).
    fn acknowledge_setup(&mut self, last_event_number: i64) -> Result<(), Outcome> {
        match self.pipeline.acknowledge_setup(last_event_number) {
            Ok(completed) => {
                if completed > 0 {
                    self.failures = 0;
                }
                self.complete_flushes();
                Ok(())
            }
            Err(message) => Err(Outcome::Failed(self.protocol(message))),
        }
    }

    /// What a reply other than the expected one means, for a setup or an append.
    pub(super) fn refusal(&self, reply: Reply, endpoint: &Endpoint, request: &str) -> Attempt {
        let segment = self.segment.clone();
        match reply {
            Reply::SegmentIsSealed(_) => Attempt::End(Outcome::Sealed),
            Reply::NoSuchSegment(_) => Attempt::End(Outcome::NoSuchSegment),
            Reply::WrongHost(_) => Attempt::Retry {
                cause: WriterError::WrongHost {
                    segment,
                    endpoint: endpoint.clone(),
                },
                refresh: Refresh {
                    endpoint: true,
                    token: false,
                },
            },
            // Expired (code 1): ask for a fresh token and retry. Otherwise refused for good.
            Reply::AuthTokenCheckFailed(failed) if failed.error_code == 1 => Attempt::Retry {
                cause: WriterError::TokenExpired(segment),
                refresh: Refresh {
                    endpoint: false,
                    token: true,
                },
            },
            Reply::AuthTokenCheckFailed(failed) => {
                Attempt::End(Outcome::Failed(WriterError::TokenRefused {
                    segment,
                    message: failed.server_stack_trace,
                }))
            }
            Reply::ErrorMessage(error) => Attempt::End(Outcome::Failed(WriterError::Server {
                segment,
                code: error.error_code,
                message: error.message,
            })),
            other => Attempt::End(Outcome::Failed(
                self.protocol(format!("answered {request} with {}", other.name())),
            )),
        }
    }

    fn locate_failure(&self, error: &LocatorError, refresh: Refresh) -> Attempt {
        Attempt::Retry {
            cause: WriterError::Locate {
                segment: self.segment.clone(),
                message: error.to_string(),
            },
            refresh,
        }
    }
}

fn connection_failure(error: ConnectionError, refresh: Refresh) -> Attempt {
    let cause = WriterError::Connection(error);
    if cause.is_retryable() {
        Attempt::Retry { cause, refresh }
    } else {
        Attempt::End(Outcome::Failed(cause))
    }
}
