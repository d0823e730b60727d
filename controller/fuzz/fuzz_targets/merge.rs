//! Two compose files → `stackd config -f a.yaml -f b.yaml`: the second is
//! merged over the first. The input holds both, split at `\0---\0`.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (first, second) = common::split_two(data);
    let a = common::write("a.yaml", first);
    let b = common::write("b.yaml", second);
    if let Ok(loaded) = stackd::load::load_project(&common::options(vec![a, b])) {
        let _ = serde_json::to_string(&loaded.project);
    }
});
