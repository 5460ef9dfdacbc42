//! Printing results: aligned tables for people, JSON for scripts, payloads as text or base64.

use std::io::Write;

use base64::Engine;

/// A table printed with its columns aligned (two spaces apart), a header line first.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|name| (*name).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }

    /// The table as text, one line per row; trailing spaces trimmed.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (cell, width) in row.iter().zip(&widths) {
                line.push_str(&format!("{cell:<width$}  "));
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }

    pub fn print(&self) {
        print(&self.render());
    }
}

/// Prints `text` on stdout; a closed stdout (`| head`) ends the process quietly.
pub fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Prints `value` as one line of JSON.
pub fn json(value: &serde_json::Value) {
    print(&format!("{value}\n"));
}

/// Bytes as JSON fields: `{name: text}` when they are UTF-8, else `{name_base64: ...}`.
pub fn bytes_field(
    object: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    bytes: &[u8],
) {
    match std::str::from_utf8(bytes) {
        Ok(text) => object.insert(name.to_owned(), text.into()),
        Err(_) => object.insert(
            format!("{name}_base64"),
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into(),
        ),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let mut table = Table::new(&["NAME", "SEGMENTS"]);
        table.row(vec!["orders".into(), "2".into()]);
        table.row(vec!["x".into(), "10".into()]);
        assert_eq!(table.render(), "NAME    SEGMENTS\norders  2\nx       10\n");
    }

    #[test]
    fn bytes_are_text_or_base64() {
        let mut object = serde_json::Map::new();
        bytes_field(&mut object, "payload", b"hi");
        bytes_field(&mut object, "value", &[0xff, 0x00]);
        assert_eq!(
            serde_json::Value::Object(object).to_string(),
            r#"{"payload":"hi","value_base64":"/wA="}"#
        );
    }
}
