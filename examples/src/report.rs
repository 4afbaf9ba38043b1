//! Output helpers shared by every chapter: headings, tables, takeaways, and
//! the checks that make a chapter fail loudly when a crate disagrees with it.
//!
//! Everything prints plain ASCII to stdout, so the tour reads the same in a
//! terminal, a pipe, a CI log or a README.

use std::error::Error;
use std::fmt::{Debug, Display};

use comfy_table::{CellAlignment, ContentArrangement};

/// `println!` that ends the tour quietly (exit 0) when stdout is closed, as
/// when the output is piped into `head`, instead of panicking on the broken
/// pipe the way `println!` does.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(error) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::report::stdout_failed(error);
        }
    }};
}
pub(crate) use out;

/// Where [`out!`] goes when a write to stdout fails.
pub(crate) fn stdout_failed(error: std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to stdout: {error}");
    std::process::exit(1);
}

/// What a chapter and its steps return: an error stops the tour.
pub(crate) type Res<T = ()> = Result<T, Box<dyn Error>>;

/// Width of the rule around a chapter heading.
const RULE_WIDTH: usize = 78;

/// A plain ASCII table: a `-+-` rule under the header and ` | ` between
/// columns, no outer border (the order of characters is comfy-table's
/// `TableComponent` order; a space means "draw nothing").
const PRESET: &str = "     -+ |          ";

/// Prints a chapter's banner.
pub(crate) fn chapter(name: &str, title: &str) {
    let rule = "=".repeat(RULE_WIDTH);
    out!("{rule}");
    out!("{name}: {title}");
    out!("{rule}");
}

/// Prints a section heading, underlined.
pub(crate) fn section(title: &str) {
    out!();
    out!("{title}");
    out!("{}", "-".repeat(title.chars().count()));
}

/// Prose lines wrap at this many columns.
const TEXT_WIDTH: usize = 100;

/// Prints a paragraph of prose, set off by a blank line and wrapped at
/// [`TEXT_WIDTH`] columns (explicit `\n`s start a new line).
pub(crate) fn note(text: &str) {
    out!();
    for paragraph in text.lines() {
        for line in wrap(paragraph, TEXT_WIDTH) {
            out!("{line}");
        }
    }
}

/// Prints `text` verbatim, indented: an error message, a value.
pub(crate) fn quote(text: &str) {
    for line in text.lines() {
        out!("    {line}");
    }
}

/// Prints the one-line lesson of a section.
pub(crate) fn takeaway(text: &str) {
    out!();
    out!("=> {text}");
}

/// Greedy word wrap; a word longer than `width` gets a line of its own.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// A table under construction: header first, then rows, then
/// [`print`](Self::print).
pub(crate) struct Table {
    inner: comfy_table::Table,
}

impl Table {
    /// A table with these column headings, every column left-aligned.
    pub(crate) fn new(header: &[&str]) -> Self {
        let mut inner = comfy_table::Table::new();
        inner
            .load_preset(PRESET)
            // Never wrap to the terminal's width: the output must not depend on it.
            .set_content_arrangement(ContentArrangement::Disabled)
            .force_no_tty()
            .set_header(header.to_vec());
        Self { inner }
    }

    /// Right-aligns the columns at these indices (numbers, timestamps).
    pub(crate) fn numeric(mut self, columns: &[usize]) -> Self {
        for &index in columns {
            if let Some(column) = self.inner.column_mut(index) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        self
    }

    /// Appends a row, one cell per column.
    pub(crate) fn row<I>(&mut self, cells: I) -> &mut Self
    where
        I: IntoIterator,
        I::Item: Display,
    {
        let cells: Vec<String> = cells.into_iter().map(|cell| cell.to_string()).collect();
        self.inner.add_row(cells);
        self
    }

    /// Prints the table, set off by a blank line and indented two spaces.
    pub(crate) fn print(&self) {
        out!();
        for line in self.inner.lines() {
            out!("  {}", line.trim_end());
        }
    }
}

/// `Ok` when `actual == expected`; otherwise an error naming `what` and both
/// values, so the tour stops instead of printing a wrong story.
pub(crate) fn check_eq<T>(what: &str, actual: &T, expected: &T) -> Result<(), Box<dyn Error>>
where
    T: PartialEq + Debug + ?Sized,
{
    if actual == expected {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected:?}, got {actual:?}").into())
    }
}

/// `Ok` when `condition` holds; otherwise an error saying `what` failed.
pub(crate) fn check(what: &str, condition: bool) -> Result<(), Box<dyn Error>> {
    if condition {
        Ok(())
    } else {
        Err(format!("check failed: {what}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_breaks_between_words_within_the_width() {
        assert_eq!(wrap("aa bb cc dd", 5), ["aa bb", "cc dd"]);
        assert_eq!(wrap("aaaaaaa b", 5), ["aaaaaaa", "b"]);
        assert_eq!(wrap("", 5), [""]);
    }
}
