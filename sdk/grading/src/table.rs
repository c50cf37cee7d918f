//! Reading CSV files the way MLE-bench's graders see them: pandas `read_csv` defaults.
//!
//! - comma separator, first line the header, `"` quoting; blank lines skipped; header names
//!   kept as written (not trimmed); duplicate names get `.1`, `.2`, … suffixes;
//! - pandas' missing-value tokens (`""`, `NA`, `nan`, `NULL`, …) are missing whether quoted
//!   or not;
//! - per column type inference: all integers and none missing → [`Column::Int`]; all numeric
//!   (missing allowed) → [`Column::Float`]; all `True`/`False` spellings → [`Column::Bool`];
//!   otherwise [`Column::Text`] with the raw strings. Spaces around numbers are tolerated.
//!
//! Reading is bounded: a file over [`Limits::max_bytes`], a header over
//! [`Limits::max_columns`] or a row with more fields than the header is an error (pandas would
//! abort the whole grading run on the last; here the submission is invalid instead).

use std::fmt;
use std::io::Read;

/// pandas' default missing-value tokens.
pub const NA_TOKENS: &[&str] = &[
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// Bounds on what a read may take.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_columns: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 512 << 20,
            max_columns: 10_000,
        }
    }
}

/// Why a CSV file could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadError(pub String);

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReadError {}

/// One column's values, typed as pandas would infer them.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    Int(Vec<i64>),
    /// Missing values are NaN.
    Float(Vec<f64>),
    Bool(Vec<bool>),
    /// Missing values are `None`.
    Text(Vec<Option<String>>),
}

/// One cell, for comparisons across columns of different types.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell<'a> {
    Num(f64),
    Bool(bool),
    Text(&'a str),
    Missing,
}

impl Cell<'_> {
    /// Equality as numpy/scikit-learn compare labels: numbers (and bools, as 0/1) by value,
    /// text with text; text never equals a number; missing equals nothing.
    pub fn label_eq(&self, other: &Cell<'_>) -> bool {
        match (self.as_number(), other.as_number()) {
            (Some(a), Some(b)) => a == b,
            _ => match (self, other) {
                (Cell::Text(a), Cell::Text(b)) => a == b,
                _ => false,
            },
        }
    }

    /// The cell as a number (bools as 0/1); `None` for text and missing.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Cell::Num(x) if !x.is_nan() => Some(*x),
            Cell::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Int(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Text(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn cell(&self, row: usize) -> Cell<'_> {
        match self {
            Column::Int(v) => Cell::Num(v[row] as f64),
            Column::Float(v) if v[row].is_nan() => Cell::Missing,
            Column::Float(v) => Cell::Num(v[row]),
            Column::Bool(v) => Cell::Bool(v[row]),
            Column::Text(v) => v[row].as_deref().map_or(Cell::Missing, Cell::Text),
        }
    }

    /// The column as numbers, if pandas' `astype(float)` would succeed: numeric columns and
    /// bools as they are; text only if every present value parses (missing → NaN).
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        match self {
            Column::Int(v) => Some(v.iter().map(|x| *x as f64).collect()),
            Column::Float(v) => Some(v.clone()),
            Column::Bool(v) => Some(v.iter().map(|b| f64::from(u8::from(*b))).collect()),
            Column::Text(v) => v
                .iter()
                .map(|s| match s {
                    None => Some(f64::NAN),
                    Some(s) => parse_float(s),
                })
                .collect(),
        }
    }

    /// A sort key per row: missing last, numbers before text, then by value (integers exactly:
    /// 19-digit ids do not fit a float).
    pub fn sort_key(&self, row: usize) -> SortKey {
        if let Column::Int(v) = self {
            return SortKey::Int(v[row]);
        }
        match self.cell(row) {
            Cell::Num(x) => SortKey::Num(x),
            Cell::Bool(b) => SortKey::Num(f64::from(u8::from(b))),
            Cell::Text(s) => SortKey::Text(s.to_string()),
            Cell::Missing => SortKey::Missing,
        }
    }

    /// The kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Column::Int(_) => "integer",
            Column::Float(_) => "float",
            Column::Bool(_) => "boolean",
            Column::Text(_) => "text",
        }
    }
}

/// See [`Column::sort_key`].
#[derive(Clone, Debug, PartialEq)]
pub enum SortKey {
    Int(i64),
    Num(f64),
    Text(String),
    Missing,
}

impl SortKey {
    /// Equal as numpy compares ids: numbers by value (integers exactly), text with text;
    /// a missing value equals nothing.
    pub fn same(&self, other: &SortKey) -> bool {
        !matches!(self, SortKey::Missing)
            && !matches!(other, SortKey::Missing)
            && matches!(
                (self, other),
                (SortKey::Text(_), SortKey::Text(_))
                    | (
                        SortKey::Int(_) | SortKey::Num(_),
                        SortKey::Int(_) | SortKey::Num(_)
                    )
            )
            && self.total_cmp(other) == std::cmp::Ordering::Equal
    }

    pub fn total_cmp(&self, other: &SortKey) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        match (self, other) {
            (SortKey::Int(a), SortKey::Int(b)) => a.cmp(b),
            (SortKey::Int(a), SortKey::Num(b)) => (*a as f64).total_cmp(b),
            (SortKey::Num(a), SortKey::Int(b)) => a.total_cmp(&(*b as f64)),
            (SortKey::Num(a), SortKey::Num(b)) => a.total_cmp(b),
            (SortKey::Int(_) | SortKey::Num(_), _) => Less,
            (_, SortKey::Int(_) | SortKey::Num(_)) => Greater,
            (SortKey::Text(a), SortKey::Text(b)) => a.cmp(b),
            (SortKey::Text(_), SortKey::Missing) => Less,
            (SortKey::Missing, SortKey::Text(_)) => Greater,
            (SortKey::Missing, SortKey::Missing) => Equal,
        }
    }
}

/// A CSV file as named, typed columns of equal length.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub names: Vec<String>,
    pub columns: Vec<Column>,
    pub rows: usize,
}

impl Table {
    /// Read `path` with the default [`Limits`].
    pub fn read_path(path: &std::path::Path) -> Result<Table, ReadError> {
        Table::read_path_with(path, Limits::default())
    }

    pub fn read_path_with(path: &std::path::Path, limits: Limits) -> Result<Table, ReadError> {
        let file = std::fs::File::open(path)
            .map_err(|e| ReadError(format!("cannot open {}: {e}", path.display())))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size > limits.max_bytes {
            return Err(ReadError(format!(
                "the file is {size} bytes, over the {} byte limit",
                limits.max_bytes
            )));
        }
        Table::read(file.take(limits.max_bytes + 1), limits)
    }

    /// Read CSV text from `input` (at most `limits.max_bytes` are consumed).
    pub fn read(input: impl Read, limits: Limits) -> Result<Table, ReadError> {
        let mut counted = CountingReader {
            inner: input,
            read: 0,
            limit: limits.max_bytes,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&mut counted);
        let mut records = reader.byte_records();
        let header = match records.next() {
            None => {
                // An empty file: pandas raises EmptyDataError; MLE-bench treats it as a table
                // without columns.
                return Ok(Table {
                    names: Vec::new(),
                    columns: Vec::new(),
                    rows: 0,
                });
            }
            Some(header) => header.map_err(csv_error)?,
        };
        if header.len() > limits.max_columns {
            return Err(ReadError(format!(
                "the header has {} columns, over the limit of {}",
                header.len(),
                limits.max_columns
            )));
        }
        let names = dedupe_names(
            header
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect(),
        );
        let width = names.len();
        let mut raw: Vec<Vec<Option<String>>> = vec![Vec::new(); width];
        let mut rows = 0usize;
        for (line, record) in records.enumerate() {
            let record = record.map_err(csv_error)?;
            if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) && width > 1 {
                continue; // a blank line
            }
            if record.len() > width {
                return Err(ReadError(format!(
                    "row {} has {} fields but the header has {width}: check the quoting and separators",
                    line + 1,
                    record.len()
                )));
            }
            for (c, column) in raw.iter_mut().enumerate() {
                let value = record
                    .get(c)
                    .map(|f| String::from_utf8_lossy(f).into_owned());
                column.push(match value {
                    Some(v) if !NA_TOKENS.contains(&v.as_str()) => Some(v),
                    _ => None,
                });
            }
            rows += 1;
        }
        if counted_over(&reader) {
            return Err(ReadError(format!(
                "the file is over the {} byte limit",
                limits.max_bytes
            )));
        }
        let columns = raw.into_iter().map(infer).collect();
        Ok(Table {
            names,
            columns,
            rows,
        })
    }

    /// The index of column `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.index(name).map(|i| &self.columns[i])
    }

    pub fn has(&self, name: &str) -> bool {
        self.index(name).is_some()
    }

    /// Row indices ordered by column `name` (see [`Column::sort_key`]); stable.
    pub fn order_by(&self, name: &str) -> Option<Vec<usize>> {
        let column = self.column(name)?;
        let keys: Vec<SortKey> = (0..self.rows).map(|r| column.sort_key(r)).collect();
        let mut order: Vec<usize> = (0..self.rows).collect();
        order.sort_by(|a, b| keys[*a].total_cmp(&keys[*b]));
        Some(order)
    }
}

struct CountingReader<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read > self.limit {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

fn counted_over<R: Read>(reader: &csv::Reader<&mut CountingReader<R>>) -> bool {
    reader.get_ref().read > reader.get_ref().limit
}

fn csv_error(e: csv::Error) -> ReadError {
    ReadError(format!("not a readable CSV file: {e}"))
}

/// pandas' `mangle_dupe_cols`: the second `x` becomes `x.1`, the third `x.2`, …
fn dedupe_names(names: Vec<String>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let mut candidate = name.clone();
        let mut n = 1;
        while seen.contains(&candidate) {
            candidate = format!("{name}.{n}");
            n += 1;
        }
        seen.push(candidate);
    }
    seen
}

/// A float as pandas parses a cell: surrounding spaces allowed, `inf`/`-inf` accepted.
pub fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    // Rust accepts "infinity"/"nan" spellings pandas also accepts; reject things like "0x10"
    // or "1_000" which Rust rejects too.
    t.parse::<f64>().ok()
}

fn parse_int(s: &str) -> Option<i64> {
    s.trim().parse::<i64>().ok()
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "True" | "TRUE" | "true" => Some(true),
        "False" | "FALSE" | "false" => Some(false),
        _ => None,
    }
}

fn infer(values: Vec<Option<String>>) -> Column {
    let any_missing = values.iter().any(Option::is_none);
    let present = || values.iter().flatten();
    if !any_missing && present().all(|v| parse_int(v).is_some()) && !values.is_empty() {
        return Column::Int(present().map(|v| parse_int(v).unwrap()).collect());
    }
    if present().all(|v| parse_float(v).is_some()) {
        return Column::Float(
            values
                .iter()
                .map(|v| v.as_deref().and_then(parse_float).unwrap_or(f64::NAN))
                .collect(),
        );
    }
    if !any_missing && present().all(|v| parse_bool(v).is_some()) {
        return Column::Bool(present().map(|v| parse_bool(v).unwrap()).collect());
    }
    Column::Text(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Table, ReadError> {
        Table::read(text.as_bytes(), Limits::default())
    }

    #[test]
    fn types_are_inferred_as_pandas_does() {
        let t = read("id,x,y,b,s,m\n1,1.5,2,True,a,\n2, 3 ,NA,false,7,x\n").unwrap();
        assert_eq!(t.rows, 2);
        assert_eq!(t.columns[0], Column::Int(vec![1, 2]));
        assert_eq!(t.columns[1], Column::Float(vec![1.5, 3.0]));
        assert!(matches!(&t.columns[2], Column::Float(v) if v[0] == 2.0 && v[1].is_nan()));
        assert_eq!(t.columns[3], Column::Bool(vec![true, false]));
        assert_eq!(
            t.columns[4],
            Column::Text(vec![Some("a".into()), Some("7".into())])
        );
        assert_eq!(t.columns[5], Column::Text(vec![None, Some("x".into())]));
    }

    #[test]
    fn headers_blank_lines_quotes_and_duplicates() {
        let t = read("a, b,a\n\n\"1,5\",2,3\n").unwrap();
        assert_eq!(t.names, vec!["a", " b", "a.1"]);
        assert_eq!(t.rows, 1);
        assert_eq!(t.columns[0], Column::Text(vec![Some("1,5".into())]));
        let short = read("a,b\n1\n").unwrap();
        assert!(matches!(&short.columns[1], Column::Float(v) if v[0].is_nan()));
        let err = read("a,b\n1,2,3\n").unwrap_err();
        assert!(err.0.contains("row 1 has 3 fields"), "{err}");
        assert_eq!(read("").unwrap().names.len(), 0);
    }

    #[test]
    fn ids_compare_by_value_across_types() {
        let a = read("id\n1\n0300\n").unwrap();
        let b = read("id\n1.0\n300\n").unwrap();
        for r in 0..2 {
            assert!(a.columns[0].cell(r).label_eq(&b.columns[0].cell(r)));
        }
        let text = read("id\nx\n1\n").unwrap();
        assert!(!text.columns[0].cell(1).label_eq(&a.columns[0].cell(0)));
        let bools = read("t\nTrue\nFalse\n").unwrap();
        let ints = read("t\n1\n0\n").unwrap();
        assert!(bools.columns[0].cell(0).label_eq(&ints.columns[0].cell(0)));
    }

    #[test]
    fn size_and_width_limits_hold() {
        let limits = Limits {
            max_bytes: 10,
            max_columns: 3,
        };
        let err = Table::read("a,b\n1,2\n3,4\n5,6\n".as_bytes(), limits).unwrap_err();
        assert!(err.0.contains("byte limit"), "{err}");
        let err = Table::read(
            "a,b,c,d\n".as_bytes(),
            Limits {
                max_bytes: 100,
                ..limits
            },
        )
        .unwrap_err();
        assert!(err.0.contains("4 columns"), "{err}");
    }
}
