//! Finds where a dotted key path (`dataset.directory`, `label.classes[1]`) sits in YAML text.
//!
//! `serde_yaml::Value` carries no positions, so errors found after parsing (a class listed
//! twice, a directory that does not exist) would otherwise point nowhere. This is a small
//! indentation-aware scanner for the YAML people write by hand: block mappings, `- ` sequences,
//! simple flow sequences (`[a, b]`), quoted keys and comments. Anything it cannot follow gives
//! `None`, and the error is reported without a position rather than with a wrong one.

/// One segment of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A meaningful line: comments stripped, indentation measured in characters.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    /// 1-based line number.
    no: usize,
    /// 0-based character column where `text` starts.
    indent: usize,
    text: &'a str,
}

/// The 1-based line and column of the value at `path` when it is written on the key's line
/// (a scalar or a flow collection), else of the key itself; for a sequence item, of the item.
pub fn locate(src: &str, path: &str) -> Option<(usize, usize)> {
    let segs = parse_path(path)?;
    let lines = meaningful_lines(src);
    find(&lines, &segs).map(|(line, col)| (line, col + 1))
}

fn parse_path(path: &str) -> Option<Vec<Seg>> {
    let mut segs = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            segs.push(Seg::Key(key.to_string()));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']')?;
            segs.push(Seg::Index(stripped[..end].parse().ok()?));
            rest = &stripped[end + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    (!segs.is_empty()).then_some(segs)
}

fn meaningful_lines(src: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    for (i, raw) in src.lines().enumerate() {
        let body = raw.trim_start_matches([' ', '\u{feff}']);
        let indent = raw[..raw.len() - body.len()].chars().count();
        let text = strip_comment(body).trim_end();
        if text.is_empty() || text == "---" || text == "..." {
            continue;
        }
        out.push(Line { no: i + 1, indent, text });
    }
    out
}

/// Cuts a trailing `# comment`; a `#` only starts one at the start or after whitespace, and
/// not inside a quoted scalar.
fn strip_comment(text: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '#' && prev.is_whitespace() => return &text[..i],
            // A quote only opens a scalar where one can start, so `don't` stays plain text.
            None if (c == '"' || c == '\'') && (prev.is_whitespace() || "[{,:-".contains(prev)) => quote = Some(c),
            None => {}
        }
        prev = c;
    }
    text
}

/// Returns a 0-based (line, column) pair with a 1-based line.
fn find(lines: &[Line<'_>], segs: &[Seg]) -> Option<(usize, usize)> {
    let (seg, rest) = segs.split_first()?;
    let indent = lines.first()?.indent;
    match seg {
        Seg::Key(want) => {
            for (i, line) in lines.iter().enumerate() {
                if line.indent != indent {
                    continue;
                }
                let Some((key, value_off)) = split_key(line.text) else {
                    continue;
                };
                if key != *want {
                    continue;
                }
                let value = line.text[value_off..].trim_start();
                let value_col = line.indent + line.text[..line.text.len() - value.len()].chars().count();
                if rest.is_empty() {
                    return Some(if value.is_empty() { (line.no, line.indent) } else { (line.no, value_col) });
                }
                if !value.is_empty() {
                    // A flow collection on the key's line: only `[a, b]` items are followed.
                    return match rest {
                        [Seg::Index(n)] => flow_item(value, *n).map(|c| (line.no, value_col + c)),
                        _ => Some((line.no, value_col)),
                    };
                }
                // The key's block: deeper lines, or `- ` items at the key's own indentation.
                let child: Vec<Line<'_>> = lines[i + 1..]
                    .iter()
                    .take_while(|l| l.indent > indent || (l.indent == indent && is_item(l.text)))
                    .copied()
                    .collect();
                if child.is_empty() {
                    return Some((line.no, line.indent));
                }
                return find(&child, rest);
            }
            None
        }
        Seg::Index(want) => {
            let mut seen = 0;
            for (i, line) in lines.iter().enumerate() {
                if line.indent != indent || !is_item(line.text) {
                    continue;
                }
                if seen < *want {
                    seen += 1;
                    continue;
                }
                let content = line.text[1..].trim_start();
                let offset = line.text.len() - content.len();
                let col = line.indent + line.text[..offset].chars().count();
                if rest.is_empty() || (content.is_empty() && lines.get(i + 1).is_none_or(|l| l.indent <= indent)) {
                    return Some((line.no, if content.is_empty() { line.indent } else { col }));
                }
                // The item's body: the rest of the dash line, then the deeper lines under it.
                let mut child = Vec::new();
                if !content.is_empty() {
                    child.push(Line { no: line.no, indent: col, text: content });
                }
                child.extend(lines[i + 1..].iter().take_while(|l| l.indent > indent).copied());
                return find(&child, rest);
            }
            None
        }
    }
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// Splits `key: value` into the unquoted key and the byte offset just after the colon.
fn split_key(text: &str) -> Option<(String, usize)> {
    if is_item(text) {
        return None;
    }
    let bytes = text.as_bytes();
    if let Some(q @ (b'"' | b'\'')) = bytes.first().copied() {
        let close = text[1..].find(q as char)? + 1;
        let after = &text[close + 1..];
        let colon = after.find(':')?;
        if !after[..colon].trim().is_empty() || !ends_key(&after[colon + 1..]) {
            return None;
        }
        return Some((text[1..close].to_string(), close + 1 + colon + 1));
    }
    let mut start = 0;
    while let Some(pos) = text[start..].find(':') {
        let at = start + pos;
        if ends_key(&text[at + 1..]) {
            return Some((text[..at].trim_end().to_string(), at + 1));
        }
        start = at + 1;
    }
    None
}

/// A colon ends a key when followed by whitespace or the end of the line.
fn ends_key(after: &str) -> bool {
    after.is_empty() || after.starts_with([' ', '\t'])
}

/// Character offset of item `n` inside a one-line flow sequence `[a, b, c]`.
fn flow_item(value: &str, n: usize) -> Option<usize> {
    let inner = value.strip_prefix('[')?;
    let mut index = 0;
    let mut quote: Option<char> = None;
    let mut item_start: Option<usize> = None;
    for (chars, (_, c)) in inner.char_indices().enumerate() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == ',' || c == ']' => {
                if index == n {
                    return item_start.map(|s| s + 1);
                }
                index += 1;
                item_start = None;
                if c == ']' {
                    return None;
                }
            }
            None => {
                if item_start.is_none() && !c.is_whitespace() {
                    item_start = Some(chars);
                    if c == '"' || c == '\'' {
                        quote = Some(c);
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::locate;

    const SRC: &str = "\
# a task
task:
  title: Is this a cat?   # shown in the navbar
dataset:
  directory: dataset/cat_not_cat/
  data_type: images
label:
  type: classification
  classes:
    - Cat
    - 'Not # Cat'
  flow: [a, \"b, c\", d]
items:
- name: one
  size: 1
-   name: two
    size: 2
\"quoted key\": yes
url: http://x:80/a
";

    #[test]
    fn keys_values_and_items() {
        assert_eq!(locate(SRC, "task"), Some((2, 1)));
        assert_eq!(locate(SRC, "task.title"), Some((3, 10)));
        assert_eq!(locate(SRC, "dataset.directory"), Some((5, 14)));
        assert_eq!(locate(SRC, "dataset.data_type"), Some((6, 14)));
        assert_eq!(locate(SRC, "label.classes"), Some((9, 3)));
        assert_eq!(locate(SRC, "label.classes[0]"), Some((10, 7)));
        assert_eq!(locate(SRC, "label.classes[1]"), Some((11, 7)));
        assert_eq!(locate(SRC, "label.classes[2]"), None);
        assert_eq!(locate(SRC, "label.flow[1]"), Some((12, 13)));
        assert_eq!(locate(SRC, "label.flow[2]"), Some((12, 21)));
        assert_eq!(locate(SRC, "items[0].size"), Some((15, 9)));
        assert_eq!(locate(SRC, "items[1]"), Some((16, 5)));
        assert_eq!(locate(SRC, "items[1].size"), Some((17, 11)));
        assert_eq!(locate(SRC, "quoted key"), Some((18, 15)));
        assert_eq!(locate(SRC, "url"), Some((19, 6)));
        assert_eq!(locate(SRC, "model"), None);
        assert_eq!(locate(SRC, "dataset.file"), None);
        assert_eq!(locate(SRC, "bad[x]"), None);
    }

    #[test]
    fn sequence_at_key_indent_and_block_scalars() {
        let src = "label:\n  classes:\n  - a\n  - b\n  type: binary\ntask:\n  description: |\n    title: not a key\n  title: t\n";
        assert_eq!(locate(src, "label.classes[1]"), Some((4, 5)));
        assert_eq!(locate(src, "label.type"), Some((5, 9)));
        assert_eq!(locate(src, "task.title"), Some((9, 10)));
    }
}
