//! Manifest CSV files: `path` and `label` required, `split` and `category` optional.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use spamflow_model::Category;

/// One labeled message listed in a manifest.
#[derive(Debug, Clone)]
pub struct Row {
    /// Path as written in the manifest (relative to the manifest's folder).
    pub path: String,
    /// Absolute or working-directory-relative location of the file.
    pub file: PathBuf,
    /// True for spam.
    pub spam: bool,
    /// Category of a spam message, when labeled.
    pub category: Option<Category>,
}

/// Which rows of a manifest a command reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split<'a> {
    /// Every row.
    All,
    /// The rows of this split, as `--split` asked: a manifest without a `split` column is an
    /// error.
    Named(&'a str),
    /// The command's default split: its rows, or every row of a manifest without a `split`
    /// column (the column is optional).
    Default(&'a str),
}

impl<'a> Split<'a> {
    /// The split `--split` named, else the command's `default`.
    pub fn chosen(given: Option<&'a str>, default: &'a str) -> Self {
        given.map_or(Split::Default(default), Split::Named)
    }
}

/// The rows of a manifest and the SHA-256 of its bytes.
#[derive(Debug)]
pub struct Manifest {
    /// Rows of the selected split.
    pub rows: Vec<Row>,
    /// Hex SHA-256 of the manifest file.
    pub sha256: String,
    /// The split the rows were selected by; `None` when every row was read.
    pub split: Option<String>,
}

impl Manifest {
    /// ` of split "name"` when rows were selected by split, else nothing: for messages.
    pub fn selection(&self) -> String {
        selection(self.split.as_deref())
    }
}

/// ` of split "name"` for rows selected by `split`, nothing for every row: for messages.
pub fn selection(split: Option<&str>) -> String {
    split.map_or_else(String::new, |split| format!(" of split {split:?}"))
}

/// Reads `manifest`, keeping the rows `split` selects.
pub fn read(manifest: &Path, split: Split<'_>) -> anyhow::Result<Manifest> {
    let bytes = std::fs::read(manifest)
        .with_context(|| format!("cannot read manifest {}", manifest.display()))?;
    let base = manifest.parent().unwrap_or_else(|| Path::new("."));
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(bytes.as_slice());
    let headers = reader
        .headers()
        .with_context(|| format!("{}: no CSV header", manifest.display()))?
        .clone();
    // Spreadsheet exports often start with a UTF-8 byte-order mark.
    let column = |name: &str| {
        headers.iter().position(|h| {
            h.trim_start_matches('\u{feff}')
                .trim()
                .eq_ignore_ascii_case(name)
        })
    };
    let (Some(path_col), Some(label_col)) = (column("path"), column("label")) else {
        bail!(
            "{}: the header must name `path` and `label` columns (found: {})",
            manifest.display(),
            headers.iter().collect::<Vec<_>>().join(",")
        );
    };
    let split_col = column("split");
    let category_col = column("category");
    let wanted = match (split, split_col) {
        (Split::All, _) | (Split::Default(_), None) => None,
        (Split::Named(name), None) => bail!(
            "{}: --split {name} was given but the manifest has no `split` column (without \
             --split every row is read)",
            manifest.display()
        ),
        (Split::Named(name) | Split::Default(name), Some(_)) => Some(name),
    };
    let mut rows = Vec::new();
    // Category names of spam rows that are not spamflow's, counted for one warning.
    let mut unknown_categories: BTreeMap<String, usize> = BTreeMap::new();
    for (line, record) in reader.records().enumerate() {
        let record = record
            .with_context(|| format!("{}: bad CSV record {}", manifest.display(), line + 2))?;
        let field = |col: Option<usize>| {
            col.and_then(|c| record.get(c))
                .map(str::trim)
                .unwrap_or_default()
        };
        if let Some(wanted) = wanted
            && field(split_col) != wanted
        {
            continue;
        }
        let path = field(Some(path_col)).to_owned();
        let spam = match field(Some(label_col)).to_ascii_lowercase().as_str() {
            "spam" => true,
            "ham" => false,
            other => bail!(
                "{}: line {}: label must be `spam` or `ham`, found {other:?}",
                manifest.display(),
                line + 2
            ),
        };
        let category = match field(category_col) {
            "" => None,
            _ if !spam => None,
            name => name.parse::<Category>().ok().or_else(|| {
                *unknown_categories
                    .entry(name.to_ascii_lowercase())
                    .or_default() += 1;
                None
            }),
        };
        rows.push(Row {
            file: base.join(&path),
            path,
            spam,
            category,
        });
    }
    if !unknown_categories.is_empty() {
        let counts: Vec<String> = unknown_categories
            .iter()
            .map(|(name, count)| format!("{name:?} {count}"))
            .collect();
        eprintln!(
            "warning: {}: {} spam rows have categories spamflow does not know ({}); they are \
             read as spam without a category (spamflow's: {})",
            manifest.display(),
            unknown_categories.values().sum::<usize>(),
            counts.join(", "),
            Category::ALL.map(Category::as_str).join(", ")
        );
    }
    Ok(Manifest {
        rows,
        sha256: hex::encode(Sha256::digest(&bytes)),
        split: wanted.map(str::to_owned),
    })
}

/// Hex SHA-256 over the sorted `(path, label, category)` rows: identifies the training data
/// independently of row order and of columns that do not matter.
pub fn rows_fingerprint(rows: &[Row]) -> String {
    let mut lines: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}\t{}\t{}\n",
                r.path,
                if r.spam { "spam" } else { "ham" },
                r.category.map_or("", |c| c.as_str())
            )
        })
        .collect();
    lines.sort();
    let mut hasher = Sha256::new();
    for line in lines {
        hasher.update(line.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Reads every row's file, in parallel, at most `max_bytes` of each (see
/// [`crate::input::kept_message_bytes`]), failing with the path of the first unreadable file.
pub fn read_messages(rows: &[Row], max_bytes: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    use rayon::prelude::*;
    rows.par_iter()
        .map(|row| read_message(row, max_bytes))
        .collect()
}

/// The bytes of `row`'s message file, up to `max_bytes`.
pub fn read_message(row: &Row, max_bytes: usize) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let read = |path: &Path| -> std::io::Result<Vec<u8>> {
        let file = std::fs::File::open(path)?;
        let size = file.metadata().map_or(0, |m| m.len());
        let kept = u64::try_from(max_bytes).unwrap_or(u64::MAX);
        let mut bytes = Vec::with_capacity(usize::try_from(size.min(kept)).unwrap_or(0));
        file.take(kept).read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    read(&row.file).with_context(|| format!("cannot read message {}", row.file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_files_are_read_up_to_the_limit() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("long.eml"), vec![b'x'; 5000])?;
        std::fs::write(dir.path().join("short.eml"), b"Subject: s\n\nbody\n")?;
        let row = |name: &str| Row {
            path: name.to_owned(),
            file: dir.path().join(name),
            spam: false,
            category: None,
        };
        let rows = [row("long.eml"), row("short.eml")];
        let read = read_messages(&rows, 1000)?;
        assert_eq!(read, [vec![b'x'; 1000], b"Subject: s\n\nbody\n".to_vec()]);
        assert_eq!(read_messages(&rows, usize::MAX)?[0].len(), 5000);
        let missing = read_messages(&[row("missing.eml")], 1000).err();
        assert!(
            missing.is_some_and(|e| e.to_string().contains("missing.eml")),
            "an unreadable file is named"
        );
        Ok(())
    }

    #[test]
    fn reads_required_and_optional_columns() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let manifest = dir.path().join("m.csv");
        std::fs::write(
            &manifest,
            "extra,label,path,split,category\nx,spam,a.eml,train,pharma\ny,ham,b.eml,test,\nz,HAM,c.eml,train,\n",
        )?;
        let all = read(&manifest, Split::All)?;
        assert_eq!((all.rows.len(), all.split.as_deref()), (3, None));
        let train = read(&manifest, Split::Named("train"))?;
        assert_eq!(train.rows.len(), 2);
        assert_eq!(train.selection(), " of split \"train\"");
        let default = read(&manifest, Split::chosen(None, "test"))?;
        assert_eq!(
            (default.rows.len(), default.split.as_deref()),
            (1, Some("test"))
        );
        assert_eq!(train.rows[0].category, Some(Category::Pharma));
        assert_eq!(train.rows[0].file, dir.path().join("a.eml"));
        assert!(!train.rows[1].spam);
        assert_eq!(all.sha256.len(), 64);

        // Without a `split` column a default split reads every row; a named one is an error.
        std::fs::write(&manifest, "path,label\na.eml,spam\nb.eml,ham\n")?;
        let whole = read(&manifest, Split::chosen(None, "test"))?;
        assert_eq!((whole.rows.len(), whole.split.as_deref()), (2, None));
        assert_eq!(whole.selection(), "");
        let named = read(&manifest, Split::chosen(Some("test"), "test"));
        assert!(
            named
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
                .contains("--split test was given but the manifest has no `split` column")
        );

        // Categories spamflow does not know leave the spam without one, counted; a ham's
        // category is ignored.
        std::fs::write(
            &manifest,
            "path,label,category\na.eml,spam,Phishing\nb.eml,spam,phishing\nc.eml,spam,PHARMA\nd.eml,ham,scam\n",
        )?;
        let labeled = read(&manifest, Split::All)?;
        let categories: Vec<_> = labeled.rows.iter().map(|r| r.category).collect();
        assert_eq!(categories, [None, None, Some(Category::Pharma), None]);

        // A byte-order mark and CRLF line ends, as spreadsheets write them.
        std::fs::write(&manifest, "\u{feff}Path,Label\r\na.eml,spam\r\n")?;
        let exported = read(&manifest, Split::All)?;
        assert_eq!(exported.rows.len(), 1);
        assert_eq!(exported.rows[0].path, "a.eml");

        std::fs::write(&manifest, "path,label\na.eml,maybe\n")?;
        assert!(
            read(&manifest, Split::All)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
                .contains("label must be")
        );
        std::fs::write(&manifest, "file,label\na.eml,spam\n")?;
        assert!(read(&manifest, Split::All).is_err());
        Ok(())
    }

    #[test]
    fn fingerprint_ignores_row_order() {
        let row = |path: &str, spam| Row {
            path: path.into(),
            file: path.into(),
            spam,
            category: None,
        };
        assert_eq!(
            rows_fingerprint(&[row("a", true), row("b", false)]),
            rows_fingerprint(&[row("b", false), row("a", true)])
        );
        assert_ne!(
            rows_fingerprint(&[row("a", true)]),
            rows_fingerprint(&[row("a", false)])
        );
    }
}
