//! Segments of a stream (current, at an epoch, at a time, successors, where they live) and
//! scaling.

use std::time::{Duration, SystemTime};

use pravaha_controller_api::v1 as api;

use super::types::{
    KeyRange, ScaleStarted, ScaleStatus, ScopedSegment, ScopedStream, SegmentId, SegmentWithRange,
    ServerAddress, StreamCut, StreamSegments, Successors,
};
use super::{ControllerClient, ControllerError, Target};

impl ControllerClient {
    /// The stream's active segments with their key ranges (empty if the stream is sealed), and
    /// a delegation token for the segment store.
    pub async fn get_current_segments(
        &self,
        stream: &ScopedStream,
    ) -> Result<StreamSegments, ControllerError> {
        let reply = self
            .call(
                "getCurrentSegments",
                Target::Stream(stream),
                stream.to_api(),
                |mut api, r| async move { api.get_current_segments(r).await },
            )
            .await?;
        StreamSegments::from_api(reply).ok_or_else(|| malformed("getCurrentSegments"))
    }

    /// The segments of the stream's epoch `epoch`.
    pub async fn get_epoch_segments(
        &self,
        stream: &ScopedStream,
        epoch: u32,
    ) -> Result<StreamSegments, ControllerError> {
        let message = api::GetEpochSegmentsRequest {
            stream_info: Some(stream.to_api()),
            epoch: i32::try_from(epoch).map_err(|_| {
                ControllerError::invalid_argument(format!("epoch {epoch} is above {}", i32::MAX))
            })?,
        };
        let reply = self
            .call(
                "getEpochSegments",
                Target::Stream(stream),
                message,
                |mut api, r| async move { api.get_epoch_segments(r).await },
            )
            .await?;
        StreamSegments::from_api(reply).ok_or_else(|| malformed("getEpochSegments"))
    }

    /// Where the stream starts: the segments at its head and their start offsets (0 unless
    /// the stream was truncated).
    pub async fn get_segments_at_head(
        &self,
        stream: &ScopedStream,
    ) -> Result<StreamCut, ControllerError> {
        self.get_segments(stream, 0).await
    }

    /// The segments active at `time` with the offsets to read them from (the head if the
    /// stream was truncated past that time).
    pub async fn get_segments_at_time(
        &self,
        stream: &ScopedStream,
        time: SystemTime,
    ) -> Result<StreamCut, ControllerError> {
        let since_epoch = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let millis = i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX);
        // 0 would mean "the head"; 1 ms after the Unix epoch finds the first epoch anyway.
        self.get_segments(stream, millis.max(1)).await
    }

    async fn get_segments(
        &self,
        stream: &ScopedStream,
        timestamp_ms: i64,
    ) -> Result<StreamCut, ControllerError> {
        let message = api::GetSegmentsRequest {
            stream_info: Some(stream.to_api()),
            timestamp: timestamp_ms,
        };
        let reply = self
            .call(
                "getSegments",
                Target::Stream(stream),
                message,
                |mut api, r| async move { api.get_segments(r).await },
            )
            .await?;
        let mut cut = StreamCut::new(stream.clone());
        for location in reply.segments {
            let id = location
                .segment_id
                .ok_or_else(|| malformed("getSegments"))?;
            cut.positions
                .insert(SegmentId(id.segment_id), location.offset);
        }
        Ok(cut)
    }

    /// The segments that replaced `segment` when it was sealed by a scale, each with all of
    /// its predecessors; empty while `segment` is active or if its stream was sealed.
    pub async fn get_successors(
        &self,
        segment: &ScopedSegment,
    ) -> Result<Successors, ControllerError> {
        let reply = self
            .call(
                "getSegmentsImmediatelyFollowing",
                Target::Segment(segment),
                segment.to_api(),
                |mut api, r| async move { api.get_segments_immediately_following(r).await },
            )
            .await?;
        Successors::from_api(reply).ok_or_else(|| malformed("getSegmentsImmediatelyFollowing"))
    }

    /// The segment store that serves `segment` (host and port).
    pub async fn get_uri(&self, segment: &ScopedSegment) -> Result<ServerAddress, ControllerError> {
        let reply = self
            .call(
                "getURI",
                Target::Segment(segment),
                segment.to_api(),
                |mut api, r| async move { api.get_uri(r).await },
            )
            .await?;
        let port = u16::try_from(reply.port).map_err(|_| {
            ControllerError::internal(format!("getURI answered port {}", reply.port))
        })?;
        Ok(ServerAddress::new(reply.endpoint, port))
    }

    /// Whether `segment` is one of its stream's active segments.
    pub async fn is_segment_open(&self, segment: &ScopedSegment) -> Result<bool, ControllerError> {
        let reply = self
            .call(
                "isSegmentValid",
                Target::Segment(segment),
                segment.to_api(),
                |mut api, r| async move { api.is_segment_valid(r).await },
            )
            .await?;
        Ok(reply.response)
    }

    /// Whether `cut` is a valid position in its stream (covers the key space, not before the
    /// head).
    pub async fn is_stream_cut_valid(&self, cut: &StreamCut) -> Result<bool, ControllerError> {
        let reply = self
            .call(
                "isStreamCutValid",
                Target::Stream(&cut.stream),
                cut.to_api(),
                |mut api, r| async move { api.is_stream_cut_valid(r).await },
            )
            .await?;
        Ok(reply.response)
    }

    /// The delegation token segment stores ask for with this stream's segments (empty when the
    /// controller runs without authentication).
    pub async fn get_delegation_token(
        &self,
        stream: &ScopedStream,
    ) -> Result<String, ControllerError> {
        let reply = self
            .call(
                "getDelegationToken",
                Target::Stream(stream),
                stream.to_api(),
                |mut api, r| async move { api.get_delegation_token(r).await },
            )
            .await?;
        Ok(reply.delegation_token)
    }

    // ---- scaling --------------------------------------------------------------------------

    /// Starts a scale that seals `sealed` (active segments) and creates one segment per range
    /// of `new_ranges` (together covering exactly the sealed segments' ranges). It completes in
    /// the background; see [`Self::check_scale`], or use [`Self::scale_stream`] to wait.
    pub async fn start_scale(
        &self,
        stream: &ScopedStream,
        sealed: &[SegmentId],
        new_ranges: &[KeyRange],
    ) -> Result<ScaleStarted, ControllerError> {
        use api::scale_response::ScaleStreamStatus as S;
        let scale_timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let message = api::ScaleRequest {
            stream_info: Some(stream.to_api()),
            sealed_segments: sealed.iter().map(|id| id.0).collect(),
            new_key_ranges: new_ranges
                .iter()
                .map(|range| api::scale_request::KeyRangeEntry {
                    start: range.low,
                    end: range.high,
                })
                .collect(),
            scale_timestamp,
        };
        let reply = self
            .call(
                "scale",
                Target::Stream(stream),
                message,
                |mut api, r| async move { api.scale(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Started) => {}
            Ok(S::PreconditionFailed) => {
                return Err(ControllerError::PreconditionFailed {
                    message: format!(
                        "scale of {stream} refused: the stream is not active, another change \
                         is in progress, or the sealed segments and new ranges do not match \
                         its current segments"
                    ),
                })
            }
            _ => return Err(ControllerError::failure("scale", reply.status)),
        }
        let segments = reply
            .segments
            .into_iter()
            .map(SegmentWithRange::from_api)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| malformed("scale"))?;
        let epoch = u32::try_from(reply.epoch).map_err(|_| {
            ControllerError::internal(format!("scale answered epoch {}", reply.epoch))
        })?;
        Ok(ScaleStarted { epoch, segments })
    }

    /// Whether the scale started from `epoch` has completed.
    pub async fn check_scale(
        &self,
        stream: &ScopedStream,
        epoch: u32,
    ) -> Result<ScaleStatus, ControllerError> {
        use api::scale_status_response::ScaleStatus as S;
        let message = api::ScaleStatusRequest {
            stream_info: Some(stream.to_api()),
            epoch: i32::try_from(epoch).unwrap_or(i32::MAX),
        };
        let reply = self
            .call(
                "checkScale",
                Target::Stream(stream),
                message,
                |mut api, r| async move { api.check_scale(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Success) => Ok(ScaleStatus::Done),
            Ok(S::InProgress) => Ok(ScaleStatus::InProgress),
            Ok(S::InvalidInput) => Err(ControllerError::invalid_argument(format!(
                "no scale of {stream} started from epoch {epoch}"
            ))),
            _ => Err(ControllerError::failure("checkScale", reply.status)),
        }
    }

    /// Scales the stream (see [`Self::start_scale`]) and waits until the scale has completed,
    /// polling with the retry policy's back-off for at most the request time-out times the
    /// retry attempts. Returns the new segments.
    pub async fn scale_stream(
        &self,
        stream: &ScopedStream,
        sealed: &[SegmentId],
        new_ranges: &[KeyRange],
    ) -> Result<Vec<SegmentWithRange>, ControllerError> {
        let started = self.start_scale(stream, sealed, new_ranges).await?;
        let policy = *self.config().retry_policy();
        let limit = self.config().request_timeout() * policy.max_attempts.max(1);
        let deadline = tokio::time::Instant::now() + limit;
        let mut polls = 0u32;
        while self.check_scale(stream, started.epoch).await? == ScaleStatus::InProgress {
            polls = polls.saturating_add(1);
            let pause = policy.backoff(polls);
            if tokio::time::Instant::now() + pause > deadline {
                return Err(ControllerError::TimedOut {
                    message: format!(
                        "the scale of {stream} from epoch {} did not complete within {limit:?}",
                        started.epoch
                    ),
                });
            }
            tokio::time::sleep(pause).await;
        }
        Ok(started.segments)
    }
}

fn malformed(rpc: &str) -> ControllerError {
    ControllerError::internal(format!("{rpc} answered a reply without a segment id"))
}
