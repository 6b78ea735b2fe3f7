//! The drop-filter APIs' bodies as the control plane checks them: the first byte picks a
//! log filter's create body or a metrics filter's `filter` (odd), the rest is the JSON.
//! Never panics; what the check accepts survives the feed's encoding unchanged, compiles
//! (a metrics filter's expressions), and a log filter matches no empty record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::filters::logs::{LogDropFilter, LogFilterRequest};
use tollgate::filters::metrics::{DropPolicy, Filter, FilterRequest};
use tollgate::model::AccountId;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        let Ok(request) = serde_json::from_slice::<LogFilterRequest>(body) else {
            return;
        };
        let Ok(rule) = request.check() else {
            return;
        };
        assert!((1..=3).contains(&rule.field_conditions.len()));
        assert!(rule.threshold_gb.is_finite() && rule.threshold_gb >= 0.0);
        let filter = LogDropFilter {
            id: 1,
            account_id: AccountId(1),
            active: true,
            log_type: rule.log_type,
            field_conditions: rule.field_conditions,
            threshold_bytes: 0,
        };
        let wire = serde_json::to_vec(&filter).expect("a checked filter encodes");
        let back: LogDropFilter = serde_json::from_slice(&wire).expect("and decodes");
        assert_eq!(back, filter);
        assert!(!filter.matches(None, &serde_json::json!({})));
    } else {
        if let Ok(policy) = std::str::from_utf8(body) {
            let _ = DropPolicy::check(Some(policy));
        }
        let Ok(request) = serde_json::from_slice::<FilterRequest>(body) else {
            return;
        };
        let Ok(filter) = request.check() else {
            return;
        };
        let wire = serde_json::to_vec(&filter).expect("a checked filter encodes");
        let back: Filter = serde_json::from_slice(&wire).expect("and decodes");
        assert_eq!(back, filter);
        back.compile().expect("a checked filter compiles again");
    }
});
