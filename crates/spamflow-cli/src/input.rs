//! Messages to classify from files, folders, mbox files or standard input.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind};

use anyhow::Context;

/// One message and where it came from.
#[derive(Debug)]
pub struct Message {
    /// The path, `path#N` for the N-th message of an mbox file, or `-` for stdin.
    pub id: String,
    /// Raw bytes: at most the `max_bytes` given to [`for_each_message`].
    pub bytes: Vec<u8>,
    /// True when the message was longer than `max_bytes` and its end was skipped.
    pub truncated: bool,
}

/// Calls `each` with every message named by `sources` (`-` is stdin), in order. Folders are
/// walked recursively in name order; a file or stream holding several mbox messages yields one
/// message each. Input is streamed: memory stays bounded by two messages of at most `max_bytes`
/// each, whatever the size of a file or of standard input (an endless stream included); the rest
/// of a longer message is read past and dropped.
pub fn for_each_message(
    sources: &[String],
    max_bytes: usize,
    mut each: impl FnMut(Message) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for source in sources {
        if source == "-" {
            split_messages(std::io::stdin().lock(), "-", max_bytes, &mut each)
                .context("cannot read standard input")?;
            continue;
        }
        // One open and one stat per file: the stat of the open file says whether it is a folder.
        let file = File::open(source).with_context(|| format!("cannot read {source}"))?;
        let metadata = file
            .metadata()
            .with_context(|| format!("cannot read {source}"))?;
        if !metadata.is_dir() {
            split_messages(BufReader::new(file), source, max_bytes, &mut each)
                .with_context(|| format!("cannot read {source}"))?;
            continue;
        }
        drop(file);
        for entry in walkdir::WalkDir::new(source).sort_by_file_name() {
            let entry = entry.with_context(|| format!("cannot walk {source}"))?;
            if entry.file_type().is_file() {
                let path = entry.path().display().to_string();
                let file =
                    File::open(entry.path()).with_context(|| format!("cannot read {path}"))?;
                split_messages(BufReader::new(file), &path, max_bytes, &mut each)
                    .with_context(|| format!("cannot read {path}"))?;
            }
        }
    }
    Ok(())
}

/// Gives `each` the messages of one input: the whole input as one message named `id`, or, when
/// it starts with `From ` and holds more than one mbox message, each of them as `id#N`. An empty
/// input is one empty message.
fn split_messages(
    reader: impl BufRead,
    id: &str,
    max_bytes: usize,
    each: &mut impl FnMut(Message) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut splitter = MboxSplitter::new(reader, max_bytes);
    let Some(first) = splitter.next_message()? else {
        return each(Message {
            id: id.to_owned(),
            bytes: Vec::new(),
            truncated: false,
        });
    };
    let Some(second) = splitter.next_message()? else {
        return each(first.named(id.to_owned()));
    };
    each(first.named(format!("{id}#1")))?;
    each(second.named(format!("{id}#2")))?;
    let mut n = 2;
    while let Some(next) = splitter.next_message()? {
        n += 1;
        each(next.named(format!("{id}#{n}")))?;
    }
    Ok(())
}

/// A message's bytes as read, before it has a name.
struct Unnamed {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Unnamed {
    fn named(self, id: String) -> Message {
        Message {
            id,
            bytes: self.bytes,
            truncated: self.truncated,
        }
    }
}

/// Longest line piece read at once; an mbox envelope line is far shorter.
const LINE_PIECE: usize = 4096;

/// Splits a byte stream into mbox messages as it reads: a message starts at the beginning of a
/// stream that opens with `From `, and at every envelope line (see [`is_envelope_line`]) that
/// follows an empty line; each message runs to the start of the next (its envelope line
/// included). A stream that does not open with `From ` is one message. Lines are read in pieces
/// of at most [`LINE_PIECE`] bytes (a longer line is no envelope line), and a message keeps at
/// most `max_bytes` bytes.
struct MboxSplitter<R> {
    reader: R,
    max_bytes: usize,
    /// Whether the stream opens with `From `; known after its first piece.
    mbox: Option<bool>,
    /// The envelope line that opened the next message, read while finishing the one before.
    next_start: Option<Vec<u8>>,
    /// The piece of a line last read.
    piece: Vec<u8>,
    /// Whether the next piece starts a line.
    at_line_start: bool,
    /// Whether the last complete line was empty (`\n` alone).
    after_empty_line: bool,
    finished: bool,
}

impl<R: BufRead> MboxSplitter<R> {
    fn new(reader: R, max_bytes: usize) -> Self {
        MboxSplitter {
            reader,
            max_bytes,
            mbox: None,
            next_start: None,
            piece: Vec::with_capacity(LINE_PIECE),
            at_line_start: true,
            after_empty_line: false,
            finished: false,
        }
    }

    /// The next message, `None` at the end of the stream.
    fn next_message(&mut self) -> std::io::Result<Option<Unnamed>> {
        if self.finished {
            return Ok(None);
        }
        let mut message = Unnamed {
            bytes: Vec::new(),
            truncated: false,
        };
        let mut started = false;
        if let Some(envelope) = self.next_start.take() {
            self.keep(&mut message, &envelope);
            started = true;
        }
        loop {
            let line_start = self.at_line_start;
            if !self.read_piece()? {
                self.finished = true;
                return Ok(started.then_some(message));
            }
            let complete = self.piece.last() == Some(&b'\n');
            let mbox = *self
                .mbox
                .get_or_insert_with(|| self.piece.starts_with(b"From "));
            let opens_next = started
                && mbox
                && line_start
                && complete
                && self.after_empty_line
                && self.piece.starts_with(b"From ")
                && is_envelope_line(&self.piece);
            if line_start {
                self.after_empty_line = self.piece == b"\n";
            }
            self.at_line_start = complete;
            if opens_next {
                self.next_start = Some(std::mem::take(&mut self.piece));
                return Ok(Some(message));
            }
            let piece = std::mem::take(&mut self.piece);
            self.keep(&mut message, &piece);
            self.piece = piece;
            started = true;
        }
    }

    /// Appends what room is left in `message` of `bytes`.
    fn keep(&self, message: &mut Unnamed, bytes: &[u8]) {
        let room = self.max_bytes.saturating_sub(message.bytes.len());
        if bytes.len() > room {
            message.truncated = true;
        }
        message
            .bytes
            .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
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

    /// The messages `split_messages` gives for `input`: `(id, bytes, truncated)`.
    fn split(input: &[u8], max_bytes: usize) -> anyhow::Result<Vec<(String, Vec<u8>, bool)>> {
        let mut messages = Vec::new();
        split_messages(input, "box", max_bytes, &mut |m| {
            messages.push((m.id, m.bytes, m.truncated));
            Ok(())
        })?;
        Ok(messages)
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
        assert_eq!(
            split(b"", usize::MAX)?,
            [("box".to_owned(), Vec::new(), false)]
        );
        Ok(())
    }

    #[test]
    fn long_messages_and_lines_are_cut_and_the_next_message_still_found() -> anyhow::Result<()> {
        let mut mbox = b"From a@x Mon Jan  1 00:00:00 2002\nSubject: one\n\n".to_vec();
        mbox.extend(std::iter::repeat_n(b'x', 3 * LINE_PIECE + 7));
        mbox.extend_from_slice(b"\n\nFrom b@y Tue Jan  2 00:00:00 2002\nSubject: two\n\nshort\n");
        let messages = split(&mbox, 100)?;
        assert_eq!(messages.len(), 2);
        assert_eq!((messages[0].1.len(), messages[0].2), (100, true));
        assert!(mbox.starts_with(&messages[0].1));
        assert!(messages[1].1.starts_with(b"From b@y"));
        assert!(!messages[1].2);
        // Not an mbox: one message, cut.
        let text = vec![b'y'; 5 * LINE_PIECE];
        let one = split(&text, 10)?;
        assert_eq!(one, [("box".to_owned(), vec![b'y'; 10], true)]);
        Ok(())
    }

    #[test]
    fn an_endless_stream_is_read_in_bounded_memory() -> anyhow::Result<()> {
        // 64 MiB of one line, read through a 1 KiB limit: the message is cut, and reading ends.
        let endless = std::io::repeat(b'z').take(64 << 20);
        let mut messages = Vec::new();
        split_messages(std::io::BufReader::new(endless), "-", 1024, &mut |m| {
            messages.push((m.bytes.len(), m.bytes.capacity(), m.truncated));
            Ok(())
        })?;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].0, 1024);
        assert!(messages[0].1 < 64 * 1024, "capacity {}", messages[0].1);
        assert!(messages[0].2);
        Ok(())
    }

    /// The offsets where mbox messages start, by searching the whole input at once: how
    /// `classify` split mbox files before it streamed them, kept as the reference.
    fn reference_starts(bytes: &[u8]) -> Vec<usize> {
        if !bytes.starts_with(b"From ") {
            return vec![0];
        }
        let mut starts = vec![0];
        for found in memchr::memmem::find_iter(bytes, b"\n\nFrom ") {
            if is_envelope_line(&bytes[found + 2..]) {
                starts.push(found + 2);
            }
        }
        starts
    }

    proptest::proptest! {
        /// Streamed splitting cuts where searching the whole input does, for inputs made of
        /// envelope lines, look-alikes, empty lines, CRLF, text and lines longer than a piece.
        #[test]
        fn streaming_splits_where_the_whole_input_search_does(
            lines in proptest::collection::vec(
                proptest::sample::select([
                    "From a@x Mon Jan  1 00:00:00 2002\n",
                    "From b@y Tue Jan  2 00:00:00 2002\r\n",
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
                .chain([format!("{}\n", "long line ".repeat(LINE_PIECE / 4))])
                .collect::<Vec<_>>()),
                0..40,
            )
        ) {
            let input = lines.concat().into_bytes();
            let starts = reference_starts(&input);
            let expected: Vec<&[u8]> = starts
                .iter()
                .enumerate()
                .map(|(n, &start)| &input[start..starts.get(n + 1).copied().unwrap_or(input.len())])
                .collect();
            let messages = split(&input, usize::MAX)
                .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let got: Vec<&[u8]> = messages.iter().map(|m| m.1.as_slice()).collect();
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
