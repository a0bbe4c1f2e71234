//! Messages to classify from files, folders, mbox files or standard input.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind};

use anyhow::Context;

/// Bytes of a message worth keeping for a parser with `limits`: one more than it reads, so that
/// it still flags a longer message as truncated.
pub fn kept_message_bytes(limits: &spamflow_features::Limits) -> usize {
    limits.max_message_bytes.saturating_add(1)
}

/// One message and where it came from.
#[derive(Debug)]
pub struct Message {
    /// The path, `path#N` for the N-th message of an mbox file, or `-` for stdin.
    pub id: String,
    /// Raw bytes: at most the `max_bytes` given to [`for_each_message`].
    pub bytes: Vec<u8>,
}

/// Calls `each` with every message named by `sources` (`-` is stdin), in order. Folders are
/// walked recursively in name order; a file or stream holding several mbox messages yields one
/// message each. Input is streamed: besides what `each` keeps, memory stays bounded by two
/// messages of at most `max_bytes` each, whatever the size of a file or of standard input (an
/// endless stream included); the rest of a longer message is read past and dropped.
pub fn for_each_message(
    sources: &[String],
    max_bytes: usize,
    mut each: impl FnMut(Message) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for source in sources {
        if source == "-" {
            split_messages(std::io::stdin().lock(), "-", max_bytes, &mut each)?;
            continue;
        }
        // One open and one stat per file: the stat of the open file says whether it is a folder.
        let file = File::open(source).with_context(|| format!("cannot read {source}"))?;
        let metadata = file
            .metadata()
            .with_context(|| format!("cannot read {source}"))?;
        if !metadata.is_dir() {
            split_messages(BufReader::new(file), source, max_bytes, &mut each)?;
            continue;
        }
        drop(file);
        for entry in walkdir::WalkDir::new(source).sort_by_file_name() {
            let entry = entry.with_context(|| format!("cannot walk {source}"))?;
            if entry.file_type().is_file() {
                let path = entry.path().display().to_string();
                let file =
                    File::open(entry.path()).with_context(|| format!("cannot read {path}"))?;
                split_messages(BufReader::new(file), &path, max_bytes, &mut each)?;
            }
        }
    }
    Ok(())
}

/// Gives `each` the messages of one input named `id` (`-` is standard input): the whole input as
/// one message named `id`, or, when it starts with `From ` and holds more than one mbox message,
/// each of them as `id#N`. An empty input is one empty message. Errors of `each` pass through
/// as they are; read errors name the input.
fn split_messages(
    reader: impl BufRead,
    id: &str,
    max_bytes: usize,
    each: &mut impl FnMut(Message) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut splitter = MboxSplitter::new(reader, max_bytes);
    let mut next = || {
        splitter.next_message().with_context(|| match id {
            "-" => "cannot read standard input".to_owned(),
            path => format!("cannot read {path}"),
        })
    };
    let message = |id: String, bytes: Vec<u8>| Message { id, bytes };
    let Some(first) = next()? else {
        return each(message(id.to_owned(), Vec::new()));
    };
    let Some(second) = next()? else {
        return each(message(id.to_owned(), first));
    };
    let mut pending = Some(second);
    each(message(format!("{id}#1"), first))?;
    let mut n = 1;
    while let Some(bytes) = pending.take() {
        n += 1;
        each(message(format!("{id}#{n}"), bytes))?;
        pending = next()?;
    }
    Ok(())
}

/// Appends to `message` what room is left of `max_bytes` of `bytes`; its buffer grows to at
/// most `max_bytes`.
fn append_within(message: &mut Vec<u8>, bytes: &[u8], max_bytes: usize) {
    let room = max_bytes.saturating_sub(message.len());
    let kept = &bytes[..bytes.len().min(room)];
    let needed = message.len() + kept.len();
    if needed > message.capacity() {
        // Double as `Vec` does, but never past the limit: a message of the limit's size then
        // holds no more than that.
        let target = needed.max(message.capacity() * 2).min(max_bytes);
        message.reserve_exact(target - message.len());
    }
    message.extend_from_slice(kept);
}

/// Longest line piece read at once: an envelope line of 4 KiB and its line ending.
const LINE_PIECE: usize = 4096 + 2;

/// Splits a byte stream into mbox messages as it reads: a message starts at the beginning of a
/// stream that opens with `From `, and at every envelope line ([`is_envelope_line`]) that
/// follows an empty line (`\n` alone); each message runs to the start of the next (its envelope
/// line included). A stream that does not open with `From ` is one message. Lines are read in
/// pieces of at most [`LINE_PIECE`] bytes (a longer line is no envelope line), and a message
/// keeps at most `max_bytes` bytes.
struct MboxSplitter<R> {
    reader: R,
    max_bytes: usize,
    /// Whether the stream opens with `From `; known after its first piece.
    opens_with_from: Option<bool>,
    /// The envelope line that opened the next message, read while finishing the one before.
    next_start: Option<Vec<u8>>,
    /// The piece of a line last read.
    piece: Vec<u8>,
    /// Whether the next piece starts a line.
    at_line_start: bool,
    /// Whether the last complete line was empty (`\n` alone).
    after_empty_line: bool,
    /// Whether the end of the stream was reached.
    finished: bool,
}

impl<R: BufRead> MboxSplitter<R> {
    fn new(reader: R, max_bytes: usize) -> Self {
        MboxSplitter {
            reader,
            max_bytes,
            opens_with_from: None,
            next_start: None,
            piece: Vec::with_capacity(LINE_PIECE),
            at_line_start: true,
            after_empty_line: false,
            finished: false,
        }
    }

    /// The next message, `None` at the end of the stream.
    fn next_message(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.finished {
            return Ok(None);
        }
        let mut message = Vec::new();
        let mut started = false;
        if let Some(envelope) = self.next_start.take() {
            append_within(&mut message, &envelope, self.max_bytes);
            started = true;
        }
        loop {
            let line_start = self.at_line_start;
            if !self.read_piece()? {
                self.finished = true;
                return Ok(started.then_some(message));
            }
            // A piece stops short of `LINE_PIECE` without `\n` only at the end of the stream,
            // which ends its line too.
            let line_end = self.piece.last() == Some(&b'\n') || self.piece.len() < LINE_PIECE;
            let opens_with_from = *self
                .opens_with_from
                .get_or_insert_with(|| self.piece.starts_with(b"From "));
            // After an empty line, a piece starts a line.
            let opens_next = started
                && opens_with_from
                && self.after_empty_line
                && line_end
                && is_envelope_line(&self.piece);
            if line_start {
                self.after_empty_line = self.piece == b"\n";
            }
            self.at_line_start = line_end;
            if opens_next {
                self.next_start = Some(self.piece.clone());
                return Ok(Some(message));
            }
            append_within(&mut message, &self.piece, self.max_bytes);
            started = true;
        }
    }

    /// Reads the rest of the current line into `piece`, at most [`LINE_PIECE`] bytes (with its
    /// `\n` when it ends there); false at the end of the stream.
    fn read_piece(&mut self) -> std::io::Result<bool> {
        self.piece.clear();
        while self.piece.len() < LINE_PIECE {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            let room = LINE_PIECE - self.piece.len();
            let window = &available[..available.len().min(room)];
            let (used, line_end) = match memchr::memchr(b'\n', window) {
                Some(at) => (at + 1, true),
                None => (window.len(), false),
            };
            self.piece.extend_from_slice(&window[..used]);
            self.reader.consume(used);
            if line_end {
                break;
            }
        }
        Ok(!self.piece.is_empty())
    }
}

/// True when the line at the start of `bytes` looks like an mbox envelope line, `From sender
/// date`, whose date ends with a four-digit year; body text such as "From here on" does not.
fn is_envelope_line(bytes: &[u8]) -> bool {
    if !bytes.starts_with(b"From ") {
        return false;
    }
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let year = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    year.len() == 4
        && year.iter().all(u8::is_ascii_digit)
        && line.split(|&b| b == b' ').filter(|t| !t.is_empty()).count() >= 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// The messages `split_messages` gives for `input` read through a buffer of `capacity`
    /// bytes: `(id, bytes)`.
    fn split_through(
        input: &[u8],
        capacity: usize,
        max_bytes: usize,
    ) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let mut messages = Vec::new();
        let reader = std::io::BufReader::with_capacity(capacity, input);
        split_messages(reader, "box", max_bytes, &mut |m| {
            messages.push((m.id, m.bytes));
            Ok(())
        })?;
        Ok(messages)
    }

    fn split(input: &[u8], max_bytes: usize) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        split_through(input, 8192, max_bytes)
    }

    #[test]
    fn mbox_files_split_and_single_messages_do_not() -> anyhow::Result<()> {
        let mbox = b"From a@x Mon Jan  1 00:00:00 2002\nSubject: one\n\nbody\n\nFrom b@y Tue Jan  2 00:00:00 2002\nSubject: two\n\nFrom here on\n";
        let messages = split(mbox, usize::MAX)?;
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].0, "box#1");
        assert!(messages[0].1.ends_with(b"body\n\n"));
        assert_eq!(messages[1].0, "box#2");
        assert!(messages[1].1.starts_with(b"From b@y"));
        assert_eq!(messages[0].1.len() + messages[1].1.len(), mbox.len());

        let single = split(b"From a@x Mon\nSubject: s\n\nFrom me, hello\n", usize::MAX)?;
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].0, "box");
        assert_eq!(split(b"", usize::MAX)?, [("box".to_owned(), Vec::new())]);
        // The last envelope line of a file without a final line break still opens a message.
        let unended = split(
            b"From a@x Mon Jan  1 00:00:00 2002\nbody\n\nFrom b@y Tue Jan  2 00:00:00 2002",
            usize::MAX,
        )?;
        assert_eq!(unended.len(), 2);
        Ok(())
    }

    #[test]
    fn long_messages_and_lines_are_cut_and_the_next_message_still_found() -> anyhow::Result<()> {
        let mut mbox = b"From a@x Mon Jan  1 00:00:00 2002\nSubject: one\n\n".to_vec();
        mbox.extend(std::iter::repeat_n(b'x', 3 * LINE_PIECE + 7));
        mbox.extend_from_slice(b"\n\nFrom b@y Tue Jan  2 00:00:00 2002\nSubject: two\n\nshort\n");
        let messages = split(&mbox, 100)?;
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].1.len(), 100);
        assert!(mbox.starts_with(&messages[0].1));
        assert!(messages[1].1.starts_with(b"From b@y"));
        assert!(mbox.ends_with(&messages[1].1));
        // Not an mbox: one message, cut.
        let text = vec![b'y'; 5 * LINE_PIECE];
        let one = split(&text, 10)?;
        assert_eq!(one, [("box".to_owned(), vec![b'y'; 10])]);
        Ok(())
    }

    #[test]
    fn an_endless_stream_is_read_in_bounded_memory() -> anyhow::Result<()> {
        // 64 MiB of one line, read through a 1 KiB limit: the message is cut, and reading ends.
        let endless = std::io::repeat(b'z').take(64 << 20);
        let mut messages = Vec::new();
        split_messages(std::io::BufReader::new(endless), "-", 1024, &mut |m| {
            messages.push((m.bytes.len(), m.bytes.capacity()));
            Ok(())
        })?;
        assert_eq!(messages, [(1024, 1024)]);
        Ok(())
    }

    #[test]
    fn errors_of_the_caller_are_not_called_read_errors() {
        let result = split_messages(&b"Subject: s\n\nbody\n"[..], "one.eml", 100, &mut |_| {
            anyhow::bail!("broken pipe")
        });
        let error = result.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert_eq!(error, "broken pipe");
    }

    /// The messages of `bytes` by searching the whole input at once, `(id, bytes)`: how
    /// `classify` split mbox files before it streamed them (with the streamed reader's bound on
    /// an envelope line's length), kept as the reference.
    fn reference_split(bytes: &[u8]) -> Vec<(String, &[u8])> {
        let mut starts = vec![0];
        if bytes.starts_with(b"From ") {
            for found in memchr::memmem::find_iter(bytes, b"\n\nFrom ") {
                let line = &bytes[found + 2..];
                let line_len = memchr::memchr(b'\n', line).map_or(line.len(), |at| at + 1);
                if line_len <= LINE_PIECE && is_envelope_line(line) {
                    starts.push(found + 2);
                }
            }
        }
        let single = starts.len() == 1;
        starts
            .iter()
            .enumerate()
            .map(|(n, &start)| {
                let end = starts.get(n + 1).copied().unwrap_or(bytes.len());
                let id = if single {
                    "box".to_owned()
                } else {
                    format!("box#{}", n + 1)
                };
                (id, &bytes[start..end])
            })
            .collect()
    }

    proptest::proptest! {
        /// Streamed splitting cuts where searching the whole input does, names the messages the
        /// same way and keeps the first `max_bytes` of each, whatever the read buffer's size,
        /// for inputs made of envelope lines (with and without a final line break, and too long
        /// to be one), look-alikes, empty lines, CRLF, text and lines around a piece's length.
        #[test]
        fn streaming_splits_where_the_whole_input_search_does(
            lines in proptest::collection::vec(
                proptest::sample::select(
                    [
                        "From a@x Mon Jan  1 00:00:00 2002\n",
                        "From b@y Tue Jan  2 00:00:00 2002\r\n",
                        "From c@z Wed Jan  3 00:00:00 2002",
                        "From here on\n",
                        "From \n",
                        "\n",
                        "\r\n",
                        "Subject: s\n",
                        ">From a@x Mon Jan  1 00:00:00 2002\n",
                        "text without end",
                    ]
                    .map(str::to_owned)
                    .into_iter()
                    .chain([
                        format!("{}\n", "x".repeat(LINE_PIECE - 1)),
                        format!("{}\n", "x".repeat(LINE_PIECE)),
                        "x".repeat(LINE_PIECE + 3),
                        format!("From a@x {} Jan  1 00:00:00 2002\n", "y".repeat(LINE_PIECE)),
                        // Its first piece alone would pass for an envelope line.
                        format!("From a@x {} 2002 tail\n", "y".repeat(LINE_PIECE - 14)),
                    ])
                    .collect::<Vec<_>>(),
                ),
                0..24,
            ),
            capacity in 1..=LINE_PIECE + 1,
            small_limit in proptest::bool::ANY,
        ) {
            let input = lines.concat().into_bytes();
            let max_bytes = if small_limit { 40 } else { usize::MAX };
            let expected: Vec<(String, Vec<u8>)> = reference_split(&input)
                .into_iter()
                .map(|(id, bytes)| (id, bytes[..bytes.len().min(max_bytes)].to_vec()))
                .collect();
            let got = split_through(&input, capacity, max_bytes)
                .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn folders_are_walked_in_name_order() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("sub"))?;
        std::fs::write(dir.path().join("b.eml"), "Subject: b\n\nb")?;
        std::fs::write(dir.path().join("sub/a.eml"), "Subject: a\n\na")?;
        let mut ids = Vec::new();
        for_each_message(&[dir.path().display().to_string()], usize::MAX, |m| {
            ids.push(m.id.rsplit('/').next().unwrap_or_default().to_owned());
            Ok(())
        })?;
        assert_eq!(ids, ["b.eml", "a.eml"]);
        Ok(())
    }
}
