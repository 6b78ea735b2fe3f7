//! Metrics drop filters, in Logz.io's shape: an `AND` of expressions, each a condition on
//! one label (`{name, value, comparisonFilter}`) or a nested group (`{operator,
//! expression}`). A management request becomes a `Filter` through `FilterRequest::check`;
//! the feed carries each filter as a `MetricsDropFilter`; a gateway compiles its filter
//! once per change (`Filter::compile`) and asks the `CompiledFilter` about each series.
//!
//! Matching follows Prometheus' label matchers (docs/drop-filters.md): the label
//! `__name__` is the metric's name; a label a series does not have reads as the empty
//! string; `REGEX_MATCH` and `REGEX_NO_MATCH` anchor the expression at both ends
//! (`^(?:…)$`, as Prometheus does). Expressions are the `regex` crate's: linear time in
//! the input, with a size limit on what one may compile to.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use super::{Invalid, MAX_VALUE_CHARS, checked_name};
use crate::model::AccountId;

/// The label that holds a series' metric name (Prometheus' name for it).
pub const METRIC_NAME: &str = "__name__";
/// The most one expression may compile to, in bytes: bounds a gateway's memory and the
/// time a change takes to compile, whatever a filter says.
pub const REGEX_SIZE_LIMIT: usize = 64 * 1024;
/// Conditions one filter may hold, nested ones included (tollgate's bound; Logz.io
/// documents none).
pub const MAX_CONDITIONS: usize = 50;
/// How deep groups may nest, the filter itself being the first level (tollgate's bound).
pub const MAX_DEPTH: usize = 4;
/// Filters a metrics account may have (Logz.io: "You can add up to 1,000 Drop Metric
/// Filters").
pub const MAX_FILTERS_PER_ACCOUNT: usize = 1000;

/// How a group combines its expressions. Logz.io documents `AND` only; lowercase is its
/// client's older spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    #[serde(rename = "AND", alias = "and")]
    And,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = "EQ", alias = "eq")]
    Eq,
    #[serde(rename = "NOT_EQ", alias = "not_eq")]
    NotEq,
    #[serde(rename = "REGEX_MATCH", alias = "regex_match")]
    RegexMatch,
    #[serde(rename = "REGEX_NO_MATCH", alias = "regex_no_match")]
    RegexNoMatch,
}

impl Comparison {
    const ALL: [Comparison; 4] = [
        Comparison::Eq,
        Comparison::NotEq,
        Comparison::RegexMatch,
        Comparison::RegexNoMatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Eq => "EQ",
            Comparison::NotEq => "NOT_EQ",
            Comparison::RegexMatch => "REGEX_MATCH",
            Comparison::RegexNoMatch => "REGEX_NO_MATCH",
        }
    }

    /// Either case, as Logz.io's clients have sent it.
    pub fn parse(s: &str) -> Option<Comparison> {
        Comparison::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

/// Where Logz.io drops a matching series: before its processing (rollups, counts) or
/// after it, before storage. A gateway is before both, so tollgate drops either at the
/// gateway; the policy is kept and served back for clients that set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DropPolicy {
    #[default]
    #[serde(rename = "DROP_BEFORE_PROCESSING")]
    BeforeProcessing,
    #[serde(rename = "DROP_BEFORE_STORING")]
    BeforeStoring,
}

impl DropPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DropPolicy::BeforeProcessing => "DROP_BEFORE_PROCESSING",
            DropPolicy::BeforeStoring => "DROP_BEFORE_STORING",
        }
    }

    /// `dropPolicy` as a request gives it (either case); absent is the default.
    pub fn check(given: Option<&str>) -> Result<DropPolicy, Invalid> {
        let Some(given) = given else {
            return Ok(DropPolicy::default());
        };
        [DropPolicy::BeforeProcessing, DropPolicy::BeforeStoring]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(given))
            .ok_or_else(|| {
                Invalid::new(
                    "drop-filters/UNKNOWN_DROP_POLICY",
                    "dropPolicy",
                    "must be DROP_BEFORE_PROCESSING or DROP_BEFORE_STORING",
                )
            })
    }
}

/// A filter's expression tree, as Logz.io's API, the store and the feed spell it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub operator: Operator,
    pub expression: Vec<Expression>,
}

/// A condition on one label, or a nested group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expression {
    Condition(Condition),
    Group(Filter),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Condition {
    /// A label name; `__name__` is the metric's name.
    pub name: String,
    pub value: String,
    pub comparison_filter: Comparison,
}

/// A metrics filter as gateways hold it: the feed's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsDropFilter {
    pub id: u64,
    /// The metrics account whose series it drops.
    pub account_id: AccountId,
    /// A disabled filter drops nothing; it rides along as active filters do.
    pub active: bool,
    pub drop_policy: DropPolicy,
    pub filter: Filter,
}

// === checking a request ===

/// A filter as a request gives it: every field optional and typed loosely, so `check`
/// can name what is missing or wrong.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterRequest {
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub expression: Option<Vec<ExpressionRequest>>,
}

/// A condition (`name`, `value`, `comparisonFilter`) or a group (`operator`,
/// `expression`), as Logz.io's client sends either in one shape.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpressionRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub comparison_filter: Option<String>,
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub expression: Option<Vec<ExpressionRequest>>,
}

impl FilterRequest {
    /// The filter it describes, every regular expression compiled once to prove it, or
    /// the first field that is wrong (`filter.expression[1].value`).
    pub fn check(self) -> Result<Filter, Invalid> {
        let mut conditions = 0;
        let filter = group(self.operator, self.expression, "filter", 1, &mut conditions)?;
        filter.compile()?;
        Ok(filter)
    }
}

fn group(
    operator: Option<String>,
    expression: Option<Vec<ExpressionRequest>>,
    path: &str,
    depth: usize,
    conditions: &mut usize,
) -> Result<Filter, Invalid> {
    if depth > MAX_DEPTH {
        return Err(Invalid::new(
            "drop-filters/TOO_DEEP",
            path,
            format!("groups nest at most {MAX_DEPTH} levels deep"),
        ));
    }
    let operator = match operator.as_deref() {
        Some(op) if op.eq_ignore_ascii_case("AND") => Operator::And,
        Some(_) => {
            return Err(Invalid::new(
                "drop-filters/UNKNOWN_OPERATOR",
                format!("{path}.operator"),
                "must be AND, the one operator Logz.io documents",
            ));
        }
        None => {
            return Err(Invalid::new(
                "drop-filters/OPERATOR_REQUIRED",
                format!("{path}.operator"),
                "must be set (AND)",
            ));
        }
    };
    let items = expression.unwrap_or_default();
    if items.is_empty() {
        return Err(Invalid::new(
            "drop-filters/EXPRESSION_REQUIRED",
            format!("{path}.expression"),
            "must hold at least one condition",
        ));
    }
    let mut expression = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("{path}.expression[{i}]");
        if item.operator.is_some() || item.expression.is_some() {
            if item.name.is_some() || item.value.is_some() || item.comparison_filter.is_some() {
                return Err(Invalid::new(
                    "drop-filters/EXPRESSION_FORM",
                    at,
                    "is either a condition (name, value, comparisonFilter) or a group \
                     (operator, expression), not both",
                ));
            }
            let nested = group(item.operator, item.expression, &at, depth + 1, conditions)?;
            expression.push(Expression::Group(nested));
            continue;
        }
        *conditions += 1;
        if *conditions > MAX_CONDITIONS {
            return Err(Invalid::new(
                "drop-filters/TOO_MANY_CONDITIONS",
                "filter",
                format!("a filter holds at most {MAX_CONDITIONS} conditions"),
            ));
        }
        expression.push(Expression::Condition(condition(item, &at)?));
    }
    Ok(Filter {
        operator,
        expression,
    })
}

fn condition(item: ExpressionRequest, path: &str) -> Result<Condition, Invalid> {
    let name = item.name.unwrap_or_default();
    checked_name(
        &format!("{path}.name"),
        &name,
        "drop-filters/LABEL_NAME_REQUIRED",
    )?;
    let value = item.value.unwrap_or_default();
    if value.is_empty() {
        return Err(Invalid::new(
            "drop-filters/VALUE_REQUIRED",
            format!("{path}.value"),
            "must not be empty",
        ));
    }
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err(Invalid::new(
            "drop-filters/VALUE_FORM",
            format!("{path}.value"),
            format!("must be at most {MAX_VALUE_CHARS} characters"),
        ));
    }
    let comparison = item.comparison_filter.unwrap_or_default();
    let comparison_filter = Comparison::parse(&comparison).ok_or_else(|| {
        Invalid::new(
            "drop-filters/UNKNOWN_COMPARISON",
            format!("{path}.comparisonFilter"),
            "must be one of EQ, NOT_EQ, REGEX_MATCH, REGEX_NO_MATCH",
        )
    })?;
    Ok(Condition {
        name,
        value,
        comparison_filter,
    })
}

// === matching ===

/// A pattern anchored at both ends, as Prometheus anchors label matchers. The pattern is
/// first compiled alone, so that one which would close the anchoring group (`a)|(b`) is
/// refused instead of changing what the anchors apply to.
pub fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    let build = |p: &str| RegexBuilder::new(p).size_limit(REGEX_SIZE_LIMIT).build();
    build(pattern)?;
    build(&format!("^(?:{pattern})$"))
}

/// A series' labels, however the gateway holds them (remote_write's label list, OTLP
/// attributes).
pub trait Labels {
    /// The value of label `name`, if the series has it.
    fn label(&self, name: &str) -> Option<&str>;
}

impl<S: AsRef<str>> Labels for [(S, S)] {
    fn label(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// A filter ready to test series: its regular expressions compiled.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    /// All must hold.
    all: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Test { label: Label, test: Test },
    All(Vec<Node>),
}

#[derive(Debug, Clone)]
enum Label {
    MetricName,
    Named(String),
}

#[derive(Debug, Clone)]
enum Test {
    Eq(String),
    NotEq(String),
    Match(Regex),
    NoMatch(Regex),
}

impl Filter {
    /// Compiles every regular expression; an invalid or too large one names its field.
    pub fn compile(&self) -> Result<CompiledFilter, Invalid> {
        Ok(CompiledFilter {
            all: nodes(&self.expression, "filter")?,
        })
    }
}

fn nodes(expression: &[Expression], path: &str) -> Result<Vec<Node>, Invalid> {
    let mut out = Vec::with_capacity(expression.len());
    for (i, e) in expression.iter().enumerate() {
        let at = format!("{path}.expression[{i}]");
        out.push(match e {
            Expression::Group(g) => Node::All(nodes(&g.expression, &at)?),
            Expression::Condition(c) => Node::Test {
                label: match c.name.as_str() {
                    METRIC_NAME => Label::MetricName,
                    other => Label::Named(other.to_owned()),
                },
                test: test(c, &at)?,
            },
        });
    }
    Ok(out)
}

fn test(c: &Condition, path: &str) -> Result<Test, Invalid> {
    let regex = || {
        anchored(&c.value).map_err(|e| {
            Invalid::new(
                "drop-filters/INVALID_REGEX",
                format!("{path}.value"),
                format!("is not a valid regular expression: {e}"),
            )
        })
    };
    Ok(match c.comparison_filter {
        Comparison::Eq => Test::Eq(c.value.clone()),
        Comparison::NotEq => Test::NotEq(c.value.clone()),
        Comparison::RegexMatch => Test::Match(regex()?),
        Comparison::RegexNoMatch => Test::NoMatch(regex()?),
    })
}

impl CompiledFilter {
    /// Whether a series named `metric_name` with `labels` meets every expression.
    pub fn matches<L: Labels + ?Sized>(&self, metric_name: &str, labels: &L) -> bool {
        all(&self.all, metric_name, labels)
    }
}

fn all<L: Labels + ?Sized>(nodes: &[Node], metric_name: &str, labels: &L) -> bool {
    nodes.iter().all(|node| match node {
        Node::All(inner) => all(inner, metric_name, labels),
        Node::Test { label, test } => {
            let value = match label {
                Label::MetricName => metric_name,
                Label::Named(name) => labels.label(name).unwrap_or(""),
            };
            match test {
                Test::Eq(want) => value == want,
                Test::NotEq(want) => value != want,
                Test::Match(re) => re.is_match(value),
                Test::NoMatch(re) => !re.is_match(value),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn checked(filter: Value) -> Result<Filter, Invalid> {
        serde_json::from_value::<FilterRequest>(filter)
            .unwrap()
            .check()
    }

    fn compiled(filter: Value) -> CompiledFilter {
        checked(filter).unwrap().compile().unwrap()
    }

    fn cond(name: &str, value: &str, comparison: &str) -> Value {
        json!({"name": name, "value": value, "comparisonFilter": comparison})
    }

    const LABELS: &[(&str, &str)] = &[("job", "api"), ("instance", "10.0.0.1:9100")];

    #[test]
    fn conditions_follow_prometheus_matchers() {
        let one = |c: Value| compiled(json!({"operator": "AND", "expression": [c]}));
        assert!(one(cond("__name__", "cpu_usage", "EQ")).matches("cpu_usage", LABELS));
        assert!(!one(cond("__name__", "cpu_usage", "EQ")).matches("cpu", LABELS));
        assert!(one(cond("job", "api", "EQ")).matches("x", LABELS));
        assert!(one(cond("job", "web", "NOT_EQ")).matches("x", LABELS));
        assert!(!one(cond("job", "api", "NOT_EQ")).matches("x", LABELS));
        assert!(
            one(cond("zone", "eu", "NOT_EQ")).matches("x", LABELS),
            "absent is \"\""
        );
        assert!(one(cond("zone", ".*", "REGEX_MATCH")).matches("x", LABELS));
        assert!(one(cond("__name__", "cpu_.*", "REGEX_MATCH")).matches("cpu_usage", LABELS));
        assert!(
            !one(cond("__name__", "cpu", "REGEX_MATCH")).matches("cpu_usage", LABELS),
            "anchored at both ends"
        );
        assert!(!one(cond("__name__", "usage", "regex_match")).matches("cpu_usage", LABELS));
        assert!(one(cond("instance", "10\\..*", "REGEX_MATCH")).matches("x", LABELS));
        assert!(one(cond("job", "web|db", "REGEX_NO_MATCH")).matches("x", LABELS));
        assert!(!one(cond("job", "api|db", "REGEX_NO_MATCH")).matches("x", LABELS));
    }

    #[test]
    fn every_expression_must_hold_nested_groups_too() {
        let f = compiled(json!({"operator": "and", "expression": [
            cond("__name__", "http_.*", "REGEX_MATCH"),
            {"operator": "AND", "expression": [cond("job", "api", "eq"), cond("code", "5..", "REGEX_MATCH")]}
        ]}));
        let labels = [("job", "api"), ("code", "503")];
        assert!(f.matches("http_requests_total", &labels[..]));
        assert!(!f.matches(
            "http_requests_total",
            &[("job", "api"), ("code", "200")][..]
        ));
        assert!(!f.matches("grpc_requests_total", &labels[..]));
        // Served in uppercase, whatever case came in.
        let served = serde_json::to_value(
            checked(json!({"operator": "and", "expression": [cond("a", "b", "not_eq")]})).unwrap(),
        )
        .unwrap();
        assert_eq!(
            served,
            json!({"operator": "AND", "expression": [
                {"name": "a", "value": "b", "comparisonFilter": "NOT_EQ"}]})
        );
        let back: Filter = serde_json::from_value(served).unwrap();
        assert_eq!(back.expression.len(), 1);
    }

    #[test]
    fn a_request_names_the_field_it_refuses() {
        let refused = |f: Value| checked(f).unwrap_err();
        let deep = |levels: usize| {
            let mut f = json!({"operator": "AND", "expression": [cond("a", "b", "EQ")]});
            for _ in 1..levels {
                f = json!({"operator": "AND", "expression": [f]});
            }
            f
        };
        let many: Vec<Value> = (0..=MAX_CONDITIONS).map(|_| cond("a", "b", "EQ")).collect();
        let cases = [
            (
                json!({}),
                "filter.operator",
                "drop-filters/OPERATOR_REQUIRED",
            ),
            (
                json!({"operator": "OR", "expression": [cond("a", "b", "EQ")]}),
                "filter.operator",
                "drop-filters/UNKNOWN_OPERATOR",
            ),
            (
                json!({"operator": "AND"}),
                "filter.expression",
                "drop-filters/EXPRESSION_REQUIRED",
            ),
            (
                json!({"operator": "AND", "expression": []}),
                "filter.expression",
                "drop-filters/EXPRESSION_REQUIRED",
            ),
            (
                json!({"operator": "AND", "expression": [cond("", "b", "EQ")]}),
                "filter.expression[0].name",
                "drop-filters/LABEL_NAME_REQUIRED",
            ),
            (
                json!({"operator": "AND", "expression": [cond("a", "", "EQ")]}),
                "filter.expression[0].value",
                "drop-filters/VALUE_REQUIRED",
            ),
            (
                json!({"operator": "AND", "expression": [cond("a", "b", "LIKE")]}),
                "filter.expression[0].comparisonFilter",
                "drop-filters/UNKNOWN_COMPARISON",
            ),
            (
                json!({"operator": "AND", "expression": [{"name": "a", "value": "b"}]}),
                "filter.expression[0].comparisonFilter",
                "drop-filters/UNKNOWN_COMPARISON",
            ),
            (
                json!({"operator": "AND", "expression": [cond("a", "(", "REGEX_MATCH")]}),
                "filter.expression[0].value",
                "drop-filters/INVALID_REGEX",
            ),
            (
                json!({"operator": "AND", "expression": [cond("a", "a)|(b", "REGEX_NO_MATCH")]}),
                "filter.expression[0].value",
                "drop-filters/INVALID_REGEX",
            ),
            (
                json!({"operator": "AND", "expression": [cond("a", "(?:a{1000}){1000}", "REGEX_MATCH")]}),
                "filter.expression[0].value",
                "drop-filters/INVALID_REGEX",
            ),
            (
                json!({"operator": "AND", "expression": [
                cond("a", "b", "EQ"),
                {"operator": "AND", "expression": [cond("c", "[", "REGEX_MATCH")]}]}),
                "filter.expression[1].expression[0].value",
                "drop-filters/INVALID_REGEX",
            ),
            (
                json!({"operator": "AND", "expression": [{"name": "a", "operator": "AND", "expression": []}]}),
                "filter.expression[0]",
                "drop-filters/EXPRESSION_FORM",
            ),
            (
                deep(MAX_DEPTH + 1),
                "filter.expression[0].expression[0].expression[0].expression[0]",
                "drop-filters/TOO_DEEP",
            ),
            (
                json!({"operator": "AND", "expression": many}),
                "filter",
                "drop-filters/TOO_MANY_CONDITIONS",
            ),
        ];
        for (filter, field, code) in cases {
            let err = refused(filter.clone());
            assert_eq!(
                (err.field.as_str(), err.code),
                (field, code),
                "{filter}: {err}"
            );
        }
        assert!(checked(deep(MAX_DEPTH)).is_ok());
    }

    #[test]
    fn drop_policies_default_and_take_either_case() {
        assert_eq!(
            DropPolicy::check(None).unwrap(),
            DropPolicy::BeforeProcessing
        );
        assert_eq!(
            DropPolicy::check(Some("drop_before_storing")).unwrap(),
            DropPolicy::BeforeStoring
        );
        assert_eq!(
            DropPolicy::check(Some("DROP")).unwrap_err().code,
            "drop-filters/UNKNOWN_DROP_POLICY"
        );
    }

    #[test]
    fn a_pathological_pattern_runs_in_linear_time() {
        let f = compiled(
            json!({"operator": "AND", "expression": [cond("a", "(a+)+$", "REGEX_MATCH")]}),
        );
        // A backtracking engine would not return from this in any test's lifetime.
        let value = format!("{}b", "a".repeat(100_000));
        assert!(!f.matches("x", &[("a", value.as_str())][..]));
    }
}
