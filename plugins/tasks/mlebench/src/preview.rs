//! Bounded previews of the public data: a file tree, CSV schemas (types, ranges, examples,
//! missing values) from each file's first rows, and the submission format.

use sophon_grading::table::{Column, Limits, Table};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Most entries listed in the file tree and `public-files`.
const MAX_FILES: usize = 200;
/// Most CSV files given a schema.
const MAX_SCHEMAS: usize = 6;
/// Rows of each CSV read for its schema.
const SCHEMA_ROWS: usize = 2000;
/// Longest schema input read from one file.
const SCHEMA_BYTES: u64 = 8 << 20;
/// Files up to this size have their lines counted exactly.
const COUNT_LIMIT: u64 = 512 << 20;
/// Longest preview, in bytes.
const MAX_PREVIEW_BYTES: usize = 24 * 1024;

/// `text` cut to at most `max` bytes, keeping its head and tail.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let half = max / 2;
    let head_end = (0..=half)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let tail_start = (text.len() - half..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    format!(
        "{}\n[… {} bytes elided …]\n{}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
}

/// Most files looked at for the tree's patterns; beyond, the tree says how many more.
const MAX_WALKED: usize = 500_000;
/// Files of one pattern from which it is shown once instead of file by file.
const PATTERN_MIN_FILES: usize = 3;

/// Every file under `root` (relative paths, sorted, at most `limit`) with sizes, and the total.
fn walk(root: &Path, limit: usize) -> (Vec<(String, u64)>, usize) {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    let mut total = 0;
    while let Some(rel) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&rel)) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = rel.join(entry.file_name());
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else {
                total += 1;
                if files.len() < limit {
                    files.push((path.display().to_string(), meta.len()));
                }
            }
        }
    }
    files.sort();
    (files, total)
}

pub fn file_list(root: &Path) -> Vec<String> {
    walk(root, MAX_FILES)
        .0
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

/// The shape of a path with its varying parts named: a word of a file or folder name (words
/// are split at `_`, `-` and the extension's dot) that is an id (6 or more hex digits, one of
/// them a decimal digit) becomes `{id}`, other runs of digits `{n}`.
/// `test/17/geometry.xyz` → `test/{n}/geometry.xyz`, `img_00a3c1f2.jpg` → `img_{id}.jpg`.
pub fn pattern(path: &str) -> String {
    let word = |w: &str| -> String {
        let id_like = w.len() >= 6
            && w.chars().any(|c| c.is_ascii_digit())
            && w.chars().all(|c| c.is_ascii_hexdigit());
        if id_like {
            return "{id}".to_string();
        }
        let mut out = String::new();
        let mut in_digits = false;
        for c in w.chars() {
            match (c.is_ascii_digit(), in_digits) {
                (true, false) => out.push_str("{n}"),
                (true, true) => {}
                (false, _) => out.push(c),
            }
            in_digits = c.is_ascii_digit();
        }
        out
    };
    let component = |part: &str| -> String {
        let (stem, ext) = match part.find('.') {
            Some(0) | None => (part, ""),
            Some(i) => part.split_at(i),
        };
        let mut out = String::new();
        for piece in stem.split_inclusive(['_', '-']) {
            let (w, sep) = match piece.strip_suffix(['_', '-']) {
                Some(w) => (w, &piece[w.len()..]),
                None => (piece, ""),
            };
            out.push_str(&word(w));
            out.push_str(sep);
        }
        out + ext
    };
    path.split('/').map(component).collect::<Vec<_>>().join("/")
}

/// The file tree as lines: each file, except that the files sharing a [`pattern`] with
/// [`PATTERN_MIN_FILES`] or more others are one line (the pattern, how many, their size, two
/// examples). At most [`MAX_FILES`] lines.
fn tree_lines(files: &[(String, u64)]) -> Vec<String> {
    let mut groups: std::collections::BTreeMap<String, Vec<&(String, u64)>> = Default::default();
    for file in files {
        groups.entry(pattern(&file.0)).or_default().push(file);
    }
    let mut lines = Vec::new();
    for (shape, members) in &groups {
        if members.len() >= PATTERN_MIN_FILES {
            let bytes = members.iter().map(|(_, s)| s).sum::<u64>();
            lines.push(format!(
                "{shape} ({} files, {} in all, e.g. {}, {})",
                members.len(),
                human(bytes),
                members[0].0,
                members[members.len() - 1].0
            ));
        } else {
            lines.extend(
                members
                    .iter()
                    .map(|(path, size)| format!("{path} ({})", human(*size))),
            );
        }
    }
    lines.sort();
    if lines.len() > MAX_FILES {
        let more = lines.len() - MAX_FILES;
        lines.truncate(MAX_FILES);
        lines.push(format!("… and {more} more entries"));
    }
    lines
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// Data lines of a CSV (lines after the header, blank ones excluded); `None` if too big.
fn count_rows(path: &Path, size: u64) -> Option<u64> {
    if size > COUNT_LIMIT {
        return None;
    }
    let mut reader = BufReader::new(std::fs::File::open(path).ok()?);
    let mut lines = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            break;
        }
        if line.iter().any(|b| !b.is_ascii_whitespace()) {
            lines += 1;
        }
    }
    Some(lines.saturating_sub(1))
}

/// The first [`SCHEMA_ROWS`] rows of a CSV as a table.
fn head_table(path: &Path) -> Option<Table> {
    let file = std::fs::File::open(path).ok()?;
    let mut text = Vec::new();
    file.take(SCHEMA_BYTES).read_to_end(&mut text).ok()?;
    // Keep whole lines only, at most SCHEMA_ROWS + 1 of them.
    let mut end = 0;
    for (n, (i, _)) in text
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .enumerate()
    {
        end = i + 1;
        if n >= SCHEMA_ROWS {
            break;
        }
    }
    if end == 0 {
        end = text.len();
    }
    Table::read(&text[..end], Limits::default()).ok()
}

fn column_summary(name: &str, column: &Column) -> String {
    let rows = column.len();
    match column {
        Column::Int(v) => {
            let (min, max) = (v.iter().min(), v.iter().max());
            let distinct = {
                let mut d = v.clone();
                d.sort_unstable();
                d.dedup();
                d.len()
            };
            format!(
                "{name}: integer, range {}..{}, {distinct} distinct",
                min.map_or("-".into(), |m| m.to_string()),
                max.map_or("-".into(), |m| m.to_string())
            )
        }
        Column::Float(v) => {
            let present: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            let missing = rows - present.len();
            let min = present.iter().copied().fold(f64::INFINITY, f64::min);
            let max = present.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = present.iter().sum::<f64>() / present.len().max(1) as f64;
            if present.is_empty() {
                format!("{name}: all missing")
            } else {
                format!("{name}: float, range {min}..{max}, mean {mean:.4}, {missing} missing")
            }
        }
        Column::Bool(v) => {
            let trues = v.iter().filter(|b| **b).count();
            format!("{name}: boolean, {trues} true / {} false", rows - trues)
        }
        Column::Text(v) => {
            let missing = v.iter().filter(|s| s.is_none()).count();
            let mut distinct: Vec<&str> = v.iter().flatten().map(String::as_str).collect();
            distinct.sort_unstable();
            distinct.dedup();
            let examples: Vec<String> = distinct
                .iter()
                .take(3)
                .map(|s| {
                    let short: String = s.chars().take(40).collect();
                    format!("{short:?}")
                })
                .collect();
            // Measured lengths tell prose (a text task) from codes and categories.
            let present = (rows - missing).max(1) as f64;
            let chars = v.iter().flatten().map(|s| s.chars().count()).sum::<usize>() as f64;
            let words = v
                .iter()
                .flatten()
                .map(|s| s.split_whitespace().count())
                .sum::<usize>() as f64;
            format!(
                "{name}: text, {} distinct, {missing} missing, mean {:.0} chars / {:.1} words, e.g. {}",
                distinct.len(),
                chars / present,
                words / present,
                examples.join(", ")
            )
        }
    }
}

/// Largest JSON file parsed for its shape.
const JSON_BYTES: u64 = 8 << 20;

/// A JSON value's shape: types, keys and lengths, at most `depth` levels deep.
fn json_shape(value: &sophon_sdk::json::Value, depth: usize) -> String {
    use sophon_sdk::json::Value;
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "boolean".into(),
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer".into(),
        Value::Number(_) => "float".into(),
        Value::String(s) => {
            let short: String = s.chars().take(30).collect();
            format!("string (e.g. {short:?})")
        }
        Value::Array(items) if depth == 0 => format!("array of {}", items.len()),
        Value::Array(items) => match items.first() {
            Some(first) => format!(
                "array of {} × {}",
                items.len(),
                json_shape(first, depth - 1)
            ),
            None => "empty array".into(),
        },
        Value::Object(map) if depth == 0 => format!("object with {} keys", map.len()),
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .take(20)
                .map(|(k, v)| format!("{k}: {}", json_shape(v, depth - 1)))
                .collect();
            let more = map.len().saturating_sub(20);
            let more = if more > 0 {
                format!(", … {more} more")
            } else {
                String::new()
            };
            format!("{{{}{more}}}", fields.join(", "))
        }
    }
}

/// A JSON (or JSON Lines) file's shape, bounded; unreadable or huge files say so.
fn json_summary(path: &Path, size: u64) -> String {
    let lines = path.extension().is_some_and(|e| e == "jsonl");
    if lines {
        let Ok(file) = std::fs::File::open(path) else {
            return "unreadable".into();
        };
        let first = BufReader::new(file.take(JSON_BYTES)).lines().next();
        return match first
            .and_then(Result::ok)
            .map(|l| sophon_sdk::json::from_str(&l))
        {
            Some(Ok(v)) => format!("JSON lines, each {}", json_shape(&v, 2)),
            _ => "JSON lines (first line unreadable)".into(),
        };
    }
    if size > JSON_BYTES {
        return format!("JSON, {} (too large to preview)", human(size));
    }
    match std::fs::read(path).map(|b| sophon_sdk::json::from_slice::<sophon_sdk::json::Value>(&b)) {
        Ok(Ok(v)) => format!("JSON: {}", cut(&json_shape(&v, 3), 2048)),
        Ok(Err(e)) => format!("not readable as JSON ({e})"),
        Err(e) => format!("unreadable ({e})"),
    }
}

/// The file tree and the schemas of the first CSV files, within [`MAX_PREVIEW_BYTES`].
pub fn data_preview(root: &Path) -> String {
    let (files, total) = walk(root, MAX_WALKED);
    let mut out = String::from(
        "Files ({id} and {n} mark the parts that vary between files of one pattern):\n",
    );
    for line in tree_lines(&files) {
        let _ = writeln!(out, "  {line}");
    }
    if total > files.len() {
        let _ = writeln!(
            out,
            "  … and {} more files not looked at",
            total - files.len()
        );
    }
    let csvs = files
        .iter()
        .filter(|(p, _)| p.ends_with(".csv") && !p.contains('/'))
        .take(MAX_SCHEMAS);
    for (path, size) in csvs {
        let full = root.join(path);
        let rows = count_rows(&full, *size).map_or("many".into(), |n| n.to_string());
        let _ = writeln!(out, "\n{path}: {rows} rows");
        if let Some(table) = head_table(&full) {
            let note = if table.rows < SCHEMA_ROWS {
                ""
            } else {
                " (from the first rows)"
            };
            let _ = writeln!(out, "  {} columns{note}:", table.names.len());
            for (name, column) in table.names.iter().zip(&table.columns).take(60) {
                let _ = writeln!(out, "  - {}", column_summary(name, column));
            }
            if table.names.len() > 60 {
                let _ = writeln!(out, "  - … {} more columns", table.names.len() - 60);
            }
        }
        if out.len() > MAX_PREVIEW_BYTES {
            break;
        }
    }
    let jsons = files
        .iter()
        .filter(|(p, _)| (p.ends_with(".json") || p.ends_with(".jsonl")) && !p.contains('/'))
        .take(MAX_SCHEMAS);
    for (path, size) in jsons {
        let _ = writeln!(out, "\n{path}: {}", json_summary(&root.join(path), *size));
    }
    cut(&out, MAX_PREVIEW_BYTES)
}

/// What a submission must look like, from the sample submission.
pub fn submission_format(sample: &Path, id_column: &str, targets: &[String]) -> String {
    let Ok(file) = std::fs::File::open(sample) else {
        return format!(
            "A CSV with the column `{id_column}` and the prediction column(s) {} (no sample submission found).",
            targets.join(", ")
        );
    };
    let size = file.metadata().map_or(0, |m| m.len());
    let mut head = String::new();
    let mut lines = BufReader::new(file).lines();
    for line in lines.by_ref().take(4).map_while(Result::ok) {
        let short: String = line.chars().take(300).collect();
        head.push_str(&short);
        head.push('\n');
    }
    let rows = count_rows(sample, size).map_or("one per test id".to_string(), |n| n.to_string());
    format!(
        "A CSV file like the sample submission `{}`: the same columns, {rows} rows (one per test id, \
         ids unchanged), predictions in place of the sample's values. It begins:\n{head}",
        sample
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    )
}
