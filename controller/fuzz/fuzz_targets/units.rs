//! The unit parsers: durations, byte sizes, CPUs, file modes and port
//! specs. The first byte picks the parser, the rest is the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stackd::load::canonical;
use stackd::model;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 6 {
        0 => {
            if let Ok(nanos) = canonical::parse_duration(text) {
                // What is printed must read back as the same duration.
                let printed = canonical::format_duration(nanos);
                assert_eq!(canonical::parse_duration(&printed), Ok(nanos), "{printed}");
            }
        }
        1 => {
            let _ = model::parse_duration(text);
        }
        2 => {
            let _ = canonical::parse_size(text);
            let _ = model::parse_byte_size(text);
        }
        3 => {
            let _ = model::parse_cpus(text);
        }
        4 => {
            let _ = model::parse_file_mode(text);
        }
        _ => {
            let _ = canonical::parse_port_spec(text);
        }
    }
});
