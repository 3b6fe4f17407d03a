//! Compiles `config/cognitive_features.yaml` (or the file `OPENCODE_FLAGS_FILE` names) into the
//! flags' defaults: an unknown key, a wrong type or a missing key fails the build, naming the
//! key's path.

#[path = "build/flags_file.rs"]
mod flags_file;
#[path = "src/flags/schema.rs"]
#[allow(dead_code)]
mod schema;

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=OPENCODE_FLAGS_FILE");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let path = std::env::var("OPENCODE_FLAGS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest.join("../../config/cognitive_features.yaml"));
    println!("cargo:rerun-if-changed={}", path.display());
    let fail = |message: String| -> ! {
        eprintln!("error: {}: {message}", path.display());
        std::process::exit(1)
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| fail(format!("cannot read it: {err}")));
    let source = flags_file::compile(&text).unwrap_or_else(|problem| fail(problem.to_string()));
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("flag_defaults.rs");
    std::fs::write(&out, source).unwrap_or_else(|err| fail(format!("cannot write {}: {err}", out.display())));
}
