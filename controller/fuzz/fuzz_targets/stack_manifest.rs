//! Stack manifest bytes → the loaded stack (`stackd watch` and
//! `stackd validate` on a `kind: Stack` file).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = common::write("stack.yaml", data);
    let _ = stackd::load::stack::has_stack_header(&String::from_utf8_lossy(data));
    let _ = stackd::load::stack::load_stack_manifest(&file, &common::options(Vec::new()));
});
