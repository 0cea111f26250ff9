//! Config errors that say where they are: file, line, key, and how to fix them.
//!
//! This module owns [`ConfigError`] and the small line scanner that maps between positions in
//! the TOML text and dotted key paths (`mesh.batch`, `agents[1].kind`), in both directions:
//! a parse error's byte span becomes a line and the key on it; a validation error's key becomes
//! the line where that key is written.
//!
//! Invariants: line numbers are 1-based; `[[agents]]` indices are 0-based, in file order;
//! every constructed error has a non-empty message and hint with no line breaks, so
//! `Display` always prints exactly one line. The scanner never fails: on text it cannot make
//! sense of (which only happens for malformed TOML) it reports no key rather than a wrong one.

use super::ConfigSource;
use std::collections::HashMap;
use std::fmt;

/// Why a config could not be read, parsed or validated, and where.
///
/// `Display` is one line: `{file}:{line}: key `{key}`: {message} (hint: {hint})`, leaving out
/// `:{line}` or `key `{key}`: ` when they are unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", OneLine(self))]
pub struct ConfigError {
    /// The file (or other origin) the config came from.
    pub file: String,
    /// The 1-based line of the problem, when it could be found.
    pub line: Option<usize>,
    /// The dotted key at fault (`mailbox.capacity`, `agents[0].kind`), when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// `ConfigError`'s single-line rendering; line breaks inside fields become spaces.
struct OneLine<'a>(&'a ConfigError);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        write!(f, "{}", flat(&e.file))?;
        if let Some(line) = e.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &e.key {
            write!(f, "key `{}`: ", flat(key))?;
        }
        f.write_str(&flat(&e.message))?;
        if !e.hint.trim().is_empty() {
            write!(f, " (hint: {})", flat(&e.hint))?;
        }
        Ok(())
    }
}

/// `s` on one line: each run of line breaks (with the spaces around it) becomes "; ".
fn flat(s: &str) -> String {
    let parts: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    parts.join("; ")
}

/// The hint for malformed TOML.
const SYNTAX_HINT: &str = "check the TOML syntax near this line";

impl ConfigError {
    /// A file that could not be read.
    pub(crate) fn io(file: &str, err: &std::io::Error) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            key: None,
            message: format!("cannot read the config file: {err}"),
            hint: "check the path and its permissions; the bundled configs are in configs/".to_owned(),
        }
    }

    /// Malformed TOML (the text does not parse as TOML at all).
    pub(crate) fn syntax(file: &str, text: &str, err: &toml::de::Error) -> Self {
        let line = err.span().map(|span| line_of_offset(text, span.start));
        let key = line.and_then(|line| Scan::new(text).owner(line).map(str::to_owned));
        Self {
            file: file.to_owned(),
            line,
            key,
            hint: if err.message().contains("duplicate key") {
                "each key may be set only once per table; remove one of the two".to_owned()
            } else {
                SYNTAX_HINT.to_owned()
            },
            message: nonempty(flat(err.message()), "malformed TOML"),
        }
    }

    /// Well-formed TOML whose data does not fit the config types (unknown key, wrong type,
    /// bad value).
    pub(crate) fn data(file: &str, text: &str, err: &toml::de::Error) -> Self {
        let scan = Scan::new(text);
        let raw = flat(err.message());
        let line = err.span().map(|span| line_of_offset(text, span.start));
        let owner = line.and_then(|line| scan.owner(line));

        if let Some(field) = raw.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
            let key = unknown_key_path(owner, line.map(|l| scan.table(l)).unwrap_or(""), field);
            let table = parent(&key);
            let valid = backticked_list_after(&raw, "expected ");
            return Self {
                file: file.to_owned(),
                line,
                key: Some(key.clone()),
                message: format!("unknown key `{field}` {}", in_table(table)),
                hint: unknown_key_hint(field, table, &valid),
            };
        }

        let key = owner.map(str::to_owned);
        let hint = value_hint(key.as_deref(), &raw);
        Self { file: file.to_owned(), line, key, message: nonempty(raw, "invalid value"), hint }
    }

    /// A validation failure for `key`; the line is found by scanning the source text for the
    /// key within its table (or for its nearest enclosing table, when the key was left out).
    pub fn invalid(source: &ConfigSource, key: &str, message: String, hint: String) -> Self {
        Self {
            file: source.origin().to_owned(),
            line: Scan::new(source.text()).line_of(key),
            key: Some(key.to_owned()),
            message,
            hint,
        }
    }
}

fn nonempty(s: String, fallback: &str) -> String {
    if s.trim().is_empty() {
        fallback.to_owned()
    } else {
        s
    }
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Every word in backticks after `prefix` in `message` (serde's "expected one of `a`, `b`").
fn backticked_list_after<'m>(message: &'m str, prefix: &str) -> Vec<&'m str> {
    let Some(at) = message.find(prefix) else {
        return Vec::new();
    };
    message[at + prefix.len()..].split('`').skip(1).step_by(2).collect()
}

/// The path of `key` minus its last segment (`""` for a top-level key).
fn parent(key: &str) -> &str {
    key.rfind('.').map_or("", |dot| &key[..dot])
}

/// A (non-empty) table path as the user wrote its header: `[mesh]`, `[[agents]]`.
fn describe_table(table: &str) -> String {
    if let Some(array) = table.strip_suffix(']').and_then(|t| t.rsplit_once('[')) {
        format!("[[{}]]", array.0)
    } else {
        format!("[{table}]")
    }
}

/// "in [mesh]", "in [[agents]]" or "at the top level".
fn in_table(table: &str) -> String {
    if table.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in {}", describe_table(table))
    }
}

/// The full path of an unknown `field` reported on a line owned by `owner` (inside `table`).
fn unknown_key_path(owner: Option<&str>, table: &str, field: &str) -> String {
    if let Some(owner) = owner {
        // The field is one segment of the owner's path: `[mailboxx]` or `mailbox.capacty = 1`.
        let mut end = 0;
        for segment in owner.split('.') {
            end += segment.len();
            let name = segment.split('[').next().unwrap_or(segment);
            if name == field {
                return owner[..end].to_owned();
            }
            end += 1;
        }
        // Otherwise it sits inside the owner's value: `mesh = { bach = 1 }`.
        return join(owner, field);
    }
    join(table, field)
}

/// The hint for an unknown key: the valid keys of its table, and the closest one.
fn unknown_key_hint(field: &str, table: &str, valid: &[&str]) -> String {
    if valid.is_empty() {
        return format!("no keys are allowed {}; remove `{field}`", in_table(table));
    }
    let closest = valid.iter().map(|v| (edit_distance(field, v), *v)).filter(|(d, v)| *d <= 2.max(v.len() / 3)).min();
    let list = format!("valid keys {}: {}", in_table(table), valid.join(", "));
    match closest {
        Some((_, v)) => format!("did you mean `{v}`? {list}"),
        None => list,
    }
}

/// Levenshtein distance between two short ASCII-ish strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(cur).min(row[j]) };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The hint for a value that does not fit its key's type or range.
fn value_hint(key: Option<&str>, message: &str) -> String {
    let generic = key.map(normalize_indices);
    let specific = match generic.as_deref() {
        Some("executor") => Some("use executor = \"auto\", \"glommio\" or \"threads\""),
        Some("placement.shards") => Some("use shards = \"auto\" (one per physical core) or a positive count such as 4"),
        Some("placement.cpus" | "placement.reserve_cpus") => Some("use a list of CPU ids such as [0, 1, 2]"),
        Some("mailbox.overflow") => Some("use overflow = \"reject\" or overflow = \"drop\""),
        Some("load") => Some("use a [load] table, or load = false for no built-in load"),
        Some("load.scenario") => Some("use scenario = \"pingpong\", \"counting\" or \"ask\""),
        Some("agents") => Some("declare each agent in its own [[agents]] table with a kind"),
        Some("agents[].kind" | "agents[].name") => Some("use a quoted string such as \"echo\""),
        _ => None,
    };
    if let Some(hint) = specific {
        return hint.to_owned();
    }
    if message.starts_with("unknown variant") {
        let variants = backticked_list_after(message, "expected ");
        if !variants.is_empty() {
            let list: Vec<String> = variants.iter().map(|v| format!("\"{v}\"")).collect();
            return format!("use one of: {}", list.join(", "));
        }
    }
    let expected = message.rsplit_once("expected ").map(|(_, e)| e.trim());
    let what = match expected {
        Some("u8" | "u16" | "u32" | "u64" | "usize" | "u128") => "a non-negative integer without quotes".to_owned(),
        Some("i8" | "i16" | "i32" | "i64" | "isize" | "i128") => "an integer without quotes".to_owned(),
        Some("a boolean") => "true or false, without quotes".to_owned(),
        Some("a string") => "a quoted string".to_owned(),
        Some("a sequence") => "an array such as [0, 1]".to_owned(),
        Some(other) if !other.is_empty() => other.to_owned(),
        _ => String::new(),
    };
    let reference = "configs/default.toml shows every key with its default";
    if what.is_empty() {
        format!("fix this value; {reference}")
    } else {
        format!("write {what}; {reference}")
    }
}

/// `agents[3].kind` → `agents[].kind`, so per-key hints ignore array indices.
fn normalize_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// `table.key`, or `key` at the top level.
fn join(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_owned()
    } else {
        format!("{table}.{key}")
    }
}

/// How a line relates to the key paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineKind {
    /// A `[table]` or `[[array]]` header; the owner is the table's path.
    Header,
    /// A `key = value` line; the owner is the key's full path.
    Key,
    /// A later line of a value that spans lines (array, multi-line string).
    Continuation,
}

/// A line-by-line map of TOML text to key paths. Best effort: it follows headers, dotted keys,
/// quoted keys, strings, comments and multi-line values, which is all valid TOML needs; on
/// malformed text it may report no owner for a line, never a panic.
struct Scan {
    /// Per line (index = line - 1): the path it belongs to and how.
    owners: Vec<Option<(String, LineKind)>>,
    /// Per line: the table in effect (`""` at the top level).
    tables: Vec<String>,
}

/// Where the value scanner is between lines.
#[derive(Default)]
struct ValueState {
    /// Open `[` / `{` not yet closed.
    depth: usize,
    /// Inside a multi-line string delimited by three of this quote.
    multiline: Option<u8>,
}

impl ValueState {
    fn done(&self) -> bool {
        self.depth == 0 && self.multiline.is_none()
    }

    /// Follows brackets and strings through one line of a value, stopping at a comment.
    fn feed(&mut self, line: &str) {
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if let Some(q) = self.multiline {
                if q == b'"' && b[i] == b'\\' {
                    i += 2;
                } else if b[i..].starts_with(&[q, q, q]) {
                    // A closing delimiter may carry up to two extra quotes of content.
                    i += 3;
                    while i < b.len() && b[i] == q {
                        i += 1;
                    }
                    self.multiline = None;
                } else {
                    i += 1;
                }
                continue;
            }
            match b[i] {
                b'#' => break,
                q @ (b'"' | b'\'') => {
                    if b[i..].starts_with(&[q, q, q]) {
                        self.multiline = Some(q);
                        i += 3;
                    } else {
                        i += 1;
                        while i < b.len() && b[i] != q {
                            i += if q == b'"' && b[i] == b'\\' { 2 } else { 1 };
                        }
                        i += 1;
                    }
                }
                b'[' | b'{' => {
                    self.depth += 1;
                    i += 1;
                }
                b']' | b'}' => {
                    self.depth = self.depth.saturating_sub(1);
                    i += 1;
                }
                _ => i += 1,
            }
        }
    }
}

impl Scan {
    fn new(text: &str) -> Self {
        let mut scan = Scan { owners: Vec::new(), tables: Vec::new() };
        let mut table = String::new();
        // Array-of-tables path (with parent indices) → entries seen so far.
        let mut arrays: HashMap<String, usize> = HashMap::new();
        let mut pending: Option<String> = None;
        let mut value = ValueState::default();

        for raw in text.split('\n') {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            scan.tables.push(table.clone());
            if let Some(path) = pending.take() {
                value.feed(line);
                if !value.done() {
                    pending = Some(path.clone());
                }
                scan.owners.push(Some((path, LineKind::Continuation)));
                continue;
            }
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                scan.owners.push(None);
                continue;
            }
            if let Some(rest) = t.strip_prefix('[') {
                let (is_array, rest) = match rest.strip_prefix('[') {
                    Some(inner) => (true, inner),
                    None => (false, rest),
                };
                let Some(inner) = until_unquoted(rest, b']') else {
                    scan.owners.push(None);
                    continue;
                };
                let path = resolve_header(&split_key(inner), is_array, &mut arrays);
                table = path.clone();
                *scan.tables.last_mut().expect("pushed above") = table.clone();
                scan.owners.push(Some((path, LineKind::Header)));
                continue;
            }
            let Some(key) = until_unquoted(t, b'=') else {
                scan.owners.push(None);
                continue;
            };
            let segments = split_key(key);
            if segments.iter().any(String::is_empty) {
                scan.owners.push(None);
                continue;
            }
            let path = join(&table, &segments.join("."));
            value = ValueState::default();
            value.feed(&t[key.len() + 1..]);
            if !value.done() {
                pending = Some(path.clone());
            }
            scan.owners.push(Some((path, LineKind::Key)));
        }
        scan
    }

    /// The path that 1-based `line` belongs to: a header's table, a key line's key, or the key
    /// whose multi-line value it continues.
    fn owner(&self, line: usize) -> Option<&str> {
        let (path, _) = self.owners.get(line.checked_sub(1)?)?.as_ref()?;
        Some(path)
    }

    /// The table in effect on 1-based `line` (`""` at the top level).
    fn table(&self, line: usize) -> &str {
        line.checked_sub(1).and_then(|i| self.tables.get(i)).map_or("", String::as_str)
    }

    /// The 1-based line where `path` is written; when it is not written (left to its default),
    /// the line of its nearest written ancestor (`agents[1].kind` → `agents[1]`'s header).
    fn line_of(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            let found = self
                .owners
                .iter()
                .position(|owner| matches!(owner, Some((p, kind)) if p == path && *kind != LineKind::Continuation));
            if let Some(index) = found {
                return Some(index + 1);
            }
            path = match path.rfind(['.', '[']) {
                Some(cut) if cut > 0 => &path[..cut],
                _ => return None,
            };
        }
    }
}

/// `s` up to the first `stop` byte outside quotes, or `None` when there is none.
fn until_unquoted(s: &str, stop: u8) -> Option<&str> {
    let b = s.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        match (quote, b[i]) {
            (Some(b'"'), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (None, c @ (b'"' | b'\'')) => quote = Some(c),
            (None, c) if c == stop => return Some(&s[..i]),
            _ => {}
        }
        i += 1;
    }
    None
}

/// A (possibly dotted, possibly quoted) key split into its segments, unquoted and trimmed.
fn split_key(key: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in key.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, '.') => segments.push(std::mem::take(&mut current).trim().to_owned()),
            (None, c) => current.push(c),
        }
    }
    segments.push(current.trim().to_owned());
    segments
}

/// The path of a `[a.b]` / `[[a.b]]` header, with the current index of every array of tables
/// on the way (`[[agents]]` the second time → `agents[1]`).
fn resolve_header(segments: &[String], is_array: bool, arrays: &mut HashMap<String, usize>) -> String {
    let mut path = String::new();
    for (i, segment) in segments.iter().enumerate() {
        path = join(&path, segment);
        let last = i + 1 == segments.len();
        if last && is_array {
            let count = arrays.entry(path.clone()).or_insert(0);
            *count += 1;
            path = format!("{path}[{}]", *count - 1);
        } else if let Some(count) = arrays.get(&path) {
            path = format!("{path}[{}]", count.saturating_sub(1));
        }
    }
    path
}
