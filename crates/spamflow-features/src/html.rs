//! HTML to text for classification, not for display.
//!
//! Written by hand on purpose: general HTML renderers measured 10-14 MB/s and lay text out in
//! tables, while a classifier needs the words a reader sees, fast, and must undo the tricks spam
//! plays with markup: comments and inline tags inside words (`V<!-- -->ia<b></b>gra`) are dropped
//! without adding a space, so the word comes back whole. Block tags separate words. Script and
//! style bodies are skipped. Link targets are collected as URLs.

/// The text and links found in an HTML document.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HtmlText {
    /// Visible text, entities decoded, whitespace collapsed.
    pub text: String,
    /// `href` targets and image sources, in document order.
    pub links: Vec<String>,
    /// Number of `<img>` tags.
    pub images: usize,
    /// Distinct tag names, lower case, in order of first use (at most 64).
    pub tags: Vec<String>,
    /// True when `max_text_bytes` cut the text short.
    pub truncated: bool,
}

/// Whether the start or end of tag `name` (lower case) separates words.
fn is_block_tag(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "blockquote"
            | "body"
            | "br"
            | "caption"
            | "dd"
            | "div"
            | "dl"
            | "dt"
            | "footer"
            | "form"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "head"
            | "header"
            | "hr"
            | "html"
            | "li"
            | "ol"
            | "option"
            | "p"
            | "pre"
            | "section"
            | "table"
            | "tbody"
            | "td"
            | "th"
            | "thead"
            | "title"
            | "tr"
            | "ul"
    )
}

/// Renders `html` to text of at most `max_text_bytes`, collecting at most `max_links` links.
pub fn html_to_text(html: &str, max_text_bytes: usize, max_links: usize) -> HtmlText {
    let mut out = HtmlText {
        text: String::with_capacity(html.len().min(max_text_bytes) / 2),
        ..HtmlText::default()
    };
    let bytes = html.as_bytes();
    let mut pos = 0;
    while pos < bytes.len() {
        if out.text.len() >= max_text_bytes {
            out.truncated = true;
            break;
        }
        let Some(offset) = memchr::memchr(b'<', &bytes[pos..]) else {
            push_text(&mut out.text, &html[pos..], max_text_bytes);
            break;
        };
        let tag_start = pos + offset;
        push_text(&mut out.text, &html[pos..tag_start], max_text_bytes);
        pos = skip_markup(html, tag_start, &mut out, max_links);
    }
    if out.text.len() > max_text_bytes {
        let cut = floor_char_boundary(&out.text, max_text_bytes);
        out.text.truncate(cut);
        out.truncated = true;
    }
    out
}

/// Handles the markup starting at `start` (a `<`) and returns the position after it.
fn skip_markup(html: &str, start: usize, out: &mut HtmlText, max_links: usize) -> usize {
    let bytes = html.as_bytes();
    let rest = &bytes[start..];
    if rest.starts_with(b"<!--") {
        return find(bytes, start + 4, b"-->").map_or(bytes.len(), |end| end + 3);
    }
    let closing = rest.get(1) == Some(&b'/');
    let name_start = start + 1 + usize::from(closing);
    let name_len = bytes[name_start..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    if name_len == 0
        && !rest
            .get(1)
            .is_some_and(|b| *b == b'!' || *b == b'?' || *b == b'/')
    {
        // A bare '<' in text, like "a < b".
        push_text(&mut out.text, "<", usize::MAX);
        return start + 1;
    }
    let raw_name = &html[name_start..name_start + name_len];
    // Tag names are usually lower case already: allocate only for the others.
    let name = if raw_name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(raw_name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(raw_name)
    };
    let name = name.as_ref();
    if !name.is_empty() && out.tags.len() < 64 && !out.tags.iter().any(|tag| tag == name) {
        out.tags.push(name.to_owned());
    }
    let tag_end = find_tag_end(bytes, name_start + name_len);
    if !closing {
        let attributes = &html[name_start + name_len..tag_end.min(bytes.len())];
        collect_links(name, attributes, out, max_links);
        if name == "script" || name == "style" {
            let close = format!("</{name}");
            return find_ascii_case_insensitive(bytes, tag_end, close.as_bytes())
                .map_or(bytes.len(), |at| find_tag_end(bytes, at + close.len()) + 1)
                .min(bytes.len());
        }
    }
    if is_block_tag(name) && !out.text.ends_with([' ', '\n']) && !out.text.is_empty() {
        out.text.push('\n');
    }
    (tag_end + 1).min(bytes.len())
}

/// Position of the `>` that ends a tag, skipping quoted attribute values; `len` if unterminated.
fn find_tag_end(bytes: &[u8], from: usize) -> usize {
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if q == b => quote = None,
            (None, b'>') => return i,
            _ => {}
        }
    }
    bytes.len()
}

/// Records `href` / `src` targets and counts images.
fn collect_links(name: &str, attributes: &str, out: &mut HtmlText, max_links: usize) {
    if name == "img" {
        out.images += 1;
    }
    let wanted: &[&str] = match name {
        "a" | "area" | "link" => &["href"],
        "img" | "frame" | "iframe" => &["src"],
        "form" => &["action"],
        _ => return,
    };
    for attribute in wanted {
        if out.links.len() >= max_links {
            return;
        }
        if let Some(value) = attribute_value(attributes, attribute) {
            let decoded = html_escape::decode_html_entities(value.trim());
            if !decoded.is_empty() {
                out.links.push(decoded.into_owned());
            }
        }
    }
}

/// The value of attribute `name` in a tag's attribute text, quoted or not.
fn attribute_value<'a>(attributes: &'a str, name: &str) -> Option<&'a str> {
    let lower = attributes.to_ascii_lowercase();
    let mut search_from = 0;
    while let Some(found) = lower[search_from..].find(name) {
        let at = search_from + found;
        search_from = at + name.len();
        let preceded_ok = at == 0 || !lower.as_bytes()[at - 1].is_ascii_alphanumeric();
        let after = lower[search_from..].trim_start();
        if !preceded_ok || !after.starts_with('=') {
            continue;
        }
        let value_start = attributes.len() - after.len() + 1;
        let value = attributes[value_start..].trim_start();
        return Some(match value.as_bytes().first() {
            Some(&q @ (b'"' | b'\'')) => {
                let inner = &value[1..];
                inner.find(q as char).map_or(inner, |end| &inner[..end])
            }
            _ => value
                .find(|c: char| c.is_whitespace() || c == '>')
                .map_or(value, |end| &value[..end]),
        });
    }
    None
}

/// Appends a text run with entities decoded and whitespace collapsed.
fn push_text(out: &mut String, run: &str, max_text_bytes: usize) {
    if run.is_empty() || out.len() >= max_text_bytes {
        return;
    }
    let decoded = if run.contains('&') {
        html_escape::decode_html_entities(run)
    } else {
        std::borrow::Cow::Borrowed(run)
    };
    let mut rest = decoded.as_ref();
    while !rest.is_empty() {
        // ASCII without whitespace is copied as it stands, a run at a time.
        let plain = rest
            .bytes()
            .position(|b| !b.is_ascii() || matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' '))
            .unwrap_or(rest.len());
        let len = if plain > 0 {
            let room = max_text_bytes.saturating_sub(out.len());
            out.push_str(&rest[..plain.min(room)]);
            plain
        } else {
            let Some(c) = rest.chars().next() else {
                return;
            };
            if c.is_whitespace() {
                if !out.is_empty() && !out.ends_with([' ', '\n']) {
                    out.push(' ');
                }
            } else {
                out.push(c);
            }
            c.len_utf8()
        };
        if out.len() >= max_text_bytes {
            return;
        }
        rest = &rest[len..];
    }
}

/// Position of the first `needle` at or after `from`.
fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack.get(from..)?, needle).map(|at| from + at)
}

/// Position of the first `needle` at or after `from`, ignoring ASCII case. Compares only where
/// memchr finds the needle's first byte (in either case).
fn find_ascii_case_insensitive(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let rest = haystack.get(from..)?;
    let first = *needle.first()?;
    memchr::memchr2_iter(first.to_ascii_lowercase(), first.to_ascii_uppercase(), rest)
        .find(|&at| {
            rest.get(at..at + needle.len())
                .is_some_and(|window| window.eq_ignore_ascii_case(needle))
        })
        .map(|at| from + at)
}

/// The largest char boundary of `text` not above `index`.
pub(crate) fn floor_char_boundary(text: &str, index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    (0..=index)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_find_the_first_match_at_or_after_the_start() {
        let haystack = b"a<!-- x --> </ScRiPt> </script> --> tail";
        for from in 0..=haystack.len() + 1 {
            let windows = |eq: fn(&[u8], &[u8]) -> bool, needle: &[u8]| {
                haystack
                    .get(from..)?
                    .windows(needle.len())
                    .position(|w| eq(w, needle))
                    .map(|at| from + at)
            };
            assert_eq!(find(haystack, from, b"-->"), windows(|a, b| a == b, b"-->"));
            assert_eq!(
                find_ascii_case_insensitive(haystack, from, b"</script"),
                windows(|a, b| a.eq_ignore_ascii_case(b), b"</script")
            );
        }
    }

    #[test]
    fn comments_and_inline_tags_inside_words_vanish() {
        let html = "<p>Buy V<!-- x -->ia<b></b>gra&nbsp;now</p><div>cheap</div>";
        let rendered = html_to_text(html, 1000, 10);
        assert_eq!(rendered.text, "Buy Viagra now\ncheap\n");
    }

    #[test]
    fn script_and_style_are_skipped_and_links_collected() {
        let html = "<style>p{x}</style><SCRIPT>var a='<p>';</SCRIPT><a href=\"http://x.example/a?b=1&amp;c=2\">go</a><img src=http://img.example/i.gif>";
        let rendered = html_to_text(html, 1000, 10);
        assert_eq!(rendered.text, "go");
        assert_eq!(
            rendered.links,
            ["http://x.example/a?b=1&c=2", "http://img.example/i.gif"]
        );
        assert_eq!(rendered.images, 1);
    }

    #[test]
    fn unterminated_markup_and_limits_do_not_panic() {
        for html in [
            "<",
            "<a href='",
            "<!--",
            "<script>",
            "a < b",
            "<p",
            "&",
            "&#xffffffff;",
        ] {
            let _ = html_to_text(html, 4, 1);
        }
        let rendered = html_to_text("ééééé", 3, 1);
        assert_eq!(rendered.text, "é");
        assert!(rendered.truncated);
    }
}
