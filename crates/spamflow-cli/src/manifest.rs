//! Manifest CSV files: `path` and `label` required, `split` and `category` optional.

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

/// The rows of a manifest and the SHA-256 of its bytes.
#[derive(Debug)]
pub struct Manifest {
    /// Rows of the selected split.
    pub rows: Vec<Row>,
    /// Hex SHA-256 of the manifest file.
    pub sha256: String,
}

/// Reads `manifest`, keeping rows of `split` (all rows when `None` or when there is no split
/// column and the split is not given).
pub fn read(manifest: &Path, split: Option<&str>) -> anyhow::Result<Manifest> {
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
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
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
    if split.is_some() && split_col.is_none() {
        bail!(
            "{}: --split was given but the manifest has no `split` column",
            manifest.display()
        );
    }
    let mut rows = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record
            .with_context(|| format!("{}: bad CSV record {}", manifest.display(), line + 2))?;
        let field = |col: Option<usize>| {
            col.and_then(|c| record.get(c))
                .map(str::trim)
                .unwrap_or_default()
        };
        if let Some(wanted) = split
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
            name => Some(
                name.parse::<Category>()
                    .with_context(|| format!("{}: line {}", manifest.display(), line + 2))?,
            ),
        };
        rows.push(Row {
            file: base.join(&path),
            path,
            spam,
            category: category.filter(|_| spam),
        });
    }
    Ok(Manifest {
        rows,
        sha256: hex::encode(Sha256::digest(&bytes)),
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

/// Reads every row's file, in parallel, failing with the path of the first unreadable file.
pub fn read_messages(rows: &[Row]) -> anyhow::Result<Vec<Vec<u8>>> {
    use rayon::prelude::*;
    rows.par_iter()
        .map(|row| {
            std::fs::read(&row.file)
                .with_context(|| format!("cannot read message {}", row.file.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_required_and_optional_columns() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let manifest = dir.path().join("m.csv");
        std::fs::write(
            &manifest,
            "extra,label,path,split,category\nx,spam,a.eml,train,pharma\ny,ham,b.eml,test,\nz,HAM,c.eml,train,\n",
        )?;
        let all = read(&manifest, None)?;
        assert_eq!(all.rows.len(), 3);
        let train = read(&manifest, Some("train"))?;
        assert_eq!(train.rows.len(), 2);
        assert_eq!(train.rows[0].category, Some(Category::Pharma));
        assert_eq!(train.rows[0].file, dir.path().join("a.eml"));
        assert!(!train.rows[1].spam);
        assert_eq!(all.sha256.len(), 64);

        std::fs::write(&manifest, "path,label\na.eml,maybe\n")?;
        assert!(
            read(&manifest, None)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
                .contains("label must be")
        );
        std::fs::write(&manifest, "file,label\na.eml,spam\n")?;
        assert!(read(&manifest, None).is_err());
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
