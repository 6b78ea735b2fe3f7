//! Which records a tail may show: its credential's accounts, a shared token's filters
//! (`field: value`, exact match, combined by the token's AND or OR), and the client's own
//! `q=field:value` terms, always ANDed on top, so they narrow and never widen.

use serde_json::Value;

use crate::filters::field;
use crate::model::AccountId;
use crate::tokens::grants::FilterOp;

/// One `field: value` term. A dotted field reaches nested objects (`kubernetes.pod`),
/// after a key spelled with the dots (`service.name`, as OTLP attributes are) is tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub field: String,
    pub value: String,
}

impl Term {
    /// `field:value` as a client writes it in `?q=`; the value may contain `:`.
    pub fn parse(raw: &str) -> Option<Term> {
        let (field, value) = raw.split_once(':')?;
        let (field, value) = (field.trim(), value.trim());
        (!field.is_empty()).then(|| Term {
            field: field.to_owned(),
            value: value.to_owned(),
        })
    }

    pub fn matches(&self, record: &Value) -> bool {
        field(record, &self.field).is_some_and(|v| equals(v, &self.value))
    }
}

/// What one tail shows, re-made whenever its credential's grant changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// Sorted.
    pub accounts: Vec<AccountId>,
    /// A shared token's filters; empty: every record of its accounts.
    pub filters: Vec<Term>,
    pub op: FilterOp,
    /// The client's `q` terms, all required.
    pub narrowing: Vec<Term>,
}

impl Scope {
    pub fn reaches(&self, account: AccountId) -> bool {
        self.accounts.binary_search(&account).is_ok()
    }

    pub fn matches(&self, record: &Value) -> bool {
        let granted = self.filters.is_empty()
            || match self.op {
                FilterOp::And => self.filters.iter().all(|t| t.matches(record)),
                FilterOp::Or => self.filters.iter().any(|t| t.matches(record)),
            };
        granted && self.narrowing.iter().all(|t| t.matches(record))
    }
}

impl Scope {
    /// What a record's raw bytes must contain for this scope to possibly match it, as
    /// clauses of alternatives (see `forward::tap::Interest`): a term's value, when it can
    /// only match as the same bytes inside a JSON string.
    pub fn needles(&self) -> Vec<Vec<Box<[u8]>>> {
        let needle = |t: &Term| t.is_plain().then(|| t.value.as_bytes().into());
        let mut clauses: Vec<Vec<Box<[u8]>>> = Vec::new();
        match self.op {
            FilterOp::And => {
                clauses.extend(self.filters.iter().filter_map(|t| Some(vec![needle(t)?])))
            }
            // One alternative that cannot be searched for makes the whole clause pass.
            FilterOp::Or => {
                clauses.extend(self.filters.iter().map(needle).collect::<Option<Vec<_>>>())
            }
        }
        clauses.retain(|c| !c.is_empty());
        clauses.extend(self.narrowing.iter().filter_map(|t| Some(vec![needle(t)?])));
        clauses
    }
}

impl Term {
    /// Whether the term can only match a JSON string holding exactly its value's bytes:
    /// not a number, boolean or other JSON literal (those compare parsed), nothing a JSON
    /// string would escape, not a field the tail adds itself (`_type`, `_account_id`).
    fn is_plain(&self) -> bool {
        !self.value.is_empty()
            && !self.field.starts_with('_')
            && !self
                .value
                .chars()
                .any(|c| c == '"' || c == '\\' || c.is_control())
            && serde_json::from_str::<Value>(&self.value).is_err()
    }
}

/// Exact match: a string equals the text; a number or boolean equals its JSON spelling.
fn equals(value: &Value, expected: &str) -> bool {
    match value {
        Value::String(s) => s == expected,
        Value::Number(n) => n.to_string() == expected,
        Value::Bool(b) => expected.parse::<bool>() == Ok(*b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn term(raw: &str) -> Term {
        Term::parse(raw).unwrap()
    }

    fn scope(filters: &[&str], op: FilterOp, narrowing: &[&str]) -> Scope {
        Scope {
            accounts: vec![AccountId(1), AccountId(5)],
            filters: filters.iter().map(|f| term(f)).collect(),
            op,
            narrowing: narrowing.iter().map(|f| term(f)).collect(),
        }
    }

    #[test]
    fn terms_reach_nested_and_dotted_fields() {
        let record = json!({
            "env": "test", "code": 503, "ok": false,
            "kubernetes": {"pod": {"name": "api-1"}},
            "service.name": "checkout",
        });
        assert!(term("env:test").matches(&record));
        assert!(term("code:503").matches(&record));
        assert!(term("ok:false").matches(&record));
        assert!(term("kubernetes.pod.name:api-1").matches(&record));
        assert!(term("service.name:checkout").matches(&record));
        assert!(!term("env:tes").matches(&record), "exact, not a prefix");
        assert!(
            !term("kubernetes.pod:api-1").matches(&record),
            "objects never match"
        );
        assert!(!term("missing:x").matches(&record));
        assert_eq!(term(" url : http://x:8080 ").value, "http://x:8080");
        assert!(Term::parse("novalue").is_none() && Term::parse(":x").is_none());
    }

    #[test]
    fn filters_combine_by_the_tokens_operator_and_q_only_narrows() {
        let both = json!({"env": "test", "region": "eu"});
        let one = json!({"env": "test", "region": "us"});
        let and = scope(&["env:test", "region:eu"], FilterOp::And, &[]);
        assert!(and.matches(&both) && !and.matches(&one));
        let or = scope(&["env:prod", "region:us"], FilterOp::Or, &[]);
        assert!(or.matches(&one) && !or.matches(&both));
        let narrowed = scope(&["env:prod", "region:us"], FilterOp::Or, &["env:test"]);
        assert!(narrowed.matches(&one));
        let unrelated = scope(&["env:prod"], FilterOp::Or, &["env:test"]);
        assert!(
            !unrelated.matches(&one),
            "q never widens past the token's filters"
        );
        let open = scope(&[], FilterOp::And, &["region:eu"]);
        assert!(open.matches(&both) && !open.matches(&one));
        assert!(open.reaches(AccountId(5)) && !open.reaches(AccountId(2)));
    }

    #[test]
    fn needles_are_the_values_only_a_matching_line_can_contain() {
        let strs = |clauses: Vec<Vec<Box<[u8]>>>| {
            clauses
                .into_iter()
                .map(|c| {
                    c.iter()
                        .map(|n| String::from_utf8(n.to_vec()).unwrap())
                        .collect()
                })
                .collect::<Vec<Vec<String>>>()
        };
        let and = scope(
            &["env:test", "code:503", "region:eu"],
            FilterOp::And,
            &["level:error"],
        );
        assert_eq!(
            strs(and.needles()),
            [vec!["test"], vec!["eu"], vec!["error"]],
            "a number compares parsed: no needle"
        );
        let or = scope(&["env:test", "region:eu"], FilterOp::Or, &[]);
        assert_eq!(strs(or.needles()), [vec!["test", "eu"]]);
        let or_with_number = scope(&["env:test", "code:503"], FilterOp::Or, &[]);
        assert!(
            or_with_number.needles().is_empty(),
            "503 may be a number: every line passes"
        );
        let added_by_the_tail = scope(
            &["_type:nginx", "ok:true", "q:say \"hi\""],
            FilterOp::And,
            &[],
        );
        assert!(added_by_the_tail.needles().is_empty());
        // Whatever passes the needles still goes through `matches`; whatever a needle turns
        // away could not have matched.
        let line = json!({"env": "test", "region": "eu", "level": "error", "code": 503});
        assert!(and.matches(&line));
        let raw = line.to_string();
        assert!(and.needles().iter().all(|c| {
            c.iter()
                .any(|n| raw.contains(std::str::from_utf8(n).unwrap()))
        }));
    }
}
