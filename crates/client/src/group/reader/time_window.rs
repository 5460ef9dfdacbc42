//! An [`EventReader`]'s view of its group's progress in event time: the time window of a
//! stream at the group's position (Java's `EventStreamReader.getCurrentTimeWindow`).

use super::EventReader;
use crate::controller::types::ScopedStream;
use crate::group::{state, GroupError, ReaderGroupConfig};
use crate::watermark::{TimeWindow, TimeWindowTracker, WatermarkReader};

impl EventReader {
    /// The [`TimeWindow`] of event time that the group's position in `stream` lies in, from
    /// the stream's watermarks (see [`crate::watermark`]): every event still to be read has
    /// an event time above `lower` (once the group has passed a watermark), and everything
    /// read was written before writers noted times above `upper` (unless the group is near
    /// the head of the stream: `upper` is `None`).
    ///
    /// The position is the group's, as Java's readers take it: this reader's segments at the
    /// events it handed out, the others' segments where their readers last recorded them
    /// (see [`ReaderSettings::position_update_interval`](super::ReaderSettings)), unassigned
    /// segments where reading resumes. The watermarks are read as far as needed each call,
    /// without waiting for new ones, and followed from call to call (one tracker per stream).
    /// A stream without watermarks (writers never noted a time) answers an empty window; a
    /// stream the group does not read is refused ([`GroupError::StreamNotRead`]).
    ///
    /// ```no_run
    /// # async fn example(mut reader: pravaha_client::EventReader) -> Result<(), Box<dyn std::error::Error>> {
    /// use pravaha_client::controller::types::ScopedStream;
    ///
    /// let orders = ScopedStream::new("shop", "orders");
    /// while let Some(event) = reader.next_event().await? {
    ///     let window = reader.current_time_window(&orders).await?;
    ///     if let Some(lower) = window.lower {
    ///         // No event with an event time at or below `lower` is still to come.
    ///         println!("{} bytes; complete up to {lower}", event.payload.len());
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn current_time_window(
        &mut self,
        stream: &ScopedStream,
    ) -> Result<TimeWindow, GroupError> {
        let (read, mut positions) = {
            let mut sync = self.group.state.lock().await;
            sync.fetch_updates().await?;
            let config = state::config(&*sync)?
                .ok_or_else(|| GroupError::NoSuchGroup(self.group.scoped_name()))?;
            let read = ReaderGroupConfig::from_state(&config, None)
                .streams()
                .any(|read| read == stream);
            let mut positions = state::unassigned(&*sync)?;
            for owned in state::assigned(&*sync)?.into_values() {
                positions.extend(owned);
            }
            (read, positions)
        };
        if !read {
            return Err(GroupError::StreamNotRead {
                group: self.group.scoped_name(),
                stream: stream.clone(),
            });
        }
        // Fresher than what this reader last recorded.
        positions.extend(self.positions());
        // Segments read to their end are gone: a stream read to its end has passed every
        // watermark.
        positions.retain(|segment, _| segment.stream == *stream);
        let controller = self.group.controller.clone();
        let tracker = self.time_windows.entry(stream.clone()).or_insert_with(|| {
            TimeWindowTracker::new(WatermarkReader::new(controller, stream.clone()))
        });
        Ok(tracker.advance_to(&positions).await?)
    }
}
