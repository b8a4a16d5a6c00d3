//! Printing results: one JSON object with `--json`, otherwise readable lines.

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
