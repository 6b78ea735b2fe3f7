//! OTLP/JSON, read and written by the rules of proto3 JSON (with OTLP's one exception: trace
//! and span ids are hex, not base64), driven by the descriptors `opentelemetry-proto` ships.
//!
//! The crate's own serde derive cannot be used for this. Its numeric oneofs (`asDouble`,
//! `asInt`) are flattened `Option`s, and serde turns a flattened field that fails to
//! deserialize into `None`: `"asDouble": "NaN"` or `"asInt": "abc"` would yield a data point
//! without a value, silently. Its plain `f64` fields refuse the three special values proto3
//! writes as strings, and serialize them as `null`. Going through the descriptors applies one
//! rule per field type to every field of the three signals instead of one per field:
//!
//! - 64-bit and 32-bit integers: a JSON number without fraction, or a string of decimal
//!   digits, in range for the field;
//! - doubles: a number, a string holding a number, or `"NaN"`, `"Infinity"`, `"-Infinity"`;
//! - enums: an integer (OTLP/JSON writes enums as integers); booleans, strings: themselves;
//! - bytes: hex for `traceId`, `spanId`, `parentSpanId`, base64 for the rest;
//! - `null`: the field's default; an unknown key: ignored (the OTLP/JSON rule).
//!
//! Anything else is a [`JsonError`] naming the field by its path. Reading goes JSON → protobuf
//! bytes → the prost message; writing goes the other way, in field order, with 64-bit
//! integers as strings and non-finite doubles as the strings above (never `null`).

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use base64::Engine;
use prost::Message;
use prost::encoding::{WireType, decode_key, decode_varint, encode_key, encode_varint};
use serde_json::{Map, Value};

use super::otlp::collector::logs::v1::ExportLogsServiceRequest;
use super::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use super::otlp::collector::trace::v1::ExportTraceServiceRequest;

/// An OTLP message this module can read and write: its descriptor's full name.
pub trait OtlpMessage: Message + Default {
    const FULL_NAME: &'static str;
}

impl OtlpMessage for ExportTraceServiceRequest {
    const FULL_NAME: &'static str =
        "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest";
}

impl OtlpMessage for ExportLogsServiceRequest {
    const FULL_NAME: &'static str =
        "opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest";
}

impl OtlpMessage for ExportMetricsServiceRequest {
    const FULL_NAME: &'static str =
        "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest";
}

/// Why a body is not OTLP/JSON: a syntax error, or the first field whose value proto3 JSON
/// does not allow, with its path (`resourceMetrics[0].….asDouble`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Path segments, innermost first (pushed while the error travels up).
    path: Vec<String>,
    message: String,
}

impl JsonError {
    fn new(message: impl Into<String>) -> JsonError {
        JsonError {
            path: Vec::new(),
            message: message.into(),
        }
    }

    fn at(mut self, segment: String) -> JsonError {
        self.path.push(segment);
        self
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for segment in self.path.iter().rev() {
            if !(first || segment.starts_with('[')) {
                f.write_str(".")?;
            }
            f.write_str(segment)?;
            first = false;
        }
        if !first {
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for JsonError {}

/// Reads an OTLP/JSON body into `T`.
pub fn decode<T: OtlpMessage>(json: &[u8]) -> Result<T, JsonError> {
    let value: Value = serde_json::from_slice(json).map_err(|e| JsonError::new(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(JsonError::new("expected a JSON object"));
    };
    let mut wire = Vec::with_capacity(json.len() / 2);
    message_to_wire(schema().root(T::FULL_NAME), &object, &mut wire)?;
    T::decode(wire.as_slice()).map_err(|e| JsonError::new(e.to_string()))
}

/// Writes `message` as compact OTLP/JSON into `out`.
pub fn encode<T: OtlpMessage>(message: &T, out: &mut Vec<u8>) {
    let wire = message.encode_to_vec();
    wire_to_json(schema().root(T::FULL_NAME), &wire, out)
        .expect("prost writes protobuf this module reads");
}

// === the schema, from the descriptors ===

/// The subset of `google/protobuf/descriptor.proto` needed to walk OTLP messages.
mod descriptor {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FileDescriptorSet {
        #[prost(message, repeated, tag = "1")]
        pub file: Vec<FileDescriptorProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FileDescriptorProto {
        #[prost(string, optional, tag = "2")]
        pub package: Option<String>,
        #[prost(message, repeated, tag = "4")]
        pub message_type: Vec<DescriptorProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DescriptorProto {
        #[prost(string, optional, tag = "1")]
        pub name: Option<String>,
        #[prost(message, repeated, tag = "2")]
        pub field: Vec<FieldDescriptorProto>,
        #[prost(message, repeated, tag = "3")]
        pub nested_type: Vec<DescriptorProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FieldDescriptorProto {
        #[prost(string, optional, tag = "1")]
        pub name: Option<String>,
        #[prost(int32, optional, tag = "3")]
        pub number: Option<i32>,
        #[prost(int32, optional, tag = "4")]
        pub label: Option<i32>,
        #[prost(int32, optional, tag = "5")]
        pub r#type: Option<i32>,
        #[prost(string, optional, tag = "6")]
        pub type_name: Option<String>,
        #[prost(string, optional, tag = "10")]
        pub json_name: Option<String>,
    }
}

/// A field's type, as proto3 JSON treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Type {
    Double,
    Float,
    Int64,
    UInt64,
    Int32,
    UInt32,
    Fixed64,
    Fixed32,
    SFixed64,
    SFixed32,
    SInt64,
    SInt32,
    Bool,
    String,
    Bytes,
    /// Trace and span ids: bytes written as hex in OTLP/JSON.
    HexBytes,
    Enum,
    /// Index into `Schema::messages`.
    Message(usize),
}

pub(super) struct Field {
    json_name: String,
    pub(super) number: u32,
    pub(super) repeated: bool,
    pub(super) ty: Type,
}

#[derive(Default)]
pub(super) struct MessageType {
    pub(super) fields: Vec<Field>,
    pub(super) by_json_name: HashMap<String, usize>,
    /// Indexed by field number (OTLP's are small): looked up for every field on the wire,
    /// where hashing the number cost more than the rest of the walk.
    by_number: Vec<Option<usize>>,
}

impl MessageType {
    /// The index in `fields` of field `number`, if the message has one.
    pub(super) fn field(&self, number: u32) -> Option<usize> {
        self.by_number.get(number as usize).copied().flatten()
    }
}

pub(super) struct Schema {
    pub(super) messages: Vec<MessageType>,
    by_name: HashMap<String, usize>,
}

impl Schema {
    fn root(&self, full_name: &str) -> &MessageType {
        &self.messages[self.index(full_name)]
    }

    /// The index in `messages` of a message type of opentelemetry-proto.
    pub(super) fn index(&self, full_name: &str) -> usize {
        *self
            .by_name
            .get(full_name)
            .expect("every OtlpMessage is in opentelemetry-proto's descriptors")
    }
}

pub(super) fn schema() -> &'static Schema {
    static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
        let set = descriptor::FileDescriptorSet::decode(opentelemetry_proto::DESCRIPTORS)
            .expect("opentelemetry-proto ships valid descriptors");
        build_schema(&set)
    });
    &SCHEMA
}

fn build_schema(set: &descriptor::FileDescriptorSet) -> Schema {
    fn collect<'a>(
        prefix: &str,
        messages: &'a [descriptor::DescriptorProto],
        out: &mut Vec<(String, &'a descriptor::DescriptorProto)>,
    ) {
        for m in messages {
            let name = format!("{prefix}.{}", m.name());
            collect(&name, &m.nested_type, out);
            out.push((name, m));
        }
    }
    let mut all = Vec::new();
    for file in &set.file {
        collect(file.package(), &file.message_type, &mut all);
    }
    let by_name: HashMap<String, usize> = all
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.clone(), i))
        .collect();
    let messages = all
        .iter()
        .map(|(_, m)| {
            let mut message = MessageType::default();
            for f in &m.field {
                let ty = match f.r#type() {
                    1 => Type::Double,
                    2 => Type::Float,
                    3 => Type::Int64,
                    4 => Type::UInt64,
                    5 => Type::Int32,
                    6 => Type::Fixed64,
                    7 => Type::Fixed32,
                    8 => Type::Bool,
                    9 => Type::String,
                    11 => match by_name.get(f.type_name().trim_start_matches('.')) {
                        Some(&i) => Type::Message(i),
                        None => continue,
                    },
                    12 if matches!(f.name(), "trace_id" | "span_id" | "parent_span_id") => {
                        Type::HexBytes
                    }
                    12 => Type::Bytes,
                    13 => Type::UInt32,
                    14 => Type::Enum,
                    15 => Type::SFixed32,
                    16 => Type::SFixed64,
                    17 => Type::SInt32,
                    18 => Type::SInt64,
                    _ => continue, // groups: not in OTLP
                };
                let (Ok(number), Some(json_name)) = (u32::try_from(f.number()), &f.json_name)
                else {
                    continue;
                };
                let index = message.fields.len();
                message.by_json_name.insert(json_name.clone(), index);
                let slot = number as usize;
                if message.by_number.len() <= slot {
                    message.by_number.resize(slot + 1, None);
                }
                message.by_number[slot] = Some(index);
                message.fields.push(Field {
                    json_name: json_name.clone(),
                    number,
                    repeated: f.label() == 3,
                    ty,
                });
            }
            message
        })
        .collect();
    Schema { messages, by_name }
}

// === JSON -> protobuf ===

fn message_to_wire(
    message: &MessageType,
    object: &Map<String, Value>,
    out: &mut Vec<u8>,
) -> Result<(), JsonError> {
    for (key, value) in object {
        let Some(&index) = message.by_json_name.get(key) else {
            continue; // unknown keys are ignored
        };
        let field = &message.fields[index];
        let result = match value {
            Value::Null => Ok(()),
            Value::Array(items) if field.repeated => {
                items.iter().enumerate().try_for_each(|(i, item)| {
                    field_to_wire(field, item, out).map_err(|e| e.at(format!("[{i}]")))
                })
            }
            _ if field.repeated => Err(JsonError::new("expected an array")),
            _ => field_to_wire(field, value, out),
        };
        result.map_err(|e| e.at(key.clone()))?;
    }
    Ok(())
}

fn field_to_wire(field: &Field, value: &Value, out: &mut Vec<u8>) -> Result<(), JsonError> {
    let tag = field.number;
    match field.ty {
        Type::Message(index) => {
            let Value::Object(object) = value else {
                return Err(JsonError::new("expected an object"));
            };
            let mut nested = Vec::new();
            message_to_wire(&schema().messages[index], object, &mut nested)?;
            length_delimited(tag, &nested, out);
        }
        Type::Double => {
            let v = double(value)?;
            encode_key(tag, WireType::SixtyFourBit, out);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Type::Float => {
            let v = double(value)?;
            if v.is_finite() && v.abs() > f64::from(f32::MAX) {
                return Err(JsonError::new("number out of range for a float"));
            }
            encode_key(tag, WireType::ThirtyTwoBit, out);
            #[allow(clippy::cast_possible_truncation)] // range checked above
            out.extend_from_slice(&(v as f32).to_le_bytes());
        }
        Type::Int64 => varint(tag, int::<i64>(value)? as u64, out),
        Type::UInt64 => varint(tag, int::<u64>(value)?, out),
        Type::Int32 => varint(tag, i64::from(int::<i32>(value)?) as u64, out),
        Type::Enum => {
            if value.is_string() {
                return Err(JsonError::new("expected an integer (enums are integers)"));
            }
            varint(tag, i64::from(int::<i32>(value)?) as u64, out);
        }
        Type::UInt32 => varint(tag, u64::from(int::<u32>(value)?), out),
        Type::SInt64 => {
            let v = int::<i64>(value)?;
            varint(tag, ((v << 1) ^ (v >> 63)) as u64, out);
        }
        Type::SInt32 => {
            let v = int::<i32>(value)?;
            varint(tag, u64::from(((v << 1) ^ (v >> 31)) as u32), out);
        }
        Type::Fixed64 => fixed64(tag, int::<u64>(value)?.to_le_bytes(), out),
        Type::SFixed64 => fixed64(tag, int::<i64>(value)?.to_le_bytes(), out),
        Type::Fixed32 => fixed32(tag, int::<u32>(value)?.to_le_bytes(), out),
        Type::SFixed32 => fixed32(tag, int::<i32>(value)?.to_le_bytes(), out),
        Type::Bool => {
            let Value::Bool(b) = value else {
                return Err(JsonError::new("expected true or false"));
            };
            varint(tag, u64::from(*b), out);
        }
        Type::String => {
            let Value::String(s) = value else {
                return Err(JsonError::new("expected a string"));
            };
            length_delimited(tag, s.as_bytes(), out);
        }
        Type::Bytes => {
            let Value::String(s) = value else {
                return Err(JsonError::new("expected a base64 string"));
            };
            let bytes = base64_decode(s).ok_or_else(|| JsonError::new("expected base64"))?;
            length_delimited(tag, &bytes, out);
        }
        Type::HexBytes => {
            let Value::String(s) = value else {
                return Err(JsonError::new("expected a hex string"));
            };
            let bytes = hex::decode(s).map_err(|e| JsonError::new(format!("not hex: {e}")))?;
            length_delimited(tag, &bytes, out);
        }
    }
    Ok(())
}

fn varint(tag: u32, value: u64, out: &mut Vec<u8>) {
    encode_key(tag, WireType::Varint, out);
    encode_varint(value, out);
}

fn fixed64(tag: u32, bytes: [u8; 8], out: &mut Vec<u8>) {
    encode_key(tag, WireType::SixtyFourBit, out);
    out.extend_from_slice(&bytes);
}

fn fixed32(tag: u32, bytes: [u8; 4], out: &mut Vec<u8>) {
    encode_key(tag, WireType::ThirtyTwoBit, out);
    out.extend_from_slice(&bytes);
}

fn length_delimited(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// An integer field: a JSON number without fraction or a string of decimal digits, in range
/// for `T`. A number with a fraction part counts when it is whole and exact in a double
/// (`1e3`); beyond 2^53 a double could stand for a neighbouring integer.
fn int<T: TryFrom<i128>>(value: &Value) -> Result<T, JsonError> {
    let wide: i128 = match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i128::from(i)
            } else if let Some(u) = n.as_u64() {
                i128::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() != 0.0 || f.abs() > 9_007_199_254_740_992.0 {
                    return Err(JsonError::new(format!("expected an integer, got {n}")));
                }
                #[allow(clippy::cast_possible_truncation)] // whole and within 2^53
                let i = f as i64;
                i128::from(i)
            }
        }
        Value::String(s) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(JsonError::new(format!("expected an integer, got {s:?}")));
            }
            s.parse::<i128>()
                .map_err(|_| JsonError::new(format!("integer out of range: {s}")))?
        }
        other => {
            return Err(JsonError::new(format!(
                "expected an integer (a number or a string), got {other}"
            )));
        }
    };
    T::try_from(wide).map_err(|_| JsonError::new(format!("integer out of range: {wide}")))
}

/// A double field: a number, a string holding a number, or one of the three special values.
fn double(value: &Value) -> Result<f64, JsonError> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| JsonError::new(format!("number out of range: {n}"))),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            // serde_json's grammar, not Rust's: no "inf", "nan", "+1" or blanks.
            _ if s.trim() == s => serde_json::from_str::<f64>(s).map_err(|_| {
                JsonError::new(format!(
                    "expected a number, \"NaN\", \"Infinity\" or \"-Infinity\", got {s:?}"
                ))
            }),
            _ => Err(JsonError::new(format!("expected a number, got {s:?}"))),
        },
        other => Err(JsonError::new(format!(
            "expected a number (or \"NaN\", \"Infinity\", \"-Infinity\"), got {other}"
        ))),
    }
}

/// proto3 JSON accepts standard and URL-safe base64, padded or not.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&base64::alphabet::STANDARD, config)
        .decode(s)
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::URL_SAFE, config).decode(s))
        .ok()
}

// === protobuf -> JSON ===

/// A protobuf wire value, borrowed from the message bytes.
#[derive(Clone, Copy)]
pub(super) enum Wire<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Fixed32([u8; 4]),
    Bytes(&'a [u8]),
}

/// Malformed protobuf: prost's own output never is.
#[derive(Debug)]
pub(super) struct WireError;

impl From<prost::DecodeError> for WireError {
    fn from(_: prost::DecodeError) -> WireError {
        WireError
    }
}

fn wire_to_json(message: &MessageType, mut buf: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
    // Group values by field, in order of first appearance: repeated fields become arrays,
    // and a repeated scalar may come packed (one length-delimited run) or one per key.
    let mut fields: Vec<(usize, Vec<Wire<'_>>)> = Vec::new();
    while !buf.is_empty() {
        let (number, wire_type) = decode_key(&mut buf)?;
        let value = match wire_type {
            WireType::Varint => Wire::Varint(decode_varint(&mut buf)?),
            WireType::SixtyFourBit => Wire::Fixed64(take(&mut buf)?),
            WireType::ThirtyTwoBit => Wire::Fixed32(take(&mut buf)?),
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut buf)?).map_err(|_| WireError)?;
                let (bytes, rest) = buf.split_at_checked(len).ok_or(WireError)?;
                buf = rest;
                Wire::Bytes(bytes)
            }
            WireType::StartGroup | WireType::EndGroup => return Err(WireError),
        };
        let Some(index) = message.field(number) else {
            continue; // unknown field
        };
        match fields.iter_mut().find(|(i, _)| *i == index) {
            Some((_, values)) if message.fields[index].repeated => values.push(value),
            Some((_, values)) => *values = vec![value], // the last one wins
            None => fields.push((index, vec![value])),
        }
    }
    out.push(b'{');
    for (n, (index, values)) in fields.iter().enumerate() {
        let field = &message.fields[*index];
        if n > 0 {
            out.push(b',');
        }
        write_str(&field.json_name, out);
        out.push(b':');
        if field.repeated {
            out.push(b'[');
            let mut first = true;
            for value in values {
                match (value, field.ty) {
                    (Wire::Bytes(packed), ty) if is_packable(ty) => {
                        let mut packed = *packed;
                        while !packed.is_empty() {
                            let value = match ty {
                                Type::Double | Type::Fixed64 | Type::SFixed64 => {
                                    Wire::Fixed64(take(&mut packed)?)
                                }
                                Type::Float | Type::Fixed32 | Type::SFixed32 => {
                                    Wire::Fixed32(take(&mut packed)?)
                                }
                                _ => Wire::Varint(decode_varint(&mut packed)?),
                            };
                            separate(&mut first, out);
                            write_value(ty, value, out)?;
                        }
                    }
                    (value, ty) => {
                        separate(&mut first, out);
                        write_value(ty, *value, out)?;
                    }
                }
            }
            out.push(b']');
        } else if let Some(value) = values.last() {
            write_value(field.ty, *value, out)?;
        }
    }
    out.push(b'}');
    Ok(())
}

fn separate(first: &mut bool, out: &mut Vec<u8>) {
    if !std::mem::take(first) {
        out.push(b',');
    }
}

fn is_packable(ty: Type) -> bool {
    !matches!(
        ty,
        Type::String | Type::Bytes | Type::HexBytes | Type::Message(_)
    )
}

pub(super) fn take<const N: usize>(buf: &mut &[u8]) -> Result<[u8; N], WireError> {
    let (head, rest) = buf.split_first_chunk::<N>().ok_or(WireError)?;
    *buf = rest;
    Ok(*head)
}

#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)] // protobuf's casts
fn write_value(ty: Type, value: Wire<'_>, out: &mut Vec<u8>) -> Result<(), WireError> {
    use std::io::Write;
    let number = |out: &mut Vec<u8>, n: &dyn fmt::Display| {
        write!(out, "{n}").expect("writing to a Vec cannot fail");
    };
    let quoted = |out: &mut Vec<u8>, n: &dyn fmt::Display| {
        write!(out, "\"{n}\"").expect("writing to a Vec cannot fail");
    };
    match (ty, value) {
        (Type::Message(index), Wire::Bytes(b)) => wire_to_json(&schema().messages[index], b, out)?,
        (Type::Double, Wire::Fixed64(b)) => write_double(f64::from_le_bytes(b), out),
        (Type::Float, Wire::Fixed32(b)) => write_double(f64::from(f32::from_le_bytes(b)), out),
        (Type::Int64, Wire::Varint(v)) => quoted(out, &(v as i64)),
        (Type::UInt64, Wire::Varint(v)) => quoted(out, &v),
        (Type::SInt64, Wire::Varint(v)) => quoted(out, &(((v >> 1) as i64) ^ -((v & 1) as i64))),
        (Type::Fixed64, Wire::Fixed64(b)) => quoted(out, &u64::from_le_bytes(b)),
        (Type::SFixed64, Wire::Fixed64(b)) => quoted(out, &i64::from_le_bytes(b)),
        (Type::Int32 | Type::Enum, Wire::Varint(v)) => number(out, &(v as i32)),
        (Type::UInt32, Wire::Varint(v)) => number(out, &(v as u32)),
        (Type::SInt32, Wire::Varint(v)) => {
            let v = v as u32;
            number(out, &(((v >> 1) as i32) ^ -((v & 1) as i32)));
        }
        (Type::Fixed32, Wire::Fixed32(b)) => number(out, &u32::from_le_bytes(b)),
        (Type::SFixed32, Wire::Fixed32(b)) => number(out, &i32::from_le_bytes(b)),
        (Type::Bool, Wire::Varint(v)) => {
            out.extend_from_slice(if v != 0 { b"true" } else { b"false" })
        }
        (Type::String, Wire::Bytes(b)) => write_str(&String::from_utf8_lossy(b), out),
        (Type::Bytes, Wire::Bytes(b)) => {
            write_str(&base64::engine::general_purpose::STANDARD.encode(b), out);
        }
        (Type::HexBytes, Wire::Bytes(b)) => write_str(&hex::encode(b), out),
        _ => return Err(WireError),
    }
    Ok(())
}

/// A double as proto3 JSON writes it: a number, or a string for the three JSON cannot hold.
fn write_double(v: f64, out: &mut Vec<u8>) {
    if v.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if v == f64::INFINITY {
        out.extend_from_slice(b"\"Infinity\"");
    } else if v == f64::NEG_INFINITY {
        out.extend_from_slice(b"\"-Infinity\"");
    } else {
        serde_json::to_writer(out, &v).expect("a finite f64 serializes");
    }
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(out, s).expect("a str serializes");
}

// === what a JSON request costs ===

/// Objects and arrays in a JSON text, counted by a scan that builds nothing (structure
/// inside strings is skipped): each becomes a node of the parsed tree and, mostly, a
/// decoded message: what makes `[{},{},…]` cost fifty times its size.
pub fn json_containers(json: &[u8]) -> usize {
    let mut containers = 0;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b'{' || b == b'[' {
            containers += 1;
        }
    }
    containers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::otlp::metrics::v1::metric::Data;
    use crate::proto::otlp::metrics::v1::number_data_point::Value as Number;

    fn gauge_point(point: &str) -> Result<ExportMetricsServiceRequest, JsonError> {
        let json = format!(
            r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"g",
            "gauge":{{"dataPoints":[{point}]}}}}]}}]}}]}}"#
        );
        decode(json.as_bytes())
    }

    fn value_of(req: &ExportMetricsServiceRequest) -> Option<Number> {
        match &req.resource_metrics[0].scope_metrics[0].metrics[0].data {
            Some(Data::Gauge(g)) => g.data_points[0].value,
            _ => None,
        }
    }

    #[test]
    fn doubles_take_numbers_numeric_strings_and_the_three_specials() {
        for (json, want) in [
            ("1.5", 1.5),
            ("\"1.5\"", 1.5),
            ("3", 3.0),
            ("\"Infinity\"", f64::INFINITY),
            ("\"-Infinity\"", f64::NEG_INFINITY),
        ] {
            let req = gauge_point(&format!(r#"{{"asDouble":{json}}}"#)).unwrap();
            assert_eq!(value_of(&req), Some(Number::AsDouble(want)), "{json}");
        }
        let req = gauge_point(r#"{"asDouble":"NaN"}"#).unwrap();
        assert!(matches!(value_of(&req), Some(Number::AsDouble(v)) if v.is_nan()));
    }

    #[test]
    fn integers_take_numbers_and_digit_strings_in_range() {
        for (json, want) in [
            ("\"-9223372036854775808\"", i64::MIN),
            ("9223372036854775807", i64::MAX),
            ("\"42\"", 42),
            ("1e3", 1000),
        ] {
            let req = gauge_point(&format!(r#"{{"asInt":{json}}}"#)).unwrap();
            assert_eq!(value_of(&req), Some(Number::AsInt(want)), "{json}");
        }
    }

    #[test]
    fn other_values_are_errors_naming_the_field() {
        for (point, says) in [
            (r#"{"asDouble":true}"#, "asDouble: expected a number"),
            (r#"{"asDouble":"inf"}"#, "asDouble: expected a number"),
            (r#"{"asDouble":"nan"}"#, "asDouble: expected a number"),
            (r#"{"asInt":"abc"}"#, "asInt: expected an integer"),
            (
                r#"{"asInt":"-9223372036854775809"}"#,
                "asInt: integer out of range",
            ),
            (r#"{"asInt":1.5}"#, "asInt: expected an integer"),
            (
                r#"{"timeUnixNano":"-1"}"#,
                "timeUnixNano: integer out of range",
            ),
            (r#"{"flags":"4294967296"}"#, "flags: integer out of range"),
        ] {
            let e = gauge_point(point).unwrap_err().to_string();
            assert!(
                e.starts_with("resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].")
                    && e.contains(says),
                "{point}: {e}"
            );
        }
    }

    #[test]
    fn writing_keeps_specials_as_strings_and_64_bit_integers_as_strings() {
        let req = gauge_point(
            r#"{"asDouble":"-Infinity","timeUnixNano":1700000000000000000,"flags":"1"}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        encode(&req, &mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        let p = &v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["gauge"]["dataPoints"][0];
        assert_eq!(p["asDouble"], "-Infinity");
        assert_eq!(p["timeUnixNano"], "1700000000000000000");
        assert_eq!(p["flags"], 1);
    }

    #[test]
    fn ids_are_hex_and_bytes_base64_both_ways() {
        let json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
            "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174",
            "attributes":[{"key":"b","value":{"bytesValue":"AQID"}},
                          {"key":"d","value":{"doubleValue":"NaN"}}],
            "kind":2}]}]}]}"#;
        let req: ExportTraceServiceRequest = decode(json.as_bytes()).unwrap();
        let mut out = Vec::new();
        encode(&req, &mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        let s = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "5b8efff798038103d269b633813fc60c");
        assert_eq!(s["spanId"], "eee19b7ec3c1b174");
        assert_eq!(s["attributes"][0]["value"]["bytesValue"], "AQID");
        assert_eq!(s["attributes"][1]["value"]["doubleValue"], "NaN");
        assert_eq!(s["kind"], 2);
    }

    #[test]
    fn histogram_counts_and_bounds_round_trip_packed() {
        let json = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h",
            "histogram":{"dataPoints":[{"count":"3","bucketCounts":[1,"2"],
            "explicitBounds":["Infinity"],"sum":"1.5"}],"aggregationTemporality":2}}]}]}]}"#;
        let req: ExportMetricsServiceRequest = decode(json.as_bytes()).unwrap();
        let mut out = Vec::new();
        encode(&req, &mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        let h = &v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["histogram"];
        let p = &h["dataPoints"][0];
        assert_eq!(p["count"], "3");
        assert_eq!(p["bucketCounts"], serde_json::json!(["1", "2"]));
        assert_eq!(p["explicitBounds"], serde_json::json!(["Infinity"]));
        assert_eq!(p["sum"], 1.5);
        assert_eq!(h["aggregationTemporality"], 2);
    }

    #[test]
    fn json_containers_are_counted_outside_strings() {
        assert_eq!(json_containers(br#"[{},{},{}]"#), 4);
        assert_eq!(
            json_containers(br#"{"a": [1, {"b": "x{[1"}], "k\"{": []}"#),
            4
        );
    }
}
