//! Compose bytes → `stackd config`: load and normalize one file, then print
//! the model as JSON and YAML. Any panic is a bug; errors are fine.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = common::write("compose.yaml", data);
    if let Ok(loaded) = stackd::load::load_project(&common::options(vec![file])) {
        let _ = serde_json::to_string_pretty(&loaded.project);
        let _ = serde_saphyr::to_string(&loaded.project);
    }
});
