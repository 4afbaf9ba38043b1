//! Output: plain ASCII tables as the tour prints them, and number, duration
//! and byte formatting.

use std::fmt::Display;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use comfy_table::{CellAlignment, ContentArrangement};

use super::Res;

/// A plain ASCII table, as the tour prints them: a `-+-` rule under the
/// header, ` | ` between columns.
pub(super) struct Table(comfy_table::Table);

impl Table {
    pub(super) fn new(header: &[&str], numeric: &[usize]) -> Self {
        let mut table = comfy_table::Table::new();
        table
            .load_preset("     -+ |          ")
            .set_content_arrangement(ContentArrangement::Disabled)
            .force_no_tty()
            .set_header(header.to_vec());
        for &index in numeric {
            if let Some(column) = table.column_mut(index) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        Table(table)
    }

    pub(super) fn row<I>(&mut self, cells: I)
    where
        I: IntoIterator,
        I::Item: Display,
    {
        let cells: Vec<String> = cells.into_iter().map(|c| c.to_string()).collect();
        self.0.add_row(cells);
    }

    pub(super) fn print(&self) -> Res {
        for line in self.0.lines() {
            out!("  {}", line.trim_end());
        }
        Ok(())
    }
}

/// `1,234,567`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

pub(super) fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Up to `max` bytes of `bytes` as text: invalid UTF-8 replaced, control
/// characters escaped, `...` when cut.
pub(super) fn show_bytes(bytes: &[u8], max: usize) -> String {
    let cut = bytes.len() > max;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]);
    let mut out: String = text
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if cut {
        out.push_str("...");
    }
    out
}

/// The whole file; an error names the path.
pub(super) fn read_file(path: &Path) -> Res<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()).into())
}
