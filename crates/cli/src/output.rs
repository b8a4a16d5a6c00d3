//! Printing results. With `--json`: one JSON object, or for a listing one object per line
//! (JSON Lines), in the shapes of `calyx_server::manage::views` (what `/admin/v1` answers).
//! Without: `label value` lines, or an aligned table.

use std::fmt;
use std::io::Write;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::Serialize;
use serde_json::Value;

/// Prints `value` as one JSON line, or each `(label, text)` line.
pub fn print(json: bool, value: serde_json::Value, lines: &[(&str, String)]) {
    if json {
        println!("{value}");
    } else {
        for (label, text) in lines {
            println!("{label:<15} {text}");
        }
    }
}

/// Prints one view: a JSON object on one line, or a `field value` line per field, in the
/// view's own order (a map field gets a line per entry, indented).
pub fn show(json: bool, view: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string(view)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{text}")?;
        return Ok(());
    }
    let Ordered(fields) = serde_json::from_str(&text)?;
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (label, value) in fields {
        match value {
            Value::Object(entries) if !entries.is_empty() => {
                writeln!(out, "{label}")?;
                let inner = entries.keys().map(String::len).max().unwrap_or(0);
                for (k, v) in entries {
                    writeln!(out, "  {k:<inner$}  {}", cell(&v))?;
                }
            }
            v => writeln!(out, "{label:<width$}  {}", cell(&v))?,
        }
    }
    Ok(())
}

/// Prints one item of a listing as a JSON line.
pub fn json_line(item: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string(item)?;
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

/// Prints `rows` under `header`, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&head).chain(rows) {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
            if i == last {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// A value as one cell of text: strings bare, lists space-separated, absent or empty as `-`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Array(a) if a.is_empty() => "-".into(),
        Value::Object(o) if o.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// An optional field as a cell.
pub fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".into(), T::to_string)
}

/// A JSON object's fields in the order they were written (`serde_json::Map` sorts them).
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    fields.push(entry);
                }
                Ok(Ordered(fields))
            }
        }
        d.deserialize_map(Fields)
    }
}
