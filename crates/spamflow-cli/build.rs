//! Embeds the shipped default model (`models/default.spamflow`) into the binary when present, so
//! `spamflow classify` works without `--model` wherever the binary is copied.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let model = manifest_dir.join("../../models/default.spamflow");
    println!("cargo:rerun-if-changed={}", model.display());
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("default_model.rs");
    let code = match model.canonicalize() {
        Ok(path) => format!("Some(include_bytes!({:?}))", path.display().to_string()),
        Err(_) => "None".to_owned(),
    };
    if let Err(error) = std::fs::write(
        &out,
        format!("const DEFAULT_MODEL: Option<&[u8]> = {code};\n"),
    ) {
        panic!("cannot write {}: {error}", out.display());
    }
}
