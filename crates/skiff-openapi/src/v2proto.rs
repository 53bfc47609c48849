//! The swagger 2.0 document in the protobuf encoding kube-apiserver serves at `/openapi/v2`
//! for `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` (answered with
//! `Content-Type: application/com.github.proto-openapi.spec.v2.v1.0+protobuf`: Go's MIME
//! parser, and so kubectl, rejects the `@` form): the `openapi.v2.Document` message of
//! gnostic (`openapiv2/OpenAPIv2.proto` in github.com/google/gnostic-models).
//!
//! kube-apiserver produces it by parsing its JSON document with gnostic's compiler, so the
//! mapping here follows that compiler:
//! - JSON objects with free keys become ordered `Named*` pairs, in document order;
//! - keys starting with `x-` become `vendor_extension: NamedAny{name, value: Any{yaml}}`,
//!   the value rendered as block-style YAML text (clients read it back with a YAML parser);
//!   `default`, `enum` and `example` values are `Any`s the same way;
//! - a schema's `type` is a `TypeItem` (a string becomes a one-element list), `items` an
//!   `ItemsItem`, `additionalProperties` a schema-or-boolean `AdditionalPropertiesItem`;
//! - a parameter is a JSON reference when it has `$ref`, a `BodyParameter` when `in` is `body`,
//!   otherwise the `NonBodyParameter` sub-schema its `in` names (query, path, header,
//!   formData); a response likewise is a reference or a `Response`;
//! - keys Swagger 2.0 does not have (`oneOf`, `nullable`, ... in custom resource schemas)
//!   are dropped where gnostic would have rejected the document.
//!
//! The message types below are the decoding side (for tests and tools); the encoder writes
//! the same bytes straight from the JSON values. Messages the documents never contain (OAuth2
//! security schemes, `google.protobuf.Any` payloads) are left out; decoding skips them.

use prost::Message;
use serde_json::{Map, Value};

// ---- messages (field numbers from OpenAPIv2.proto) ----

/// `openapi.v2.Document`.
#[derive(Clone, PartialEq, Message)]
pub struct Document {
    #[prost(string, tag = "1")]
    pub swagger: String,
    #[prost(message, optional, tag = "2")]
    pub info: Option<Info>,
    #[prost(string, tag = "3")]
    pub host: String,
    #[prost(string, tag = "4")]
    pub base_path: String,
    #[prost(string, repeated, tag = "5")]
    pub schemes: Vec<String>,
    #[prost(string, repeated, tag = "6")]
    pub consumes: Vec<String>,
    #[prost(string, repeated, tag = "7")]
    pub produces: Vec<String>,
    #[prost(message, optional, tag = "8")]
    pub paths: Option<Paths>,
    #[prost(message, optional, tag = "9")]
    pub definitions: Option<Definitions>,
    #[prost(message, optional, tag = "10")]
    pub parameters: Option<ParameterDefinitions>,
    #[prost(message, optional, tag = "11")]
    pub responses: Option<ResponseDefinitions>,
    #[prost(message, repeated, tag = "12")]
    pub security: Vec<SecurityRequirement>,
    #[prost(message, optional, tag = "13")]
    pub security_definitions: Option<SecurityDefinitions>,
    #[prost(message, repeated, tag = "14")]
    pub tags: Vec<Tag>,
    #[prost(message, optional, tag = "15")]
    pub external_docs: Option<ExternalDocs>,
    #[prost(message, repeated, tag = "16")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Info`.
#[derive(Clone, PartialEq, Message)]
pub struct Info {
    #[prost(string, tag = "1")]
    pub title: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub terms_of_service: String,
    #[prost(message, optional, tag = "5")]
    pub contact: Option<Contact>,
    #[prost(message, optional, tag = "6")]
    pub license: Option<License>,
    #[prost(message, repeated, tag = "7")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Contact`.
#[derive(Clone, PartialEq, Message)]
pub struct Contact {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub url: String,
    #[prost(string, tag = "3")]
    pub email: String,
    #[prost(message, repeated, tag = "4")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.License`.
#[derive(Clone, PartialEq, Message)]
pub struct License {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub url: String,
    #[prost(message, repeated, tag = "3")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.ExternalDocs`.
#[derive(Clone, PartialEq, Message)]
pub struct ExternalDocs {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(string, tag = "2")]
    pub url: String,
    #[prost(message, repeated, tag = "3")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Tag`.
#[derive(Clone, PartialEq, Message)]
pub struct Tag {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub description: String,
    #[prost(message, optional, tag = "3")]
    pub external_docs: Option<ExternalDocs>,
    #[prost(message, repeated, tag = "4")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Any`: a JSON value as YAML text (field 1, a `google.protobuf.Any`, is only
/// set by gnostic extension plugins and left out here).
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    #[prost(string, tag = "2")]
    pub yaml: String,
}

/// `openapi.v2.NamedAny`: one vendor extension (or other free-form entry).
#[derive(Clone, PartialEq, Message)]
pub struct NamedAny {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Any>,
}

/// `openapi.v2.Paths`.
#[derive(Clone, PartialEq, Message)]
pub struct Paths {
    #[prost(message, repeated, tag = "1")]
    pub vendor_extension: Vec<NamedAny>,
    #[prost(message, repeated, tag = "2")]
    pub path: Vec<NamedPathItem>,
}

/// `openapi.v2.NamedPathItem`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedPathItem {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<PathItem>,
}

/// `openapi.v2.PathItem`.
#[derive(Clone, PartialEq, Message)]
pub struct PathItem {
    #[prost(string, tag = "1")]
    pub xref: String,
    #[prost(message, optional, tag = "2")]
    pub get: Option<Operation>,
    #[prost(message, optional, tag = "3")]
    pub put: Option<Operation>,
    #[prost(message, optional, tag = "4")]
    pub post: Option<Operation>,
    #[prost(message, optional, tag = "5")]
    pub delete: Option<Operation>,
    #[prost(message, optional, tag = "6")]
    pub options: Option<Operation>,
    #[prost(message, optional, tag = "7")]
    pub head: Option<Operation>,
    #[prost(message, optional, tag = "8")]
    pub patch: Option<Operation>,
    #[prost(message, repeated, tag = "9")]
    pub parameters: Vec<ParametersItem>,
    #[prost(message, repeated, tag = "10")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Operation`.
#[derive(Clone, PartialEq, Message)]
pub struct Operation {
    #[prost(string, repeated, tag = "1")]
    pub tags: Vec<String>,
    #[prost(string, tag = "2")]
    pub summary: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(message, optional, tag = "4")]
    pub external_docs: Option<ExternalDocs>,
    #[prost(string, tag = "5")]
    pub operation_id: String,
    #[prost(string, repeated, tag = "6")]
    pub produces: Vec<String>,
    #[prost(string, repeated, tag = "7")]
    pub consumes: Vec<String>,
    #[prost(message, repeated, tag = "8")]
    pub parameters: Vec<ParametersItem>,
    #[prost(message, optional, tag = "9")]
    pub responses: Option<Responses>,
    #[prost(string, repeated, tag = "10")]
    pub schemes: Vec<String>,
    #[prost(bool, tag = "11")]
    pub deprecated: bool,
    #[prost(message, repeated, tag = "12")]
    pub security: Vec<SecurityRequirement>,
    #[prost(message, repeated, tag = "13")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.ParametersItem`: a parameter or a reference to one.
#[derive(Clone, PartialEq, Message)]
pub struct ParametersItem {
    #[prost(oneof = "parameters_item::Oneof", tags = "1, 2")]
    pub oneof: Option<parameters_item::Oneof>,
}

/// The cases of [`ParametersItem`].
pub mod parameters_item {
    /// `ParametersItem.oneof`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    #[allow(clippy::large_enum_variant)] // decoding side only; mirrors the proto
    pub enum Oneof {
        #[prost(message, tag = "1")]
        Parameter(super::Parameter),
        #[prost(message, tag = "2")]
        JsonReference(super::JsonReference),
    }
}

/// `openapi.v2.Parameter`: body or non-body.
#[derive(Clone, PartialEq, Message)]
pub struct Parameter {
    #[prost(oneof = "parameter::Oneof", tags = "1, 2")]
    pub oneof: Option<parameter::Oneof>,
}

/// The cases of [`Parameter`].
pub mod parameter {
    /// `Parameter.oneof`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    #[allow(clippy::large_enum_variant)] // decoding side only; mirrors the proto
    pub enum Oneof {
        #[prost(message, tag = "1")]
        BodyParameter(super::BodyParameter),
        #[prost(message, tag = "2")]
        NonBodyParameter(super::NonBodyParameter),
    }
}

/// `openapi.v2.JsonReference`.
#[derive(Clone, PartialEq, Message)]
pub struct JsonReference {
    #[prost(string, tag = "1")]
    pub xref: String,
    #[prost(string, tag = "2")]
    pub description: String,
}

/// `openapi.v2.BodyParameter`.
#[derive(Clone, PartialEq, Message)]
pub struct BodyParameter {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub r#in: String,
    #[prost(bool, tag = "4")]
    pub required: bool,
    #[prost(message, optional, tag = "5")]
    pub schema: Option<Schema>,
    #[prost(message, repeated, tag = "6")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.NonBodyParameter`: one sub-schema per location.
#[derive(Clone, PartialEq, Message)]
pub struct NonBodyParameter {
    #[prost(oneof = "non_body_parameter::Oneof", tags = "1, 2, 3, 4")]
    pub oneof: Option<non_body_parameter::Oneof>,
}

/// The cases of [`NonBodyParameter`].
pub mod non_body_parameter {
    /// `NonBodyParameter.oneof`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    #[allow(clippy::large_enum_variant)] // decoding side only; mirrors the proto
    pub enum Oneof {
        #[prost(message, tag = "1")]
        HeaderParameterSubSchema(super::HeaderParameterSubSchema),
        #[prost(message, tag = "2")]
        FormDataParameterSubSchema(super::FormDataParameterSubSchema),
        #[prost(message, tag = "3")]
        QueryParameterSubSchema(super::QueryParameterSubSchema),
        #[prost(message, tag = "4")]
        PathParameterSubSchema(super::PathParameterSubSchema),
    }
}

/// `openapi.v2.QueryParameterSubSchema`.
#[derive(Clone, PartialEq, Message)]
pub struct QueryParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(bool, tag = "5")]
    pub allow_empty_value: bool,
    #[prost(string, tag = "6")]
    pub r#type: String,
    #[prost(string, tag = "7")]
    pub format: String,
    #[prost(message, optional, boxed, tag = "8")]
    pub items: Option<Box<PrimitivesItems>>,
    #[prost(string, tag = "9")]
    pub collection_format: String,
    #[prost(message, optional, tag = "10")]
    pub default: Option<Any>,
    #[prost(double, tag = "11")]
    pub maximum: f64,
    #[prost(bool, tag = "12")]
    pub exclusive_maximum: bool,
    #[prost(double, tag = "13")]
    pub minimum: f64,
    #[prost(bool, tag = "14")]
    pub exclusive_minimum: bool,
    #[prost(int64, tag = "15")]
    pub max_length: i64,
    #[prost(int64, tag = "16")]
    pub min_length: i64,
    #[prost(string, tag = "17")]
    pub pattern: String,
    #[prost(int64, tag = "18")]
    pub max_items: i64,
    #[prost(int64, tag = "19")]
    pub min_items: i64,
    #[prost(bool, tag = "20")]
    pub unique_items: bool,
    #[prost(message, repeated, tag = "21")]
    pub r#enum: Vec<Any>,
    #[prost(double, tag = "22")]
    pub multiple_of: f64,
    #[prost(message, repeated, tag = "23")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.FormDataParameterSubSchema`.
#[derive(Clone, PartialEq, Message)]
pub struct FormDataParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(bool, tag = "5")]
    pub allow_empty_value: bool,
    #[prost(string, tag = "6")]
    pub r#type: String,
    #[prost(string, tag = "7")]
    pub format: String,
    #[prost(message, optional, boxed, tag = "8")]
    pub items: Option<Box<PrimitivesItems>>,
    #[prost(string, tag = "9")]
    pub collection_format: String,
    #[prost(message, optional, tag = "10")]
    pub default: Option<Any>,
    #[prost(double, tag = "11")]
    pub maximum: f64,
    #[prost(bool, tag = "12")]
    pub exclusive_maximum: bool,
    #[prost(double, tag = "13")]
    pub minimum: f64,
    #[prost(bool, tag = "14")]
    pub exclusive_minimum: bool,
    #[prost(int64, tag = "15")]
    pub max_length: i64,
    #[prost(int64, tag = "16")]
    pub min_length: i64,
    #[prost(string, tag = "17")]
    pub pattern: String,
    #[prost(int64, tag = "18")]
    pub max_items: i64,
    #[prost(int64, tag = "19")]
    pub min_items: i64,
    #[prost(bool, tag = "20")]
    pub unique_items: bool,
    #[prost(message, repeated, tag = "21")]
    pub r#enum: Vec<Any>,
    #[prost(double, tag = "22")]
    pub multiple_of: f64,
    #[prost(message, repeated, tag = "23")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.HeaderParameterSubSchema`.
#[derive(Clone, PartialEq, Message)]
pub struct HeaderParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "5")]
    pub r#type: String,
    #[prost(string, tag = "6")]
    pub format: String,
    #[prost(message, optional, boxed, tag = "7")]
    pub items: Option<Box<PrimitivesItems>>,
    #[prost(string, tag = "8")]
    pub collection_format: String,
    #[prost(message, optional, tag = "9")]
    pub default: Option<Any>,
    #[prost(double, tag = "10")]
    pub maximum: f64,
    #[prost(bool, tag = "11")]
    pub exclusive_maximum: bool,
    #[prost(double, tag = "12")]
    pub minimum: f64,
    #[prost(bool, tag = "13")]
    pub exclusive_minimum: bool,
    #[prost(int64, tag = "14")]
    pub max_length: i64,
    #[prost(int64, tag = "15")]
    pub min_length: i64,
    #[prost(string, tag = "16")]
    pub pattern: String,
    #[prost(int64, tag = "17")]
    pub max_items: i64,
    #[prost(int64, tag = "18")]
    pub min_items: i64,
    #[prost(bool, tag = "19")]
    pub unique_items: bool,
    #[prost(message, repeated, tag = "20")]
    pub r#enum: Vec<Any>,
    #[prost(double, tag = "21")]
    pub multiple_of: f64,
    #[prost(message, repeated, tag = "22")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.PathParameterSubSchema`: the same fields and numbers as the header one, so the
/// same message.
pub type PathParameterSubSchema = HeaderParameterSubSchema;

/// `openapi.v2.PrimitivesItems`: `items` of a non-body parameter or header.
#[derive(Clone, PartialEq, Message)]
pub struct PrimitivesItems {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(string, tag = "2")]
    pub format: String,
    #[prost(message, optional, boxed, tag = "3")]
    pub items: Option<Box<PrimitivesItems>>,
    #[prost(string, tag = "4")]
    pub collection_format: String,
    #[prost(message, optional, tag = "5")]
    pub default: Option<Any>,
    #[prost(double, tag = "6")]
    pub maximum: f64,
    #[prost(bool, tag = "7")]
    pub exclusive_maximum: bool,
    #[prost(double, tag = "8")]
    pub minimum: f64,
    #[prost(bool, tag = "9")]
    pub exclusive_minimum: bool,
    #[prost(int64, tag = "10")]
    pub max_length: i64,
    #[prost(int64, tag = "11")]
    pub min_length: i64,
    #[prost(string, tag = "12")]
    pub pattern: String,
    #[prost(int64, tag = "13")]
    pub max_items: i64,
    #[prost(int64, tag = "14")]
    pub min_items: i64,
    #[prost(bool, tag = "15")]
    pub unique_items: bool,
    #[prost(message, repeated, tag = "16")]
    pub r#enum: Vec<Any>,
    #[prost(double, tag = "17")]
    pub multiple_of: f64,
    #[prost(message, repeated, tag = "18")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Header` (same field numbers as [`PrimitivesItems`] up to 17).
#[derive(Clone, PartialEq, Message)]
pub struct Header {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(string, tag = "2")]
    pub format: String,
    #[prost(message, optional, boxed, tag = "3")]
    pub items: Option<Box<PrimitivesItems>>,
    #[prost(string, tag = "4")]
    pub collection_format: String,
    #[prost(message, optional, tag = "5")]
    pub default: Option<Any>,
    #[prost(double, tag = "6")]
    pub maximum: f64,
    #[prost(bool, tag = "7")]
    pub exclusive_maximum: bool,
    #[prost(double, tag = "8")]
    pub minimum: f64,
    #[prost(bool, tag = "9")]
    pub exclusive_minimum: bool,
    #[prost(int64, tag = "10")]
    pub max_length: i64,
    #[prost(int64, tag = "11")]
    pub min_length: i64,
    #[prost(string, tag = "12")]
    pub pattern: String,
    #[prost(int64, tag = "13")]
    pub max_items: i64,
    #[prost(int64, tag = "14")]
    pub min_items: i64,
    #[prost(bool, tag = "15")]
    pub unique_items: bool,
    #[prost(message, repeated, tag = "16")]
    pub r#enum: Vec<Any>,
    #[prost(double, tag = "17")]
    pub multiple_of: f64,
    #[prost(string, tag = "18")]
    pub description: String,
    #[prost(message, repeated, tag = "19")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.NamedHeader`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedHeader {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Header>,
}

/// `openapi.v2.Headers`.
#[derive(Clone, PartialEq, Message)]
pub struct Headers {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedHeader>,
}

/// `openapi.v2.Examples`.
#[derive(Clone, PartialEq, Message)]
pub struct Examples {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedAny>,
}

/// `openapi.v2.Responses`: by status code (`200`, `default`, ...).
#[derive(Clone, PartialEq, Message)]
pub struct Responses {
    #[prost(message, repeated, tag = "1")]
    pub response_code: Vec<NamedResponseValue>,
    #[prost(message, repeated, tag = "2")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.NamedResponseValue`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedResponseValue {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<ResponseValue>,
}

/// `openapi.v2.ResponseValue`: a response or a reference to one.
#[derive(Clone, PartialEq, Message)]
pub struct ResponseValue {
    #[prost(oneof = "response_value::Oneof", tags = "1, 2")]
    pub oneof: Option<response_value::Oneof>,
}

/// The cases of [`ResponseValue`].
pub mod response_value {
    /// `ResponseValue.oneof`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    #[allow(clippy::large_enum_variant)] // decoding side only; mirrors the proto
    pub enum Oneof {
        #[prost(message, tag = "1")]
        Response(super::Response),
        #[prost(message, tag = "2")]
        JsonReference(super::JsonReference),
    }
}

/// `openapi.v2.Response`.
#[derive(Clone, PartialEq, Message)]
pub struct Response {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(message, optional, tag = "2")]
    pub schema: Option<SchemaItem>,
    #[prost(message, optional, tag = "3")]
    pub headers: Option<Headers>,
    #[prost(message, optional, tag = "4")]
    pub examples: Option<Examples>,
    #[prost(message, repeated, tag = "5")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.SchemaItem`: a schema or a file schema.
#[derive(Clone, PartialEq, Message)]
pub struct SchemaItem {
    #[prost(oneof = "schema_item::Oneof", tags = "1, 2")]
    pub oneof: Option<schema_item::Oneof>,
}

/// The cases of [`SchemaItem`].
pub mod schema_item {
    /// `SchemaItem.oneof`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    #[allow(clippy::large_enum_variant)] // decoding side only; mirrors the proto
    pub enum Oneof {
        #[prost(message, tag = "1")]
        Schema(super::Schema),
        #[prost(message, tag = "2")]
        FileSchema(super::FileSchema),
    }
}

/// `openapi.v2.FileSchema`.
#[derive(Clone, PartialEq, Message)]
pub struct FileSchema {
    #[prost(string, tag = "1")]
    pub format: String,
    #[prost(string, tag = "2")]
    pub title: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(message, optional, tag = "4")]
    pub default: Option<Any>,
    #[prost(string, repeated, tag = "5")]
    pub required: Vec<String>,
    #[prost(string, tag = "6")]
    pub r#type: String,
    #[prost(bool, tag = "7")]
    pub read_only: bool,
    #[prost(message, optional, tag = "8")]
    pub external_docs: Option<ExternalDocs>,
    #[prost(message, optional, tag = "9")]
    pub example: Option<Any>,
    #[prost(message, repeated, tag = "10")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Definitions`.
#[derive(Clone, PartialEq, Message)]
pub struct Definitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

/// `openapi.v2.NamedSchema`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedSchema {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Schema>,
}

/// `openapi.v2.Schema`.
#[derive(Clone, PartialEq, Message)]
pub struct Schema {
    #[prost(string, tag = "1")]
    pub xref: String,
    #[prost(string, tag = "2")]
    pub format: String,
    #[prost(string, tag = "3")]
    pub title: String,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(message, optional, tag = "5")]
    pub default: Option<Any>,
    #[prost(double, tag = "6")]
    pub multiple_of: f64,
    #[prost(double, tag = "7")]
    pub maximum: f64,
    #[prost(bool, tag = "8")]
    pub exclusive_maximum: bool,
    #[prost(double, tag = "9")]
    pub minimum: f64,
    #[prost(bool, tag = "10")]
    pub exclusive_minimum: bool,
    #[prost(int64, tag = "11")]
    pub max_length: i64,
    #[prost(int64, tag = "12")]
    pub min_length: i64,
    #[prost(string, tag = "13")]
    pub pattern: String,
    #[prost(int64, tag = "14")]
    pub max_items: i64,
    #[prost(int64, tag = "15")]
    pub min_items: i64,
    #[prost(bool, tag = "16")]
    pub unique_items: bool,
    #[prost(int64, tag = "17")]
    pub max_properties: i64,
    #[prost(int64, tag = "18")]
    pub min_properties: i64,
    #[prost(string, repeated, tag = "19")]
    pub required: Vec<String>,
    #[prost(message, repeated, tag = "20")]
    pub r#enum: Vec<Any>,
    #[prost(message, optional, boxed, tag = "21")]
    pub additional_properties: Option<Box<AdditionalPropertiesItem>>,
    #[prost(message, optional, tag = "22")]
    pub r#type: Option<TypeItem>,
    #[prost(message, optional, tag = "23")]
    pub items: Option<ItemsItem>,
    #[prost(message, repeated, tag = "24")]
    pub all_of: Vec<Schema>,
    #[prost(message, optional, tag = "25")]
    pub properties: Option<Properties>,
    #[prost(string, tag = "26")]
    pub discriminator: String,
    #[prost(bool, tag = "27")]
    pub read_only: bool,
    #[prost(message, optional, tag = "28")]
    pub xml: Option<Xml>,
    #[prost(message, optional, tag = "29")]
    pub external_docs: Option<ExternalDocs>,
    #[prost(message, optional, tag = "30")]
    pub example: Option<Any>,
    #[prost(message, repeated, tag = "31")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.AdditionalPropertiesItem`: a schema or a boolean.
#[derive(Clone, PartialEq, Message)]
pub struct AdditionalPropertiesItem {
    #[prost(oneof = "additional_properties_item::Oneof", tags = "1, 2")]
    pub oneof: Option<additional_properties_item::Oneof>,
}

/// The cases of [`AdditionalPropertiesItem`].
pub mod additional_properties_item {
    /// `AdditionalPropertiesItem.oneof`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    #[allow(clippy::large_enum_variant)] // decoding side only; mirrors the proto
    pub enum Oneof {
        #[prost(message, tag = "1")]
        Schema(super::Schema),
        #[prost(bool, tag = "2")]
        Boolean(bool),
    }
}

/// `openapi.v2.TypeItem`.
#[derive(Clone, PartialEq, Message)]
pub struct TypeItem {
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

/// `openapi.v2.ItemsItem`.
#[derive(Clone, PartialEq, Message)]
pub struct ItemsItem {
    #[prost(message, repeated, tag = "1")]
    pub schema: Vec<Schema>,
}

/// `openapi.v2.Properties`.
#[derive(Clone, PartialEq, Message)]
pub struct Properties {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

/// `openapi.v2.Xml`.
#[derive(Clone, PartialEq, Message)]
pub struct Xml {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub namespace: String,
    #[prost(string, tag = "3")]
    pub prefix: String,
    #[prost(bool, tag = "4")]
    pub attribute: bool,
    #[prost(bool, tag = "5")]
    pub wrapped: bool,
    #[prost(message, repeated, tag = "6")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.ParameterDefinitions`: the document's shared `parameters`.
#[derive(Clone, PartialEq, Message)]
pub struct ParameterDefinitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedParameter>,
}

/// `openapi.v2.NamedParameter`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedParameter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Parameter>,
}

/// `openapi.v2.ResponseDefinitions`: the document's shared `responses`.
#[derive(Clone, PartialEq, Message)]
pub struct ResponseDefinitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedResponse>,
}

/// `openapi.v2.NamedResponse`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedResponse {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Response>,
}

/// `openapi.v2.SecurityRequirement`: scheme name → scopes.
#[derive(Clone, PartialEq, Message)]
pub struct SecurityRequirement {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedStringArray>,
}

/// `openapi.v2.NamedStringArray`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedStringArray {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<StringArray>,
}

/// `openapi.v2.StringArray`.
#[derive(Clone, PartialEq, Message)]
pub struct StringArray {
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

/// `openapi.v2.SecurityDefinitions`.
#[derive(Clone, PartialEq, Message)]
pub struct SecurityDefinitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSecurityDefinitionsItem>,
}

/// `openapi.v2.NamedSecurityDefinitionsItem`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedSecurityDefinitionsItem {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<SecurityDefinitionsItem>,
}

/// `openapi.v2.SecurityDefinitionsItem` (the OAuth2 cases, tags 3–6, are left out).
#[derive(Clone, PartialEq, Message)]
pub struct SecurityDefinitionsItem {
    #[prost(oneof = "security_definitions_item::Oneof", tags = "1, 2")]
    pub oneof: Option<security_definitions_item::Oneof>,
}

/// The cases of [`SecurityDefinitionsItem`].
pub mod security_definitions_item {
    /// `SecurityDefinitionsItem.oneof`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    #[allow(clippy::large_enum_variant)] // decoding side only; mirrors the proto
    pub enum Oneof {
        #[prost(message, tag = "1")]
        BasicAuthenticationSecurity(super::BasicAuthenticationSecurity),
        #[prost(message, tag = "2")]
        ApiKeySecurity(super::ApiKeySecurity),
    }
}

/// `openapi.v2.BasicAuthenticationSecurity`.
#[derive(Clone, PartialEq, Message)]
pub struct BasicAuthenticationSecurity {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(string, tag = "2")]
    pub description: String,
    #[prost(message, repeated, tag = "3")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.ApiKeySecurity`.
#[derive(Clone, PartialEq, Message)]
pub struct ApiKeySecurity {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub r#in: String,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(message, repeated, tag = "5")]
    pub vendor_extension: Vec<NamedAny>,
}

// ---- JSON → protobuf ----
//
// The encoder writes the wire format straight from the JSON values (no intermediate message
// structs: about 2.5 MB of output, written in a few milliseconds), fields in field-number
// order with proto3 defaults left out, which is byte for byte what encoding the message
// types above produces (the tests decode and re-encode to check).

/// Encodes a swagger 2.0 JSON document (`GET /openapi/v2` as JSON) as the protobuf
/// `openapi.v2.Document`.
pub fn from_json(json: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let doc: Map<String, Value> = serde_json::from_slice(json)?;
    let definitions = doc.get("definitions").and_then(Value::as_object);
    Ok(Conv::default().document(
        &doc,
        definitions.map(|d| d.iter().map(|(k, v)| (k.as_str(), v))),
    ))
}

/// The conversion, with an optional rewrite of `$ref` prefixes (the v2 renderer keeps its
/// schemas in canonical `#/components/schemas/` form and rewrites them on output).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Conv<'a> {
    pub ref_from: &'a str,
    pub ref_to: &'a str,
}

/// Protobuf wire-format writer.
struct W {
    buf: Vec<u8>,
}

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

impl W {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, tag: u32, wire: u32) {
        self.varint(u64::from((tag << 3) | wire));
    }

    fn str(&mut self, tag: u32, s: &str) {
        if !s.is_empty() {
            self.str_always(tag, s);
        }
    }

    /// A string even when empty: an element of a repeated field.
    fn str_always(&mut self, tag: u32, s: &str) {
        self.key(tag, LEN);
        self.varint(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    fn bool(&mut self, tag: u32, b: bool) {
        if b {
            self.key(tag, VARINT);
            self.buf.push(1);
        }
    }

    fn double(&mut self, tag: u32, f: f64) {
        if f.to_bits() != 0 {
            self.key(tag, FIXED64);
            self.buf.extend_from_slice(&f.to_le_bytes());
        }
    }

    fn int64(&mut self, tag: u32, i: i64) {
        if i != 0 {
            self.key(tag, VARINT);
            self.varint(i as u64);
        }
    }

    /// A nested message: its length is only known once written, so one byte is reserved and
    /// the body moved when the length needs more.
    fn message(&mut self, tag: u32, body: impl FnOnce(&mut W)) {
        self.key(tag, LEN);
        let at = self.buf.len();
        self.buf.push(0);
        body(self);
        let len = self.buf.len() - at - 1;
        if len < 0x80 {
            self.buf[at] = len as u8;
        } else {
            let mut prefix = W {
                buf: Vec::with_capacity(10),
            };
            prefix.varint(len as u64);
            self.buf.splice(at..=at, prefix.buf);
        }
    }

    fn strings(&mut self, tag: u32, v: Option<&Value>) {
        if let Some(Value::Array(items)) = v {
            for s in items.iter().filter_map(Value::as_str) {
                self.str_always(tag, s);
            }
        }
    }
}

fn get_str<'v>(m: &'v Map<String, Value>, key: &str) -> &'v str {
    m.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn get_bool(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key).and_then(Value::as_bool).unwrap_or_default()
}

fn get_f64(m: &Map<String, Value>, key: &str) -> f64 {
    m.get(key).and_then(Value::as_f64).unwrap_or_default()
}

fn get_i64(m: &Map<String, Value>, key: &str) -> i64 {
    m.get(key)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        .unwrap_or_default()
}

fn object<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Map<String, Value>> {
    m.get(key).and_then(Value::as_object)
}

/// The entries of a JSON object, or none.
fn entries<'v>(
    m: &'v Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = (&'v String, &'v Map<String, Value>)> {
    object(m, key)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_object().map(|o| (k, o)))
}

/// The objects of a JSON array, or none.
fn objects(v: Option<&Value>) -> impl Iterator<Item = &Map<String, Value>> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

impl Conv<'_> {
    fn rewrite<'s>(&self, r: &'s str) -> std::borrow::Cow<'s, str> {
        match r.strip_prefix(self.ref_from) {
            Some(rest) if !self.ref_from.is_empty() => format!("{}{rest}", self.ref_to).into(),
            _ => r.into(),
        }
    }

    /// An `Any` message holding `v` as YAML.
    fn any(&self, w: &mut W, tag: u32, v: &Value) {
        w.message(tag, |w| w.str(2, &yaml(v, self)));
    }

    fn anys(&self, w: &mut W, tag: u32, v: Option<&Value>) {
        for item in v.and_then(Value::as_array).into_iter().flatten() {
            self.any(w, tag, item);
        }
    }

    fn opt_any(&self, w: &mut W, tag: u32, v: Option<&Value>) {
        if let Some(v) = v {
            self.any(w, tag, v);
        }
    }

    /// `repeated NamedAny`: every entry, or with `only_x` the `x-` ones.
    fn named_anys(&self, w: &mut W, tag: u32, m: &Map<String, Value>, only_x: bool) {
        for (k, v) in m {
            if !only_x || k.starts_with("x-") {
                w.message(tag, |w| {
                    w.str(1, k);
                    self.any(w, 2, v);
                });
            }
        }
    }

    fn extensions(&self, w: &mut W, tag: u32, m: &Map<String, Value>) {
        self.named_anys(w, tag, m, true);
    }

    /// `Document`, with the definitions given apart (the v2 renderer splices them in).
    pub(crate) fn document<'v>(
        &self,
        m: &Map<String, Value>,
        definitions: Option<impl Iterator<Item = (&'v str, &'v Value)>>,
    ) -> Vec<u8> {
        let w = &mut W {
            buf: Vec::with_capacity(4 << 20),
        };
        w.str(1, get_str(m, "swagger"));
        if let Some(info) = object(m, "info") {
            w.message(2, |w| self.info(w, info));
        }
        w.str(3, get_str(m, "host"));
        w.str(4, get_str(m, "basePath"));
        w.strings(5, m.get("schemes"));
        w.strings(6, m.get("consumes"));
        w.strings(7, m.get("produces"));
        if let Some(paths) = object(m, "paths") {
            w.message(8, |w| self.paths(w, paths));
        }
        if let Some(definitions) = definitions {
            w.message(9, |w| {
                for (name, schema) in definitions {
                    if let Some(schema) = schema.as_object() {
                        self.named(w, 1, name, |w| self.schema(w, schema));
                    }
                }
            });
        }
        if object(m, "parameters").is_some() {
            w.message(10, |w| {
                for (name, p) in entries(m, "parameters") {
                    self.named(w, 1, name, |w| self.parameter(w, p));
                }
            });
        }
        if object(m, "responses").is_some() {
            w.message(11, |w| {
                for (name, r) in entries(m, "responses") {
                    self.named(w, 1, name, |w| self.response(w, r));
                }
            });
        }
        self.security(w, 12, m.get("security"));
        if object(m, "securityDefinitions").is_some() {
            w.message(13, |w| {
                for (name, d) in entries(m, "securityDefinitions") {
                    self.named(w, 1, name, |w| self.security_definition(w, d));
                }
            });
        }
        for tag in objects(m.get("tags")) {
            w.message(14, |w| {
                w.str(1, get_str(tag, "name"));
                w.str(2, get_str(tag, "description"));
                self.external_docs(w, 3, tag);
                self.extensions(w, 4, tag);
            });
        }
        self.external_docs(w, 15, m);
        self.extensions(w, 16, m);
        std::mem::take(&mut w.buf)
    }

    /// A `Named*` pair: `name = 1`, `value = 2`.
    fn named(&self, w: &mut W, tag: u32, name: &str, value: impl FnOnce(&mut W)) {
        w.message(tag, |w| {
            w.str(1, name);
            w.message(2, value);
        });
    }

    fn info(&self, w: &mut W, m: &Map<String, Value>) {
        w.str(1, get_str(m, "title"));
        w.str(2, get_str(m, "version"));
        w.str(3, get_str(m, "description"));
        w.str(4, get_str(m, "termsOfService"));
        if let Some(c) = object(m, "contact") {
            w.message(5, |w| {
                w.str(1, get_str(c, "name"));
                w.str(2, get_str(c, "url"));
                w.str(3, get_str(c, "email"));
                self.extensions(w, 4, c);
            });
        }
        if let Some(l) = object(m, "license") {
            w.message(6, |w| {
                w.str(1, get_str(l, "name"));
                w.str(2, get_str(l, "url"));
                self.extensions(w, 3, l);
            });
        }
        self.extensions(w, 7, m);
    }

    /// The `externalDocs` member of `m`, if any, as field `tag`.
    fn external_docs(&self, w: &mut W, tag: u32, m: &Map<String, Value>) {
        if let Some(d) = object(m, "externalDocs") {
            w.message(tag, |w| {
                w.str(1, get_str(d, "description"));
                w.str(2, get_str(d, "url"));
                self.extensions(w, 3, d);
            });
        }
    }

    /// `repeated SecurityRequirement`: scheme name → scopes.
    fn security(&self, w: &mut W, tag: u32, v: Option<&Value>) {
        for requirement in objects(v) {
            w.message(tag, |w| {
                for (name, scopes) in requirement {
                    w.message(1, |w| {
                        w.str(1, name);
                        w.message(2, |w| w.strings(1, Some(scopes)));
                    });
                }
            });
        }
    }

    /// `SecurityDefinitionsItem` (basic and API key schemes; OAuth2 ones are left empty).
    fn security_definition(&self, w: &mut W, m: &Map<String, Value>) {
        match get_str(m, "type") {
            "basic" => w.message(1, |w| {
                w.str(1, "basic");
                w.str(2, get_str(m, "description"));
                self.extensions(w, 3, m);
            }),
            "apiKey" => w.message(2, |w| {
                w.str(1, "apiKey");
                w.str(2, get_str(m, "name"));
                w.str(3, get_str(m, "in"));
                w.str(4, get_str(m, "description"));
                self.extensions(w, 5, m);
            }),
            _ => {}
        }
    }

    fn paths(&self, w: &mut W, m: &Map<String, Value>) {
        self.extensions(w, 1, m);
        for (name, item) in m {
            if let (true, Some(item)) = (name.starts_with('/'), item.as_object()) {
                self.named(w, 2, name, |w| self.path_item(w, item));
            }
        }
    }

    fn path_item(&self, w: &mut W, m: &Map<String, Value>) {
        w.str(1, get_str(m, "$ref"));
        let methods = ["get", "put", "post", "delete", "options", "head", "patch"];
        for (tag, method) in (2..).zip(methods) {
            if let Some(op) = object(m, method) {
                w.message(tag, |w| self.operation(w, op));
            }
        }
        self.parameters(w, 9, m.get("parameters"));
        self.extensions(w, 10, m);
    }

    fn operation(&self, w: &mut W, m: &Map<String, Value>) {
        w.strings(1, m.get("tags"));
        w.str(2, get_str(m, "summary"));
        w.str(3, get_str(m, "description"));
        self.external_docs(w, 4, m);
        w.str(5, get_str(m, "operationId"));
        w.strings(6, m.get("produces"));
        w.strings(7, m.get("consumes"));
        self.parameters(w, 8, m.get("parameters"));
        if let Some(responses) = object(m, "responses") {
            w.message(9, |w| self.responses(w, responses));
        }
        w.strings(10, m.get("schemes"));
        w.bool(11, get_bool(m, "deprecated"));
        self.security(w, 12, m.get("security"));
        self.extensions(w, 13, m);
    }

    /// `repeated ParametersItem`: a reference when there is `$ref`, else a parameter.
    fn parameters(&self, w: &mut W, tag: u32, v: Option<&Value>) {
        for p in objects(v) {
            w.message(tag, |w| {
                if p.contains_key("$ref") {
                    w.message(2, |w| self.json_reference(w, p));
                } else {
                    w.message(1, |w| self.parameter(w, p));
                }
            });
        }
    }

    fn json_reference(&self, w: &mut W, m: &Map<String, Value>) {
        w.str(1, &self.rewrite(get_str(m, "$ref")));
        w.str(2, get_str(m, "description"));
    }

    /// `Parameter`: a `BodyParameter` for `in: body`, otherwise the `NonBodyParameter`
    /// sub-schema of the location (query when unknown).
    fn parameter(&self, w: &mut W, m: &Map<String, Value>) {
        let location = get_str(m, "in");
        if location == "body" {
            w.message(1, |w| {
                w.str(1, get_str(m, "description"));
                w.str(2, get_str(m, "name"));
                w.str(3, location);
                w.bool(4, get_bool(m, "required"));
                if let Some(schema) = object(m, "schema") {
                    w.message(5, |w| self.schema(w, schema));
                }
                self.extensions(w, 6, m);
            });
            return;
        }
        // (oneof tag, whether the sub-schema has `allowEmptyValue` at 5)
        let (tag, empty_value) = match location {
            "header" => (1, false),
            "formData" => (2, true),
            "path" => (4, false),
            _ => (3, true),
        };
        w.message(2, |w| {
            w.message(tag, |w| {
                w.bool(1, get_bool(m, "required"));
                w.str(2, location);
                w.str(3, get_str(m, "description"));
                w.str(4, get_str(m, "name"));
                let base = if empty_value {
                    w.bool(5, get_bool(m, "allowEmptyValue"));
                    6
                } else {
                    5
                };
                self.primitive_fields(w, base, m);
                self.extensions(w, base + 17, m);
            });
        });
    }

    /// The fields `PrimitivesItems`, `Header` and the non-body parameter sub-schemas share,
    /// numbered from `base` (`type`) to `base + 16` (`multipleOf`).
    fn primitive_fields(&self, w: &mut W, base: u32, m: &Map<String, Value>) {
        w.str(base, get_str(m, "type"));
        w.str(base + 1, get_str(m, "format"));
        if let Some(items) = object(m, "items") {
            w.message(base + 2, |w| {
                self.primitive_fields(w, 1, items);
                self.extensions(w, 18, items);
            });
        }
        w.str(base + 3, get_str(m, "collectionFormat"));
        self.opt_any(w, base + 4, m.get("default"));
        w.double(base + 5, get_f64(m, "maximum"));
        w.bool(base + 6, get_bool(m, "exclusiveMaximum"));
        w.double(base + 7, get_f64(m, "minimum"));
        w.bool(base + 8, get_bool(m, "exclusiveMinimum"));
        w.int64(base + 9, get_i64(m, "maxLength"));
        w.int64(base + 10, get_i64(m, "minLength"));
        w.str(base + 11, get_str(m, "pattern"));
        w.int64(base + 12, get_i64(m, "maxItems"));
        w.int64(base + 13, get_i64(m, "minItems"));
        w.bool(base + 14, get_bool(m, "uniqueItems"));
        self.anys(w, base + 15, m.get("enum"));
        w.double(base + 16, get_f64(m, "multipleOf"));
    }

    /// `Responses`: status codes (three digits or `default`), then extensions.
    fn responses(&self, w: &mut W, m: &Map<String, Value>) {
        let is_code =
            |k: &str| k == "default" || (k.len() == 3 && k.bytes().all(|b| b.is_ascii_digit()));
        for (code, r) in m {
            if let (true, Some(r)) = (is_code(code), r.as_object()) {
                self.named(w, 1, code, |w| {
                    if r.contains_key("$ref") {
                        w.message(2, |w| self.json_reference(w, r));
                    } else {
                        w.message(1, |w| self.response(w, r));
                    }
                });
            }
        }
        self.extensions(w, 2, m);
    }

    fn response(&self, w: &mut W, m: &Map<String, Value>) {
        w.str(1, get_str(m, "description"));
        if let Some(s) = object(m, "schema") {
            w.message(2, |w| {
                if get_str(s, "type") == "file" {
                    w.message(2, |w| self.file_schema(w, s));
                } else {
                    w.message(1, |w| self.schema(w, s));
                }
            });
        }
        if object(m, "headers").is_some() {
            w.message(3, |w| {
                for (name, h) in entries(m, "headers") {
                    self.named(w, 1, name, |w| {
                        self.primitive_fields(w, 1, h);
                        w.str(18, get_str(h, "description"));
                        self.extensions(w, 19, h);
                    });
                }
            });
        }
        if let Some(examples) = object(m, "examples") {
            w.message(4, |w| self.named_anys(w, 1, examples, false));
        }
        self.extensions(w, 5, m);
    }

    fn file_schema(&self, w: &mut W, m: &Map<String, Value>) {
        w.str(1, get_str(m, "format"));
        w.str(2, get_str(m, "title"));
        w.str(3, get_str(m, "description"));
        self.opt_any(w, 4, m.get("default"));
        w.strings(5, m.get("required"));
        w.str(6, get_str(m, "type"));
        w.bool(7, get_bool(m, "readOnly"));
        self.external_docs(w, 8, m);
        self.opt_any(w, 9, m.get("example"));
        self.extensions(w, 10, m);
    }

    /// `Schema`. Keys Swagger 2.0 schemas do not have are dropped.
    fn schema(&self, w: &mut W, m: &Map<String, Value>) {
        if let Some(r) = m.get("$ref").and_then(Value::as_str) {
            w.str(1, &self.rewrite(r));
        }
        w.str(2, get_str(m, "format"));
        w.str(3, get_str(m, "title"));
        w.str(4, get_str(m, "description"));
        self.opt_any(w, 5, m.get("default"));
        w.double(6, get_f64(m, "multipleOf"));
        w.double(7, get_f64(m, "maximum"));
        w.bool(8, get_bool(m, "exclusiveMaximum"));
        w.double(9, get_f64(m, "minimum"));
        w.bool(10, get_bool(m, "exclusiveMinimum"));
        w.int64(11, get_i64(m, "maxLength"));
        w.int64(12, get_i64(m, "minLength"));
        w.str(13, get_str(m, "pattern"));
        w.int64(14, get_i64(m, "maxItems"));
        w.int64(15, get_i64(m, "minItems"));
        w.bool(16, get_bool(m, "uniqueItems"));
        w.int64(17, get_i64(m, "maxProperties"));
        w.int64(18, get_i64(m, "minProperties"));
        w.strings(19, m.get("required"));
        self.anys(w, 20, m.get("enum"));
        match m.get("additionalProperties") {
            Some(Value::Object(s)) => w.message(21, |w| w.message(1, |w| self.schema(w, s))),
            Some(Value::Bool(b)) => w.message(21, |w| {
                // A oneof member is written even when false.
                w.key(2, VARINT);
                w.buf.push(u8::from(*b));
            }),
            _ => {}
        }
        match m.get("type") {
            Some(Value::String(t)) => w.message(22, |w| w.str_always(1, t)),
            Some(types @ Value::Array(_)) => w.message(22, |w| w.strings(1, Some(types))),
            _ => {}
        }
        match m.get("items") {
            Some(Value::Object(s)) => w.message(23, |w| w.message(1, |w| self.schema(w, s))),
            Some(items @ Value::Array(_)) => w.message(23, |w| {
                for s in objects(Some(items)) {
                    w.message(1, |w| self.schema(w, s));
                }
            }),
            _ => {}
        }
        for s in objects(m.get("allOf")) {
            w.message(24, |w| self.schema(w, s));
        }
        if object(m, "properties").is_some() {
            w.message(25, |w| {
                for (name, s) in entries(m, "properties") {
                    self.named(w, 1, name, |w| self.schema(w, s));
                }
            });
        }
        w.str(26, get_str(m, "discriminator"));
        w.bool(27, get_bool(m, "readOnly"));
        if let Some(x) = object(m, "xml") {
            w.message(28, |w| {
                w.str(1, get_str(x, "name"));
                w.str(2, get_str(x, "namespace"));
                w.str(3, get_str(x, "prefix"));
                w.bool(4, get_bool(x, "attribute"));
                w.bool(5, get_bool(x, "wrapped"));
                self.extensions(w, 6, x);
            });
        }
        self.external_docs(w, 29, m);
        self.opt_any(w, 30, m.get("example"));
        self.extensions(w, 31, m);
    }
}

// ---- YAML text of `Any` values ----

/// Renders a JSON value as block-style YAML, the way gnostic writes `Any.yaml` (go-yaml v3
/// with styles cleared): mappings as `key: value` lines, sequences as `- item` lines, nested
/// collections indented by four, empty collections as `{}` / `[]`, strings plain where that
/// reads back as the same string in YAML 1.1 and 1.2, double-quoted otherwise.
pub(crate) fn yaml(v: &Value, conv: &Conv<'_>) -> String {
    let mut out = String::new();
    block(&mut out, v, 0, conv);
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Writes `v` as a block node whose lines start at column `indent`.
fn block(out: &mut String, v: &Value, indent: usize, conv: &Conv<'_>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                pad(out, indent);
                scalar_string(out, key);
                out.push(':');
                match child {
                    Value::Object(m) if !m.is_empty() => {
                        out.push('\n');
                        block(out, child, indent + 4, conv);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push('\n');
                        block(out, child, indent + 4, conv);
                    }
                    Value::String(s) if key == "$ref" => {
                        out.push(' ');
                        scalar_string(out, &conv.rewrite(s));
                        out.push('\n');
                    }
                    _ => {
                        out.push(' ');
                        scalar(out, child);
                        out.push('\n');
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                // The item as a block two columns in, then its first indentation becomes the
                // dash.
                let start = out.len();
                block(out, item, indent + 2, conv);
                out.replace_range(start + indent..start + indent + 2, "- ");
            }
        }
        _ => {
            pad(out, indent);
            scalar(out, v);
            out.push('\n');
        }
    }
}

fn scalar(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                out.push_str(&yaml_float(&n.to_string()));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => scalar_string(out, s),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// A float in a form both YAML 1.1 (which wants a dot and a signed exponent) and 1.2 read
/// as a float: `1e100` → `1.0e+100`.
fn yaml_float(text: &str) -> String {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (text, None),
    };
    let mut s = mantissa.to_owned();
    if !s.contains('.') && s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        s.push_str(".0");
    }
    if let Some(e) = exponent {
        s.push('e');
        if !e.starts_with(['-', '+']) {
            s.push('+');
        }
        s.push_str(e);
    }
    s
}

/// Whether `s` can be written as a plain scalar and read back as the same string by YAML
/// 1.1 and 1.2 parsers: starts with a letter, `/` or `_`, uses only a conservative set of
/// characters, and is not one of the words that resolve to booleans or null.
fn plain_ok(s: &str) -> bool {
    let bytes = s.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || *first == b'/' || *first == b'_') || *last == b' ' {
        return false;
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b" -_./,()".contains(b))
    {
        return false;
    }
    !matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "true" | "false" | "on" | "off" | "null"
    )
}

fn scalar_string(out: &mut String, s: &str) {
    if plain_ok(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // YAML's printable set; everything else is escaped.
            ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'.. => {
                // Line and paragraph separators are line breaks to YAML 1.1, the byte order
                // mark is not allowed inside a document.
                if matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') {
                    out.push_str(&format!("\\u{:04x}", u32::from(c)));
                } else {
                    out.push(c);
                }
            }
            c if u32::from(c) <= 0xffff => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn y(v: Value) -> String {
        yaml(&v, &Conv::default())
    }

    #[test]
    fn yaml_text() {
        assert_eq!(
            y(json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])),
            "- group: apps\n  kind: Deployment\n  version: v1\n"
        );
        assert_eq!(
            y(json!({"group": "", "kind": "Pod", "version": "v1"})),
            "group: \"\"\nkind: Pod\nversion: v1\n"
        );
        assert_eq!(y(json!("merge,retainKeys")), "merge,retainKeys\n");
        assert_eq!(y(json!(["name", "protocol"])), "- name\n- protocol\n");
        assert_eq!(y(json!(true)), "true\n");
        assert_eq!(y(json!("true")), "\"true\"\n");
        assert_eq!(y(json!("No")), "\"No\"\n");
        assert_eq!(y(json!("1.5")), "\"1.5\"\n");
        assert_eq!(y(json!("a: b #c\n\"\u{7}")), "\"a: b #c\\n\\\"\\u0007\"\n");
        assert_eq!(y(json!(3)), "3\n");
        assert_eq!(y(json!(1e100)), "1.0e+100\n");
        assert_eq!(y(json!(0.5)), "0.5\n");
        assert_eq!(y(json!({})), "{}\n");
        assert_eq!(y(json!({"a": [], "b": null})), "a: []\nb: null\n");
        assert_eq!(
            y(json!({"a": {"b": [1, {"c": [2, 3]}]}, "d": [[4, 5], 6]})),
            "a:\n    b:\n        - 1\n        - c:\n              - 2\n              - 3\nd:\n    - - 4\n      - 5\n    - 6\n"
        );
    }

    /// Encodes one message with `write` and decodes it as `M`.
    fn encode<M: Message + Default>(write: impl FnOnce(&mut W)) -> M {
        let mut w = W { buf: Vec::new() };
        write(&mut w);
        M::decode(w.buf.as_slice()).expect("decodes")
    }

    #[test]
    fn parameters_and_schemas() {
        let conv = Conv {
            ref_from: "#/components/schemas/",
            ref_to: "#/definitions/",
        };
        let json = json!({"in": "query", "name": "limit", "type": "integer", "uniqueItems": true});
        let p: Parameter = encode(|w| conv.parameter(w, json.as_object().unwrap()));
        let Some(parameter::Oneof::NonBodyParameter(NonBodyParameter {
            oneof: Some(non_body_parameter::Oneof::QueryParameterSubSchema(q)),
        })) = p.oneof
        else {
            panic!("{p:?}");
        };
        assert_eq!((q.name.as_str(), q.r#type.as_str()), ("limit", "integer"));
        assert!(q.unique_items);

        let json =
            json!({"in": "path", "name": "name", "type": "string", "required": true, "x-a": 1});
        let p: Parameter = encode(|w| conv.parameter(w, json.as_object().unwrap()));
        let Some(parameter::Oneof::NonBodyParameter(NonBodyParameter {
            oneof: Some(non_body_parameter::Oneof::PathParameterSubSchema(q)),
        })) = p.oneof
        else {
            panic!("{p:?}");
        };
        assert!(q.required);
        assert_eq!(q.vendor_extension[0].name, "x-a");

        let json = json!({
            "type": "object",
            "additionalProperties": {"$ref": "#/components/schemas/Q"},
            "properties": {},
            "oneOf": [{"type": "string"}],
            "maxLength": 300,
            "minimum": -1.5,
            "enum": ["a", 1],
        });
        let s: Schema = encode(|w| conv.schema(w, json.as_object().unwrap()));
        assert_eq!(s.r#type.as_ref().unwrap().value, ["object"]);
        assert_eq!(s.properties, Some(Properties::default()));
        assert_eq!((s.max_length, s.minimum), (300, -1.5));
        let yaml: Vec<_> = s.r#enum.iter().map(|a| a.yaml.as_str()).collect();
        assert_eq!(yaml, ["a\n", "1\n"]);
        let Some(additional_properties_item::Oneof::Schema(a)) =
            s.additional_properties.and_then(|a| a.oneof)
        else {
            panic!("schema expected");
        };
        assert_eq!(a.xref, "#/definitions/Q");

        let json = json!({"additionalProperties": false});
        let s: Schema = encode(|w| conv.schema(w, json.as_object().unwrap()));
        assert_eq!(
            s.additional_properties.and_then(|a| a.oneof),
            Some(additional_properties_item::Oneof::Boolean(false))
        );
    }
}

/// Decodes the messages back to JSON (vendor extensions and other `Any`s as
/// `{"$yaml": text}`), to check the encoding against the JSON document it came from.
#[cfg(test)]
mod roundtrip {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::{Catalog, Documents};

    /// Collects non-default fields into a JSON object.
    #[derive(Default)]
    struct Obj(Map<String, Value>);

    impl Obj {
        fn s(mut self, k: &str, v: &str) -> Self {
            if !v.is_empty() {
                self.0.insert(k.into(), v.into());
            }
            self
        }
        fn b(mut self, k: &str, v: bool) -> Self {
            if v {
                self.0.insert(k.into(), v.into());
            }
            self
        }
        fn f(mut self, k: &str, v: f64) -> Self {
            if v != 0.0 {
                self.0.insert(k.into(), json!(v));
            }
            self
        }
        fn i(mut self, k: &str, v: i64) -> Self {
            if v != 0 {
                self.0.insert(k.into(), v.into());
            }
            self
        }
        fn v(mut self, k: &str, v: Option<Value>) -> Self {
            if let Some(v) = v {
                self.0.insert(k.into(), v);
            }
            self
        }
        fn list(mut self, k: &str, v: Vec<Value>) -> Self {
            if !v.is_empty() {
                self.0.insert(k.into(), v.into());
            }
            self
        }
        fn strs(self, k: &str, v: &[String]) -> Self {
            self.list(k, v.iter().map(|s| Value::from(s.as_str())).collect())
        }
        fn ext(mut self, e: &[NamedAny]) -> Self {
            for a in e {
                self.0.insert(a.name.clone(), any(a.value.as_ref()));
            }
            self
        }
        fn done(self) -> Value {
            Value::Object(self.0)
        }
    }

    fn any(a: Option<&Any>) -> Value {
        json!({ "$yaml": a.map(|a| a.yaml.as_str()).unwrap_or_default() })
    }

    fn primitive(o: Obj, x: &PrimitivesItems) -> Obj {
        o.s("type", &x.r#type)
            .s("format", &x.format)
            .v(
                "items",
                x.items
                    .as_deref()
                    .map(|i| primitive(Obj::default(), i).done()),
            )
            .s("collectionFormat", &x.collection_format)
            .v("default", x.default.as_ref().map(|d| any(Some(d))))
            .f("maximum", x.maximum)
            .b("exclusiveMaximum", x.exclusive_maximum)
            .f("minimum", x.minimum)
            .b("exclusiveMinimum", x.exclusive_minimum)
            .i("maxLength", x.max_length)
            .i("minLength", x.min_length)
            .s("pattern", &x.pattern)
            .i("maxItems", x.max_items)
            .i("minItems", x.min_items)
            .b("uniqueItems", x.unique_items)
            .list("enum", x.r#enum.iter().map(|e| any(Some(e))).collect())
            .f("multipleOf", x.multiple_of)
            .ext(&x.vendor_extension)
    }

    fn schema(x: &Schema) -> Value {
        Obj::default()
            .s("$ref", &x.xref)
            .s("format", &x.format)
            .s("title", &x.title)
            .s("description", &x.description)
            .v("default", x.default.as_ref().map(|d| any(Some(d))))
            .f("multipleOf", x.multiple_of)
            .f("maximum", x.maximum)
            .b("exclusiveMaximum", x.exclusive_maximum)
            .f("minimum", x.minimum)
            .b("exclusiveMinimum", x.exclusive_minimum)
            .i("maxLength", x.max_length)
            .i("minLength", x.min_length)
            .s("pattern", &x.pattern)
            .i("maxItems", x.max_items)
            .i("minItems", x.min_items)
            .b("uniqueItems", x.unique_items)
            .i("maxProperties", x.max_properties)
            .i("minProperties", x.min_properties)
            .strs("required", &x.required)
            .list("enum", x.r#enum.iter().map(|e| any(Some(e))).collect())
            .v(
                "additionalProperties",
                x.additional_properties
                    .as_ref()
                    .and_then(|a| a.oneof.as_ref())
                    .map(|a| match a {
                        additional_properties_item::Oneof::Schema(s) => schema(s),
                        additional_properties_item::Oneof::Boolean(b) => (*b).into(),
                    }),
            )
            .v(
                "type",
                x.r#type.as_ref().map(|t| match t.value.as_slice() {
                    [one] => one.as_str().into(),
                    many => json!(many),
                }),
            )
            .v(
                "items",
                x.items.as_ref().map(|i| match i.schema.as_slice() {
                    [one] => schema(one),
                    many => many.iter().map(schema).collect(),
                }),
            )
            .list("allOf", x.all_of.iter().map(schema).collect())
            .v(
                "properties",
                x.properties.as_ref().map(|p| {
                    Value::Object(
                        p.additional_properties
                            .iter()
                            .map(|n| (n.name.clone(), n.value.as_ref().map_or(json!(null), schema)))
                            .collect(),
                    )
                }),
            )
            .s("discriminator", &x.discriminator)
            .b("readOnly", x.read_only)
            .v("example", x.example.as_ref().map(|d| any(Some(d))))
            .ext(&x.vendor_extension)
            .done()
    }

    fn parameter(p: &ParametersItem) -> Value {
        use non_body_parameter::Oneof as Sub;
        match p.oneof.as_ref().expect("parameter") {
            parameters_item::Oneof::JsonReference(r) => Obj::default()
                .s("$ref", &r.xref)
                .s("description", &r.description)
                .done(),
            parameters_item::Oneof::Parameter(p) => match p.oneof.as_ref().expect("case") {
                parameter::Oneof::BodyParameter(b) => Obj::default()
                    .s("description", &b.description)
                    .s("name", &b.name)
                    .s("in", &b.r#in)
                    .b("required", b.required)
                    .v("schema", b.schema.as_ref().map(schema))
                    .ext(&b.vendor_extension)
                    .done(),
                parameter::Oneof::NonBodyParameter(n) => {
                    // The shared fields, via a PrimitivesItems with the same values.
                    macro_rules! common {
                        ($x:ident) => {{
                            let p = PrimitivesItems {
                                r#type: $x.r#type.clone(),
                                format: $x.format.clone(),
                                items: $x.items.clone(),
                                collection_format: $x.collection_format.clone(),
                                default: $x.default.clone(),
                                maximum: $x.maximum,
                                exclusive_maximum: $x.exclusive_maximum,
                                minimum: $x.minimum,
                                exclusive_minimum: $x.exclusive_minimum,
                                max_length: $x.max_length,
                                min_length: $x.min_length,
                                pattern: $x.pattern.clone(),
                                max_items: $x.max_items,
                                min_items: $x.min_items,
                                unique_items: $x.unique_items,
                                r#enum: $x.r#enum.clone(),
                                multiple_of: $x.multiple_of,
                                vendor_extension: $x.vendor_extension.clone(),
                            };
                            let o = Obj::default()
                                .b("required", $x.required)
                                .s("in", &$x.r#in)
                                .s("description", &$x.description)
                                .s("name", &$x.name);
                            primitive(o, &p)
                        }};
                    }
                    match n.oneof.as_ref().expect("sub-schema") {
                        Sub::QueryParameterSubSchema(q) => {
                            common!(q).b("allowEmptyValue", q.allow_empty_value).done()
                        }
                        Sub::PathParameterSubSchema(q) => {
                            assert_eq!(q.r#in, "path");
                            common!(q).done()
                        }
                        Sub::HeaderParameterSubSchema(q) => common!(q).done(),
                        Sub::FormDataParameterSubSchema(q) => common!(q).done(),
                    }
                }
            },
        }
    }

    fn operation(o: &Operation) -> Value {
        let responses = o.responses.as_ref().map(|r| {
            let mut m = Map::new();
            for code in &r.response_code {
                let v = match code.value.as_ref().and_then(|v| v.oneof.as_ref()) {
                    Some(response_value::Oneof::Response(r)) => Obj::default()
                        .s("description", &r.description)
                        .v(
                            "schema",
                            r.schema
                                .as_ref()
                                .and_then(|s| s.oneof.as_ref())
                                .map(|s| match s {
                                    schema_item::Oneof::Schema(s) => schema(s),
                                    schema_item::Oneof::FileSchema(_) => json!("file"),
                                }),
                        )
                        .ext(&r.vendor_extension)
                        .done(),
                    Some(response_value::Oneof::JsonReference(r)) => json!({"$ref": r.xref}),
                    None => json!(null),
                };
                m.insert(code.name.clone(), v);
            }
            Value::Object(m)
        });
        Obj::default()
            .strs("tags", &o.tags)
            .s("summary", &o.summary)
            .s("description", &o.description)
            .s("operationId", &o.operation_id)
            .strs("produces", &o.produces)
            .strs("consumes", &o.consumes)
            .list("parameters", o.parameters.iter().map(parameter).collect())
            .v("responses", responses)
            .strs("schemes", &o.schemes)
            .b("deprecated", o.deprecated)
            .ext(&o.vendor_extension)
            .done()
    }

    fn document(d: &Document) -> Value {
        let info = d.info.as_ref().map(|i| {
            Obj::default()
                .s("title", &i.title)
                .s("version", &i.version)
                .ext(&i.vendor_extension)
                .done()
        });
        let paths = d.paths.as_ref().map(|p| {
            let mut m = Map::new();
            for item in &p.path {
                let i = item.value.as_ref().expect("path item");
                let o = Obj::default()
                    .s("$ref", &i.xref)
                    .v("get", i.get.as_ref().map(operation))
                    .v("put", i.put.as_ref().map(operation))
                    .v("post", i.post.as_ref().map(operation))
                    .v("delete", i.delete.as_ref().map(operation))
                    .v("options", i.options.as_ref().map(operation))
                    .v("head", i.head.as_ref().map(operation))
                    .v("patch", i.patch.as_ref().map(operation))
                    .list("parameters", i.parameters.iter().map(parameter).collect())
                    .ext(&i.vendor_extension);
                m.insert(item.name.clone(), o.done());
            }
            Value::Object(m)
        });
        let definitions = d.definitions.as_ref().map(|defs| {
            Value::Object(
                defs.additional_properties
                    .iter()
                    .map(|n| (n.name.clone(), schema(n.value.as_ref().expect("schema"))))
                    .collect(),
            )
        });
        let security = d
            .security
            .iter()
            .map(|r| {
                Value::Object(
                    r.additional_properties
                        .iter()
                        .map(|n| {
                            let scopes = n.value.as_ref().map(|v| v.value.clone());
                            (n.name.clone(), json!(scopes.unwrap_or_default()))
                        })
                        .collect(),
                )
            })
            .collect();
        let security_definitions = d.security_definitions.as_ref().map(|s| {
            Value::Object(
                s.additional_properties
                    .iter()
                    .map(|n| {
                        let v = match n.value.as_ref().and_then(|v| v.oneof.as_ref()) {
                            Some(security_definitions_item::Oneof::ApiKeySecurity(a)) => {
                                Obj::default()
                                    .s("type", &a.r#type)
                                    .s("name", &a.name)
                                    .s("in", &a.r#in)
                                    .s("description", &a.description)
                                    .done()
                            }
                            other => panic!("unexpected security definition {other:?}"),
                        };
                        (n.name.clone(), v)
                    })
                    .collect(),
            )
        });
        Obj::default()
            .v("definitions", definitions)
            .v("info", info)
            .v("paths", paths)
            .list("security", security)
            .v("securityDefinitions", security_definitions)
            .s("swagger", &d.swagger)
            .done()
    }

    /// The JSON document as the decoded protobuf must read: `Any` positions as
    /// `{"$yaml": ..}`, keys outside Swagger 2.0 schemas dropped.
    fn expected(v: &Value, conv: &Conv<'_>, in_schema: bool) -> Value {
        const ANY_KEYS: &[&str] = &["default", "example"];
        const SCHEMA_KEYS: &[&str] = &[
            "$ref",
            "additionalProperties",
            "allOf",
            "default",
            "description",
            "discriminator",
            "enum",
            "example",
            "exclusiveMaximum",
            "exclusiveMinimum",
            "externalDocs",
            "format",
            "items",
            "maxItems",
            "maxLength",
            "maxProperties",
            "maximum",
            "minItems",
            "minLength",
            "minProperties",
            "minimum",
            "multipleOf",
            "pattern",
            "properties",
            "readOnly",
            "required",
            "title",
            "type",
            "uniqueItems",
            "xml",
        ];
        let wrap = |v: &Value| json!({ "$yaml": yaml(v, conv) });
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| {
                        !in_schema || k.starts_with("x-") || SCHEMA_KEYS.contains(&k.as_str())
                    })
                    .map(|(k, c)| {
                        let c = if k.starts_with("x-") || ANY_KEYS.contains(&k.as_str()) {
                            wrap(c)
                        } else if ["maximum", "minimum", "multipleOf"].contains(&k.as_str()) {
                            // `double` fields.
                            json!(c.as_f64())
                        } else if k == "enum" {
                            c.as_array()
                                .map(|a| a.iter().map(wrap).collect())
                                .unwrap_or_default()
                        } else if k == "properties" && in_schema {
                            // Property names are free: each value is a schema.
                            Value::Object(
                                c.as_object()
                                    .into_iter()
                                    .flatten()
                                    .map(|(n, s)| (n.clone(), expected(s, conv, true)))
                                    .collect(),
                            )
                        } else {
                            let child_is_schema =
                                in_schema || matches!(k.as_str(), "schema" | "definitions_entry");
                            expected(c, conv, child_is_schema)
                        };
                        (k.clone(), c)
                    })
                    .collect(),
            ),
            Value::Array(items) => items.iter().map(|i| expected(i, conv, in_schema)).collect(),
            other => other.clone(),
        }
    }

    #[test]
    fn protobuf_reads_back_as_the_json_document() {
        let mut catalog = Catalog::builtin();
        // A custom resource whose schema uses what structural schemas allow.
        let kind = crate::Kind {
            group: "stable.example.com".into(),
            version: "v1".into(),
            kind: "CronTab".into(),
            plural: "crontabs".into(),
            namespaced: true,
            verbs: vec!["get".into(), "patch".into()],
            subresources: vec![],
        };
        catalog.add_custom(
            &kind,
            json!({
                "type": "object",
                "x-kubernetes-validations": [{"rule": "self.spec.n >= 0", "message": "n: \"neg\""}],
                "properties": {
                    "spec": {
                        "type": "object",
                        "required": ["n"],
                        "properties": {
                            "n": {"type": "integer", "format": "int64", "minimum": -3, "maximum": 1e10, "default": 1, "nullable": true},
                            "mode": {"type": "string", "enum": ["On", "Off", "3"], "default": "On", "pattern": "^[A-Z]"},
                            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                            "either": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": true},
                            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5, "uniqueItems": true, "x-kubernetes-list-type": "set"},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 10},
                        },
                    },
                },
            }),
        );
        let mut kinds = catalog.builtin_kinds().to_vec();
        kinds.push(kind);
        let docs = Documents::build(&catalog, &kinds);
        let decoded = Document::decode(docs.v2_protobuf()).expect("decodes");
        // Byte for byte what prost writes for the same messages.
        assert!(
            decoded.encode_to_vec() == docs.v2_protobuf(),
            "canonical encoding"
        );
        let actual = document(&decoded);

        let json: Value = serde_json::from_slice(docs.v2()).expect("JSON");
        let conv = Conv::default();
        let mut want = expected(&json, &conv, false);
        // Definitions are schemas.
        let defs = json["definitions"].as_object().expect("definitions");
        want["definitions"] = Value::Object(
            defs.iter()
                .map(|(n, s)| (n.clone(), expected(s, &conv, true)))
                .collect(),
        );
        for (name, def) in want["definitions"].as_object().expect("defs") {
            assert_eq!(
                Some(def),
                actual["definitions"].get(name),
                "definition {name}"
            );
        }
        for (path, item) in want["paths"].as_object().expect("paths") {
            assert_eq!(Some(item), actual["paths"].get(path), "path {path}");
        }
        assert_eq!(want, actual);
    }
}
