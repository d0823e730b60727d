//! `${...}` interpolation: the first part of the input is the template, the
//! second (after `\0---\0`) the value every variable but a few fixed ones
//! has. Also checks that a value never outgrows the documented limit.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use stackd::load::interpolate::substitute;
use stackd::load::limits::MAX_VALUE_BYTES;

fuzz_target!(|data: &[u8]| {
    let (template, value) = common::split_two(data);
    let (Ok(template), Ok(value)) = (std::str::from_utf8(template), std::str::from_utf8(value))
    else {
        return;
    };
    let env = common::environment();
    let lookup = |name: &str| match name {
        "UNSET" | "U" => None,
        _ => Some(env.get(name).cloned().unwrap_or_else(|| value.to_string())),
    };
    if let Ok(done) = substitute(template, &lookup) {
        assert!(
            done.value.len() <= MAX_VALUE_BYTES,
            "a value outgrew the limit"
        );
    }
});
