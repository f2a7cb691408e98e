//! How a JSON answer is printed: as JSON for programs (stdout not a terminal), as a table for
//! people.

use std::io::IsTerminal as _;

use serde_json::Value;

/// The output format of commands that print an API answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Pretty-printed JSON.
    Json,
    /// A table: one row per element of a list, or one per field of an object.
    Table,
}

impl Format {
    /// The format asked for, or the one stdout suits.
    pub fn resolve(asked: Option<Format>) -> Format {
        asked.unwrap_or(if std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Json
        })
    }
}

/// Prints `value` in `format`.
pub fn print(value: &Value, format: Format) {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Format::Table => print!("{}", table(value)),
    }
}

/// A cell: strings bare, everything else as compact JSON, cut to keep rows on one line.
fn cell(value: Option<&Value>) -> String {
    const WIDTH: usize = 40;
    let text = match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let text = text.replace(['\n', '\r', '\t'], " ");
    if text.chars().count() > WIDTH {
        let cut: String = text.chars().take(WIDTH - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn render(header: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// The table of `value`: a list of objects has a column per key (in order of first appearance),
/// an object a row per field; anything else is printed as JSON.
pub fn table(value: &Value) -> String {
    match value {
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            let mut columns: Vec<String> = Vec::new();
            for item in items.iter().filter_map(Value::as_object) {
                for key in item.keys() {
                    if !columns.contains(key) {
                        columns.push(key.clone());
                    }
                }
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|item| columns.iter().map(|c| cell(item.get(c))).collect())
                .collect();
            render(&columns, &rows)
        }
        Value::Object(fields) => {
            let rows: Vec<Vec<String>> = fields
                .iter()
                .map(|(k, v)| vec![k.clone(), cell(Some(v))])
                .collect();
            render(&["field".into(), "value".into()], &rows)
        }
        other => format!(
            "{}\n",
            serde_json::to_string_pretty(other).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_objects_is_a_column_per_key() {
        let value = serde_json::json!([{"id": 1, "name": "a"}, {"id": 22, "extra": [1]}]);
        assert_eq!(table(&value), "id  name  extra\n1   a\n22        [1]\n");
    }
}
