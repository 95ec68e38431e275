//! Every `{{#include}}` and `{{#rustdoc_include}}` in the book resolves.
//!
//! mdbook is lenient where we need it strict: a missing file logs an error
//! but the build still succeeds, and a missing `:anchor` silently renders an
//! empty listing. A renamed function or a deleted `// ANCHOR:` line would
//! then ship a book with holes in it. This test reads the raw markdown and
//! fails on any include whose file, or named anchor, does not exist.

use std::fs;
use std::path::{Path, PathBuf};

/// The directives that pull a file into a chapter.
const DIRECTIVES: &[&str] = &["include", "rustdoc_include"];

/// One include found in a chapter.
#[derive(Debug)]
struct Include {
    /// The chapter it appears in, and the line (1-based), for the report.
    chapter: PathBuf,
    line: usize,
    /// The file named, resolved against the chapter's directory.
    target: PathBuf,
    /// What follows the path after `:`, if anything.
    selector: Option<String>,
}

/// Every include in every markdown file under `book/` resolves to an
/// existing, non-empty file and, when it names an anchor, to a non-empty
/// anchored region of that file; line-number ranges are refused.
#[test]
fn every_include_and_anchor_exists() {
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("book");
    let includes: Vec<Include> = markdown_files(&book)
        .iter()
        .flat_map(|chapter| includes_in(chapter))
        .collect();
    assert!(
        !includes.is_empty(),
        "found no includes at all in {}: is the parser broken?",
        book.display()
    );
    let problems: Vec<String> =
        includes.iter().filter_map(|i| check(i).err()).collect();
    assert!(
        problems.is_empty(),
        "{} broken include(s) in the book:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// The parser finds both directives, anchors and plain paths, and skips
/// escaped ones, which mdbook prints literally.
#[test]
fn parser_finds_directives() {
    let dir = std::env::temp_dir()
        .join(format!("book-includes-parser-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("the temp dir is writable");
    let chapter = dir.join("chapter.md");
    fs::write(
        &chapter,
        "a {{#include out/a.txt}}\n\
         ```rust,ignore\n\
         {{#rustdoc_include ../x/src/lib.rs:serve}}\n\
         ```\n\
         \\{{#include not/this.md}}\n",
    )
    .expect("the temp file is writable");
    let found = includes_in(&chapter);
    fs::remove_dir_all(&dir).ok();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].target, dir.join("out/a.txt"));
    assert_eq!(found[0].selector, None);
    assert_eq!(found[0].line, 1);
    assert_eq!(found[1].target, dir.join("../x/src/lib.rs"));
    assert_eq!(found[1].selector.as_deref(), Some("serve"));
    assert_eq!(found[1].line, 3);
}

/// The anchor check accepts a named region and spots a missing end,
/// an empty region, and a name that is only a prefix of another.
#[test]
fn anchor_regions() {
    let code = "// ANCHOR: serve_all\nfn a() {}\n// ANCHOR_END: serve_all\n\
                // ANCHOR: empty\n// ANCHOR_END: empty\n\
                // ANCHOR: open\nfn b() {}\n";
    assert_eq!(anchored_lines(code, "serve_all"), Ok(1));
    assert!(anchored_lines(code, "serve").is_err());
    assert!(anchored_lines(code, "empty").is_err());
    assert!(anchored_lines(code, "open").is_err());
    assert!(anchored_lines(code, "missing").is_err());
}

/// All `.md` files below `dir`, sorted, so failures read in book order.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let entries = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry is readable").path();
        if path.is_dir() {
            files.extend(markdown_files(&path));
        } else if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Parses the include directives of one chapter.
fn includes_in(chapter: &Path) -> Vec<Include> {
    let text = fs::read_to_string(chapter)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", chapter.display()));
    let base = chapter.parent().expect("a chapter lives in a directory");
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("{{#") {
            // mdbook leaves `\{{#include ...}}` alone: it is how a chapter
            // shows the directive itself.
            let escaped = rest[..start].ends_with('\\');
            let after = &rest[start + 3..];
            let Some(end) = after.find("}}") else { break };
            let body = after[..end].trim();
            rest = &after[end + 2..];
            if escaped {
                continue;
            }
            let mut words = body.split_whitespace();
            let directive = words.next().unwrap_or("");
            if !DIRECTIVES.contains(&directive) {
                continue;
            }
            let argument = words.next().unwrap_or("");
            let (path, selector) = match argument.split_once(':') {
                Some((path, selector)) => (path, Some(selector.to_owned())),
                None => (argument, None),
            };
            found.push(Include {
                chapter: chapter.to_owned(),
                line: index + 1,
                target: base.join(path),
                selector,
            });
        }
    }
    found
}

/// Checks one include; the error is a line for the failure report.
fn check(include: &Include) -> Result<(), String> {
    let place = format!(
        "{}:{}: {}",
        shown(&include.chapter),
        include.line,
        shown(&include.target)
    );
    let text = fs::read_to_string(&include.target)
        .map_err(|e| format!("{place}: cannot read: {e}"))?;
    if text.trim().is_empty() {
        return Err(format!("{place}: the file is empty"));
    }
    let Some(selector) = &include.selector else {
        return Ok(());
    };
    // `file:10:20` and `file:10` are line ranges: they silently go stale
    // when the code above them changes, so the book uses names only.
    if selector
        .split(':')
        .all(|part| part.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!(
            "{place}:{selector}: line ranges are not allowed; \
             add `// ANCHOR: name` to the code and include it by name"
        ));
    }
    anchored_lines(&text, selector)
        .map(|_| ())
        .map_err(|e| format!("{place}:{selector}: {e}"))
}

/// A path as the reader of a failure wants it: relative to the repository.
fn shown(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Counts the lines between `ANCHOR: name` and `ANCHOR_END: name`, the way
/// mdbook matches them (the name is a whole word after the marker).
fn anchored_lines(text: &str, name: &str) -> Result<usize, String> {
    let mut inside = false;
    let mut seen_start = false;
    let mut lines = 0;
    for line in text.lines() {
        if marker(line, "ANCHOR_END:") == Some(name) {
            if !inside {
                return Err("ANCHOR_END before ANCHOR".into());
            }
            return if lines == 0 {
                Err("the anchored region is empty".into())
            } else {
                Ok(lines)
            };
        }
        if marker(line, "ANCHOR:") == Some(name) {
            inside = true;
            seen_start = true;
            continue;
        }
        // Markers of other anchors nested inside are not shown either.
        let other = marker(line, "ANCHOR:").is_some()
            || marker(line, "ANCHOR_END:").is_some();
        if inside && !other && !line.trim().is_empty() {
            lines += 1;
        }
    }
    Err(if seen_start {
        "no matching ANCHOR_END".into()
    } else {
        "no such anchor".into()
    })
}

/// The anchor name after `tag` on this line, if the line has one.
fn marker<'a>(line: &'a str, tag: &str) -> Option<&'a str> {
    let at = line.find(tag)?;
    // A marker is a word of its own, not the tail of `MY_ANCHOR:`.
    if line[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let name = line[at + tag.len()..].trim_start();
    let end = name
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(name.len());
    (end > 0).then(|| &name[..end])
}
