//! The Kubernetes message definitions, built from the facts in `data/messages.tsv` (generated
//! by `tools/vendor.py` from the upstream `generated.proto` files): one proto2 file descriptor
//! per package, with the packages whose messages it uses as dependencies.
//!
//! Each line of the table is one field: `<package.Message>\t<field>\t<number>\t<label>\t<type>
//! \t<type name>`, label `optional` or `repeated`, type a protobuf scalar type, `message` (type
//! name: the message's full name) or `map` (type name: `<key type>,<value type>`, the value a
//! scalar type or a message's full name). A line naming only a message declares one without
//! fields. Maps become the repeated `<Field>Entry` messages protobuf defines them as.

use std::collections::{BTreeMap, BTreeSet};

use prost_reflect::DescriptorPool;
use prost_reflect::prost_types::field_descriptor_proto::{Label, Type};
use prost_reflect::prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet, MessageOptions,
};

const MESSAGES: &str = include_str!("../data/messages.tsv");

/// The pool of every message in the table, or what is wrong with the table.
pub(crate) fn build() -> Result<DescriptorPool, String> {
    build_from(MESSAGES)
}

/// One file being assembled: its messages and the packages they refer to.
#[derive(Default)]
struct File {
    messages: Vec<DescriptorProto>,
    dependencies: BTreeSet<String>,
}

fn build_from(table: &str) -> Result<DescriptorPool, String> {
    let mut files: BTreeMap<&str, File> = BTreeMap::new();
    for (index, line) in table.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let problem = |what: &str| format!("messages.tsv line {}: {what}", index + 1);
        let columns: Vec<&str> = line.split('\t').collect();
        let (package, name) = split_name(columns[0]).ok_or_else(|| problem("bad message name"))?;
        let file = files.entry(package).or_default();
        // A message's lines are usually together, so the last message is checked first.
        let position = match file.messages.iter().rposition(|m| m.name() == name) {
            Some(position) => position,
            None => {
                file.messages.push(DescriptorProto {
                    name: Some(name.to_owned()),
                    ..DescriptorProto::default()
                });
                file.messages.len() - 1
            }
        };
        let [_, field, number, label, kind, type_name] = columns[..] else {
            if columns.len() == 1 {
                continue;
            }
            return Err(problem("expected 1 or 6 columns"));
        };
        let number: i32 = number.parse().map_err(|_| problem("bad field number"))?;
        let label = match label {
            "optional" => Label::Optional,
            "repeated" => Label::Repeated,
            _ => return Err(problem("bad label")),
        };
        let mut uses = Vec::new();
        let message = &mut file.messages[position];
        let descriptor = if kind == "map" {
            let (key, value) = type_name
                .split_once(',')
                .ok_or_else(|| problem("bad map types"))?;
            let entry = format!("{}Entry", upper_camel(field));
            let key = plain(1, "key", key).ok_or_else(|| problem("bad map key type"))?;
            let value = match plain(2, "value", value) {
                Some(value) => value,
                None => {
                    uses.push(value);
                    reference(2, "value", Label::Optional, value)
                }
            };
            message.nested_type.push(DescriptorProto {
                name: Some(entry.clone()),
                field: vec![key, value],
                options: Some(MessageOptions {
                    map_entry: Some(true),
                    ..MessageOptions::default()
                }),
                ..DescriptorProto::default()
            });
            reference(
                number,
                field,
                Label::Repeated,
                &format!("{package}.{name}.{entry}"),
            )
        } else if kind == "message" {
            uses.push(type_name);
            reference(number, field, label, type_name)
        } else {
            let mut descriptor = plain(number, field, kind).ok_or_else(|| problem("bad type"))?;
            descriptor.label = Some(label.into());
            descriptor
        };
        message.field.push(descriptor);
        for used in uses {
            let (dependency, _) = split_name(used).ok_or_else(|| problem("bad type name"))?;
            if dependency != package {
                file.dependencies.insert(format!("{dependency}.proto"));
            }
        }
    }
    let file = files
        .into_iter()
        .map(|(package, file)| FileDescriptorProto {
            name: Some(format!("{package}.proto")),
            package: Some(package.to_owned()),
            dependency: file.dependencies.into_iter().collect(),
            message_type: file.messages,
            syntax: Some("proto2".to_owned()),
            ..FileDescriptorProto::default()
        })
        .collect();
    DescriptorPool::from_file_descriptor_set(FileDescriptorSet { file })
        .map_err(|e| format!("messages.tsv: {e}"))
}

/// A full message name's package and message (Kubernetes messages are not nested).
fn split_name(full: &str) -> Option<(&str, &str)> {
    full.rsplit_once('.')
        .filter(|(package, name)| !package.is_empty() && !name.is_empty())
}

/// An optional field of scalar type `kind`, if `kind` names one.
fn plain(number: i32, name: &str, kind: &str) -> Option<FieldDescriptorProto> {
    let kind = match kind {
        "double" => Type::Double,
        "float" => Type::Float,
        "int64" => Type::Int64,
        "uint64" => Type::Uint64,
        "int32" => Type::Int32,
        "fixed64" => Type::Fixed64,
        "fixed32" => Type::Fixed32,
        "bool" => Type::Bool,
        "string" => Type::String,
        "bytes" => Type::Bytes,
        "uint32" => Type::Uint32,
        "sfixed32" => Type::Sfixed32,
        "sfixed64" => Type::Sfixed64,
        "sint32" => Type::Sint32,
        "sint64" => Type::Sint64,
        _ => return None,
    };
    Some(FieldDescriptorProto {
        name: Some(name.to_owned()),
        number: Some(number),
        label: Some(Label::Optional.into()),
        r#type: Some(kind.into()),
        ..FieldDescriptorProto::default()
    })
}

/// A field holding the message named `full` (a full name).
fn reference(number: i32, name: &str, label: Label, full: &str) -> FieldDescriptorProto {
    FieldDescriptorProto {
        name: Some(name.to_owned()),
        number: Some(number),
        label: Some(label.into()),
        r#type: Some(Type::Message.into()),
        type_name: Some(format!(".{full}")),
        ..FieldDescriptorProto::default()
    }
}

/// The message name protobuf gives a map field's entries, less the `Entry` suffix:
/// `match_labels` and `matchLabels` both become `MatchLabels`.
fn upper_camel(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = true;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use prost_reflect::Kind;

    use super::*;

    #[test]
    fn the_table_builds() {
        let pool = build().expect("messages.tsv");
        let config_map = pool
            .get_message_by_name("k8s.io.api.core.v1.ConfigMap")
            .expect("ConfigMap");
        let data = config_map.get_field_by_name("data").expect("data");
        assert!(data.is_map());
        let metadata = config_map.get_field(1).expect("field 1");
        assert_eq!(metadata.name(), "metadata");
        assert!(
            matches!(metadata.kind(), Kind::Message(m) if m.full_name() == "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta")
        );
        // Messages without fields are declared too.
        assert!(
            pool.get_message_by_name("k8s.io.apimachinery.pkg.apis.meta.v1.Patch")
                .is_some()
        );
    }

    #[test]
    fn bad_tables_are_refused() {
        for (table, problem) in [
            (
                "a.B\tx\tone\toptional\tstring\t",
                "line 1: bad field number",
            ),
            ("a.B\tx\t1\trequired\tstring\t", "line 1: bad label"),
            (
                "# header\na.B\tx\t1\toptional\tstrung\t",
                "line 2: bad type",
            ),
            ("a.B\tx\t1\toptional", "line 1: expected 1 or 6 columns"),
            ("B\tx\t1\toptional\tstring\t", "line 1: bad message name"),
            ("a.B\tx\t1\trepeated\tmap\tstring", "line 1: bad map types"),
            ("a.B\tx\t1\toptional\tmessage\tc.D", "messages.tsv: "),
        ] {
            let error = build_from(table).expect_err(table);
            assert!(error.contains(problem), "{table:?}: {error}");
        }
    }

    #[test]
    fn map_entries_are_named_as_protobuf_names_them() {
        let pool = build_from("a.B\tmatch_labels\t1\trepeated\tmap\tstring,a.C\na.C").unwrap();
        let field = pool
            .get_message_by_name("a.B")
            .and_then(|m| m.get_field_by_name("match_labels"))
            .unwrap();
        assert!(field.is_map());
        assert!(
            matches!(field.kind(), Kind::Message(m) if m.full_name() == "a.B.MatchLabelsEntry")
        );
    }
}
