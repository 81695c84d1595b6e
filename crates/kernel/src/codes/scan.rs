//! A small reader of Rust sources for the code tests: finds the literal codes that the code-setting
//! constructors receive (the patterns are listed in `tests.rs`). Not a parser: comments are
//! blanked, string literals are set aside, and calls are split into arguments by bracket depth.

use std::path::{Path, PathBuf};

/// A source file with its comments blanked and its string literals masked (`"xxx"`), so that a
/// pattern is never found inside a comment or a string; offsets are those of the original.
pub struct Source {
    pub path: PathBuf,
    pub masked: String,
    /// Every string literal: offset of its opening quote, offset after its end, its value.
    pub lits: Vec<(usize, usize, String)>,
    line_starts: Vec<usize>,
}

impl Source {
    pub fn read(path: &Path) -> Source {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Source::parse(path.to_path_buf(), &text)
    }

    pub fn parse(path: PathBuf, text: &str) -> Source {
        let b = text.as_bytes();
        let mut m = b.to_vec();
        let mut lits = Vec::new();
        let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            let prev_ident = i > 0 && ident(b[i - 1]);
            if c == b'/' && b.get(i + 1) == Some(&b'/') {
                while i < b.len() && b[i] != b'\n' {
                    m[i] = b' ';
                    i += 1;
                }
            } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        m[i] = b' ';
                        m[i + 1] = b' ';
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        m[i] = b' ';
                        m[i + 1] = b' ';
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if b[i] != b'\n' {
                            m[i] = b' ';
                        }
                        i += 1;
                    }
                }
            } else if !prev_ident && (c == b'r' || (c == b'b' && b.get(i + 1) == Some(&b'r'))) && {
                let mut j = i + if c == b'b' { 2 } else { 1 };
                while b.get(j) == Some(&b'#') {
                    j += 1;
                }
                b.get(j) == Some(&b'"')
            } {
                // raw string: r"…", r#"…"#, br"…"
                let mut j = i + if c == b'b' { 2 } else { 1 };
                let hashes = b[j..].iter().take_while(|&&x| x == b'#').count();
                j += hashes + 1;
                let start = j;
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                while j < b.len() && !b[j..].starts_with(&close) {
                    j += 1;
                }
                let end = (j + close.len()).min(b.len());
                lits.push((start - 1, end, text[start..j.min(b.len())].to_string()));
                mask(&mut m, start, j.min(b.len()));
                i = end;
            } else if c == b'"' {
                let start = i + 1;
                let mut j = start;
                let mut value = String::new();
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\\' {
                        j += 1;
                        match b.get(j) {
                            Some(b'n') => value.push('\n'),
                            Some(b't') => value.push('\t'),
                            Some(b'"') => value.push('"'),
                            Some(b'\\') => value.push('\\'),
                            _ => value.push('?'),
                        }
                        j += 1;
                    } else {
                        let ch = text[j..].chars().next().unwrap_or(' ');
                        value.push(ch);
                        j += ch.len_utf8();
                    }
                }
                lits.push((i, (j + 1).min(b.len()), value));
                mask(&mut m, start, j.min(b.len()));
                i = j + 1;
            } else if c == b'\'' {
                // a char literal ('a', '\n', '\'', 'é') or a lifetime ('static)
                if b.get(i + 1) == Some(&b'\\') {
                    let mut j = i + 3;
                    while j < b.len() && b[j] != b'\'' {
                        j += 1;
                    }
                    mask(&mut m, i + 1, j.min(b.len()));
                    i = j + 1;
                } else if let Some(ch) = text.get(i + 1..).and_then(|s| s.chars().next()) {
                    let after = i + 1 + ch.len_utf8();
                    if b.get(after) == Some(&b'\'') {
                        mask(&mut m, i + 1, after);
                        i = after + 1;
                    } else {
                        i += 1;
                    }
                } else {
                    i += 1;
                }
            } else {
                i += 1;
            }
        }
        let masked = String::from_utf8(m).expect("masking keeps UTF-8");
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            path,
            masked,
            lits,
            line_starts,
        }
    }

    pub fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }

    /// The literal whose opening quote is at `offset`.
    pub fn lit_at(&self, offset: usize) -> Option<&str> {
        self.lits
            .binary_search_by_key(&offset, |l| l.0)
            .ok()
            .map(|i| self.lits[i].2.as_str())
    }

    /// Offset after the literal opening at `offset`.
    pub fn lit_end(&self, offset: usize) -> Option<usize> {
        self.lits
            .binary_search_by_key(&offset, |l| l.0)
            .ok()
            .map(|i| self.lits[i].1)
    }

    /// Blanks every `#[cfg(test)] mod x { … }` (their codes are examples, not answers) and
    /// returns the names of `#[cfg(test)] mod x;` declared in this file.
    pub fn drop_test_modules(&mut self) -> Vec<String> {
        let mut external = Vec::new();
        let mut from = 0;
        while let Some(p) = self.masked[from..].find("#[cfg(test)]").map(|p| p + from) {
            let rest = &self.masked[p + "#[cfg(test)]".len()..];
            let trimmed = rest.trim_start();
            from = p + 1;
            let Some(after_mod) = trimmed
                .strip_prefix("mod ")
                .or_else(|| trimmed.strip_prefix("pub mod "))
            else {
                continue;
            };
            let name: String = after_mod
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let after_name = after_mod[name.len()..].trim_start();
            if after_name.starts_with(';') {
                external.push(name);
                continue;
            }
            let open = p + self.masked[p..].find('{').unwrap_or(0);
            let close = matching(&self.masked, open).unwrap_or(self.masked.len());
            let blank: String = self.masked[p..close]
                .chars()
                .map(|c| if c == '\n' { '\n' } else { ' ' })
                .collect();
            self.masked.replace_range(p..close, &blank);
            self.lits.retain(|l| l.0 < p || l.0 >= close);
        }
        external
    }
}

fn mask(m: &mut [u8], from: usize, to: usize) {
    for x in &mut m[from..to] {
        if *x != b'\n' {
            *x = b'x';
        }
    }
}

/// Offset after the bracket closing the one at `open`.
pub fn matching(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in s[open..].char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The top-level arguments of the call whose `(` is at `open`: (start, end) of each, trimmed.
pub fn args(s: &str, open: usize) -> Vec<(usize, usize)> {
    let Some(close) = matching(s, open) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = open + 1;
    for (i, c) in s[open + 1..close - 1].char_indices() {
        let at = open + 1 + i;
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(trim(s, start, at));
                start = at + 1;
            }
            _ => {}
        }
    }
    if s[start..close - 1].trim().is_empty() {
        return out;
    }
    out.push(trim(s, start, close - 1));
    out
}

fn trim(s: &str, from: usize, to: usize) -> (usize, usize) {
    let part = &s[from..to];
    let lead = part.len() - part.trim_start().len();
    let tail = part.len() - part.trim_end().len();
    (from + lead, to - tail)
}

/// Every `.rs` file under `dir`, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
