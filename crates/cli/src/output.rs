//! Printing: a table on a terminal, tab-separated plain lines otherwise, JSON with `-m`.

use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;

/// Prints rows as a table (terminal) or plain tab-separated lines (pipe, CI).
pub fn table(tty: bool, header: &[&str], rows: &[Vec<String>]) {
    if tty {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(header.to_vec());
        for r in rows {
            t.add_row(r.clone());
        }
        println!("{t}");
    } else {
        println!("{}", header.join("\t"));
        for r in rows {
            println!("{}", r.join("\t"));
        }
    }
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
