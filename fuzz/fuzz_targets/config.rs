//! The config loader and its checks: never panics, whatever the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::parse(text, Vec::new()) {
        let _ = config.validate();
    }
});
