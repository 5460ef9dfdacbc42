//! Segments and stream cuts on the command line.
//!
//! A segment is written `N.#epoch.E` (as `stream info` prints it) or as a plain number `N`: the
//! current segment numbered `N` if there is one, else the 64-bit segment id `N` (which, for the
//! segments of epoch 0, is their number). A stream cut is a JSON object from segment to offset
//! (`{"0.#epoch.0": 120, "1.#epoch.0": 0}`, what `stream info --json` prints as `head` and
//! `tail`) or a list `SEGMENT:OFFSET,...`.

use std::collections::BTreeMap;

use pravaha_client::controller::types::{ScopedStream, SegmentId, StreamCut};

use super::Failure;

/// The segment `text` names; plain numbers are looked up among `current` first.
pub fn parse_segment(text: &str, current: &[SegmentId]) -> Result<SegmentId, Failure> {
    let text = text.trim();
    let invalid = || {
        Failure::invalid(format!(
            "{text:?} is not a segment: write N.#epoch.E (as `pravaha stream info` prints it) or N"
        ))
    };
    if let Some((number, epoch)) = text.split_once(".#epoch.") {
        let number: u32 = number.parse().map_err(|_| invalid())?;
        let epoch: u32 = epoch.parse().map_err(|_| invalid())?;
        return Ok(SegmentId::new(epoch, number));
    }
    let number: i64 = text.parse().map_err(|_| invalid())?;
    if number < 0 {
        return Err(invalid());
    }
    Ok(current
        .iter()
        .copied()
        .find(|id| i64::from(id.number()) == number)
        .unwrap_or(SegmentId(number)))
}

/// A stream cut of `stream` from JSON or `SEGMENT:OFFSET,...`.
pub fn parse_cut(
    text: &str,
    stream: &ScopedStream,
    current: &[SegmentId],
) -> Result<StreamCut, Failure> {
    let mut cut = StreamCut::new(stream.clone());
    let text = text.trim();
    if text.starts_with('{') {
        let object: BTreeMap<String, i64> = serde_json::from_str(text).map_err(|error| {
            Failure::invalid(format!(
                "the stream cut is not a JSON object of segment to offset: {error}"
            ))
        })?;
        for (segment, offset) in object {
            insert(&mut cut, parse_segment(&segment, current)?, offset)?;
        }
    } else {
        for part in text.split(',').filter(|part| !part.trim().is_empty()) {
            let Some((segment, offset)) = part.rsplit_once(':') else {
                return Err(Failure::invalid(format!(
                    "{part:?} is not SEGMENT:OFFSET (e.g. 0:120,1:0 or a JSON object)"
                )));
            };
            let offset: i64 = offset.trim().parse().map_err(|_| {
                Failure::invalid(format!("{offset:?} in {part:?} is not an offset"))
            })?;
            insert(&mut cut, parse_segment(segment, current)?, offset)?;
        }
    }
    if cut.positions.is_empty() {
        return Err(Failure::invalid("the stream cut names no segment"));
    }
    Ok(cut)
}

fn insert(cut: &mut StreamCut, segment: SegmentId, offset: i64) -> Result<(), Failure> {
    if offset < 0 {
        return Err(Failure::invalid(format!(
            "offset {offset} of segment {segment} is negative"
        )));
    }
    if cut.positions.insert(segment, offset).is_some() {
        return Err(Failure::invalid(format!(
            "segment {segment} appears twice in the stream cut"
        )));
    }
    Ok(())
}

/// The cut as JSON: segment name to offset.
pub fn cut_json(cut: &StreamCut) -> serde_json::Value {
    cut.positions
        .iter()
        .map(|(id, offset)| (id.to_string(), serde_json::Value::from(*offset)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The cut as `SEGMENT:OFFSET,...` (what `--from` and `stream truncate` take).
pub fn cut_text(cut: &StreamCut) -> String {
    let parts: Vec<String> = cut
        .positions
        .iter()
        .map(|(id, offset)| format!("{id}:{offset}"))
        .collect();
    if parts.is_empty() {
        "(none)".to_owned()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_parse_in_both_forms() {
        let current = [SegmentId::new(1, 2), SegmentId::new(1, 3)];
        assert_eq!(parse_segment("2", &current).unwrap(), SegmentId::new(1, 2));
        assert_eq!(parse_segment("0", &current).unwrap(), SegmentId::new(0, 0));
        assert_eq!(
            parse_segment("4.#epoch.2", &current).unwrap(),
            SegmentId::new(2, 4)
        );
        assert!(parse_segment("x", &current).is_err());
        assert!(parse_segment("-1", &current).is_err());
    }

    #[test]
    fn cuts_parse_from_json_and_lists_and_print_back() {
        let stream = ScopedStream::new("s", "x");
        let listed = parse_cut("0:120, 1.#epoch.0:0", &stream, &[]).unwrap();
        let json = parse_cut(r#"{"0.#epoch.0": 120, "1": 0}"#, &stream, &[]).unwrap();
        assert_eq!(listed, json);
        assert_eq!(
            cut_json(&listed).to_string(),
            r#"{"0.#epoch.0":120,"1.#epoch.0":0}"#
        );
        assert_eq!(cut_text(&listed), "0.#epoch.0:120,1.#epoch.0:0");
        assert_eq!(parse_cut(&cut_text(&listed), &stream, &[]).unwrap(), listed);
        assert!(parse_cut("0:-1", &stream, &[]).is_err());
        assert!(parse_cut("0:1,0:2", &stream, &[]).is_err());
        assert!(parse_cut("", &stream, &[]).is_err());
        assert!(parse_cut("{\"0\": \"x\"}", &stream, &[]).is_err());
    }
}
