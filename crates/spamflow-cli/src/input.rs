//! Messages to classify from files, folders, mbox files or standard input.

use std::fs::File;
use std::io::Read;

use anyhow::Context;

/// One message and where it came from.
#[derive(Debug)]
pub struct Message {
    /// The path, `path#N` for the N-th message of an mbox file, or `-` for stdin.
    pub id: String,
    /// Raw bytes.
    pub bytes: Vec<u8>,
}

/// Calls `each` with every message named by `sources` (`-` is stdin), in order, reading one
/// file at a time so memory stays bounded by the largest file. Folders are walked recursively in
/// name order; a file holding several mbox messages yields one message each.
pub fn for_each_message(
    sources: &[String],
    mut each: impl FnMut(Message) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut pending = Vec::new();
    for source in sources {
        if source == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
            push_split(&mut pending, "-", bytes);
        } else {
            // One open and one stat per file: the stat of the open file says whether it is a
            // folder and how large it is.
            let mut file = File::open(source).with_context(|| format!("cannot read {source}"))?;
            let metadata = file
                .metadata()
                .with_context(|| format!("cannot read {source}"))?;
            if metadata.is_dir() {
                drop(file);
                for entry in walkdir::WalkDir::new(source).sort_by_file_name() {
                    let entry = entry.with_context(|| format!("cannot walk {source}"))?;
                    if entry.file_type().is_file() {
                        let bytes = std::fs::read(entry.path())
                            .with_context(|| format!("cannot read {}", entry.path().display()))?;
                        push_split(&mut pending, &entry.path().display().to_string(), bytes);
                        pending.drain(..).try_for_each(&mut each)?;
                    }
                }
            } else {
                let mut bytes =
                    Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0) + 1);
                file.read_to_end(&mut bytes)
                    .with_context(|| format!("cannot read {source}"))?;
                push_split(&mut pending, source, bytes);
            }
        }
        pending.drain(..).try_for_each(&mut each)?;
    }
    Ok(())
}

fn push_split(messages: &mut Vec<Message>, id: &str, bytes: Vec<u8>) {
    let starts = mbox_starts(&bytes);
    if starts.len() <= 1 {
        messages.push(Message {
            id: id.to_owned(),
            bytes,
        });
        return;
    }
    for (n, window) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(bytes.len());
        messages.push(Message {
            id: format!("{id}#{}", n + 1),
            bytes: bytes[*window..end].to_vec(),
        });
    }
}

/// Offsets where mbox messages start: the beginning of a file that opens with `From `, and
/// every `From ` line that follows an empty line.
fn mbox_starts(bytes: &[u8]) -> Vec<usize> {
    if !bytes.starts_with(b"From ") {
        return Vec::new();
    }
    let mut starts = vec![0];
    // Matches of the needle cannot overlap, so consecutive matches are all the candidates.
    for found in memchr::memmem::find_iter(bytes, b"\n\nFrom ") {
        let start = found + 2;
        if is_envelope_line(&bytes[start..]) {
            starts.push(start);
        }
    }
    starts
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

    #[test]
    fn mbox_files_split_and_single_messages_do_not() {
        let mbox =
            b"From a@x Mon Jan  1 00:00:00 2002\nSubject: one\n\nbody\n\nFrom b@y Tue Jan  2 00:00:00 2002\nSubject: two\n\nFrom here on\n"
                .to_vec();
        let mut messages = Vec::new();
        push_split(&mut messages, "box", mbox);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].id, "box#2");
        assert!(messages[1].bytes.starts_with(b"From b@y"));

        let mut single = Vec::new();
        push_split(
            &mut single,
            "one.eml",
            b"From a@x Mon\nSubject: s\n\nFrom me, hello\n".to_vec(),
        );
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].id, "one.eml");
    }

    #[test]
    fn folders_are_walked_in_name_order() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("sub"))?;
        std::fs::write(dir.path().join("b.eml"), "Subject: b\n\nb")?;
        std::fs::write(dir.path().join("sub/a.eml"), "Subject: a\n\na")?;
        let mut ids = Vec::new();
        for_each_message(&[dir.path().display().to_string()], |m| {
            ids.push(m.id.rsplit('/').next().unwrap_or_default().to_owned());
            Ok(())
        })?;
        assert_eq!(ids, ["b.eml", "a.eml"]);
        Ok(())
    }
}
