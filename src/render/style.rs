//! Colour on a terminal only: decided once (`--color`, NO_COLOR, isatty) and applied by the
//! renderers through [`Style`].

use comfy_table::{Cell, Color, Table, presets};
use std::io::IsTerminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// `choice` is `auto`, `always` or `never`; auto means stdout is a terminal and NO_COLOR
    /// is unset or empty (https://no-color.org).
    pub fn from_choice(choice: &str) -> Style {
        let color = match choice {
            "always" => true,
            "never" => false,
            _ => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        };
        Style { color }
    }

    pub fn plain() -> Style {
        Style { color: false }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    pub fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn cyan(&self, s: &str) -> String {
        self.paint("36", s)
    }

    /// A table with a header row, styled for a terminal or for plain text.
    pub fn table(&self, header: &[&str]) -> Table {
        let mut t = Table::new();
        t.load_style(presets::UTF8_FULL_CONDENSED);
        if self.color {
            t.enforce_styling();
            t.set_header(header.iter().map(|h| Cell::new(h).fg(Color::Cyan)));
        } else {
            t.force_no_tty();
            t.set_header(header.iter().map(Cell::new));
        }
        t
    }

    /// A cell coloured red when `alert` holds.
    pub fn cell(&self, text: impl ToString, alert: bool) -> Cell {
        let c = Cell::new(text.to_string());
        if self.color && alert {
            c.fg(Color::Red)
        } else {
            c
        }
    }
}
