//! What makes the generated types compare, default, name themselves and explain a refusal: the
//! derives and patches handed to typify, the validation messages in plain words, and `as_str`
//! on the enumerations.
//!
//! Everything here is computed from the spec or from the generated code, so that a new schema,
//! field or parameter gets the same treatment without an edit here. Each rewrite checks that it
//! found what it rewrites: when progenitor or typify change what they emit, generation fails
//! with a sentence instead of leaving a message in the old words.

use std::collections::BTreeMap;

use openapiv3::{OpenAPI, ReferenceOr, SchemaKind};
use progenitor::{GenerationSettings, TypePatch};
use quote::ToTokens;
use quote::{format_ident, quote};

use super::surface::{Shape, Surface, TypeDef};

/// The derives every generated type gets, and `Default` for the objects whose fields are all
/// optional, so that `Condition { value: Some(..), ..Default::default() }` builds one.
pub fn configure(settings: &mut GenerationSettings, spec: &OpenAPI) {
    settings.with_derive("PartialEq");
    // `Eq` does not hold for a float; nothing in the spec is one today, and a spec that adds
    // one still builds, with `PartialEq` alone.
    if !has_float(spec) {
        settings.with_derive("Eq");
    }
    let mut default = TypePatch::default();
    default.with_derive("Default");
    for name in all_optional(spec) {
        settings.with_patch(name, &default);
    }
}

/// The object schemas with no required property and no default value: their `Default` is the
/// value with every field left out, which is what the server reads from `{}`.
pub fn all_optional(spec: &OpenAPI) -> Vec<String> {
    let Some(components) = &spec.components else {
        return Vec::new();
    };
    components
        .schemas
        .iter()
        .filter_map(|(name, schema)| {
            let ReferenceOr::Item(schema) = schema else {
                return None;
            };
            let SchemaKind::Type(openapiv3::Type::Object(object)) = &schema.schema_kind else {
                return None;
            };
            let own_default = schema.schema_data.default.is_some()
                || object.properties.values().any(|p| match p {
                    ReferenceOr::Item(p) => p.schema_data.default.is_some(),
                    ReferenceOr::Reference { .. } => false,
                });
            (object.required.is_empty() && !own_default).then(|| name.clone())
        })
        .collect()
}

/// Whether any schema of the spec is a `number`, which typify makes an `f64`.
fn has_float(spec: &OpenAPI) -> bool {
    fn walk(value: &serde_yaml::Value) -> bool {
        match value {
            serde_yaml::Value::Mapping(map) => map.iter().any(|(k, v)| {
                (k.as_str() == Some("type") && v.as_str() == Some("number")) || walk(v)
            }),
            serde_yaml::Value::Sequence(items) => items.iter().any(walk),
            serde_yaml::Value::Tagged(tagged) => walk(&tagged.value),
            _ => false,
        }
    }
    serde_yaml::to_value(spec).is_ok_and(|v| walk(&v))
}

/// The validation messages of the generated builders, in the words of
/// `comm100::InvalidSegment`: `field: reason`, the field as the JSON names it, and the value
/// where it is no secret (`name: must not be blank`, `id: "abc" is not a UUID`). `text` is the
/// generated code as tokens printed by `proc_macro2`; `spec` gives the parameters' names.
pub fn plain_messages(text: &str, spec: &OpenAPI) -> Result<String, String> {
    let surface = Surface::build(&[], text)?;
    let fields = field_names(&surface)?;
    let params = param_names(spec);
    let wire = |names: &BTreeMap<String, String>, rust: &str| {
        names.get(rust).cloned().unwrap_or_else(|| rust.to_owned())
    };
    // typify's builders: a setter given a value its field cannot hold, a field never set.
    let text = replace_named(
        text,
        "\"error converting supplied value for ",
        ": {e}\"",
        |name| format!("\"{}: {{e}}\"", wire(&fields, name)),
    );
    let text = replace_named(&text, "\"no value supplied for ", "\"", |name| {
        format!("\"{}: is required\"", wire(&fields, name))
    });
    // progenitor's operation builders: a parameter never set, a parameter that does not convert.
    let text = replace_named(&text, "Err (\"", " was not initialized\"", |name| {
        format!("Err (\"{}: is required\"", wire(&params, name))
    });
    let text = conversions(&text, &params)?;
    for phrase in [
        "error converting supplied value for ",
        "no value supplied for ",
        " was not initialized\"",
        "\"conversion to `",
    ] {
        if text.contains(phrase) {
            return Err(format!(
                "the generated code still says `{phrase}` somewhere `codegen/types.rs` does not rewrite; teach `plain_messages` its new shape"
            ));
        }
    }
    Ok(text)
}

/// Each field's name on the wire, by its Rust name, across every generated struct.
fn field_names(surface: &Surface) -> Result<BTreeMap<String, String>, String> {
    let mut names = BTreeMap::new();
    for def in &surface.types {
        let Shape::Struct(fields) = &def.shape else {
            continue;
        };
        for f in fields {
            let wire = f.wire.clone().unwrap_or_else(|| f.name.clone());
            // The builders' messages name a field by its Rust name alone, so one Rust name must
            // mean one JSON name.
            match names.insert(f.name.clone(), wire.clone()) {
                Some(other) if other != wire => {
                    return Err(format!(
                        "the Rust field `{}` is `{other}` in one type and `{wire}` in another; the builders' messages cannot tell which",
                        f.name
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(names)
}

/// Each parameter's name in the spec, by the name progenitor gives its setter.
fn param_names(spec: &OpenAPI) -> BTreeMap<String, String> {
    parameters(spec)
        .map(|p| {
            let name = &p.parameter_data_ref().name;
            (snake(name), name.clone())
        })
        .collect()
}

/// Every parameter the spec declares inline, on a path or on an operation.
pub fn parameters(spec: &OpenAPI) -> impl Iterator<Item = &openapiv3::Parameter> {
    spec.paths
        .paths
        .values()
        .filter_map(|item| match item {
            ReferenceOr::Item(item) => Some(item),
            ReferenceOr::Reference { .. } => None,
        })
        .flat_map(|item| {
            item.parameters
                .iter()
                .chain(item.iter().flat_map(|(_, op)| op.parameters.iter()))
        })
        .filter_map(|p| match p {
            ReferenceOr::Item(p) => Some(p),
            ReferenceOr::Reference { .. } => None,
        })
}

/// `siteId` → `site_id`, as progenitor names a setter.
fn snake(name: &str) -> String {
    let mut out = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_uppercase() && previous_lower {
            out.push('_');
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        match c {
            '-' | '.' | ' ' => out.push('_'),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Replaces each `prefix NAME suffix`, where NAME is a Rust identifier, with `to(NAME)`.
fn replace_named(text: &str, prefix: &str, suffix: &str, to: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let after = &rest[at + prefix.len()..];
        let len = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let (name, tail) = after.split_at(len);
        if name.is_empty() || !tail.starts_with(suffix) {
            out.push_str(&rest[..at + prefix.len()]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..at]);
        out.push_str(&to(name));
        rest = &tail[suffix.len()..];
    }
    out.push_str(rest);
    out
}

/// progenitor's `conversion to `T` for x failed` messages. A body's conversion names the field
/// itself, so its message is kept as it comes. A parameter's setter has no bound to show the
/// value with: it gains `V: Debug` (every type that converts into a parameter's has it) and
/// calls `crate::segments::param`, which names the parameter and the value.
fn conversions(text: &str, params: &BTreeMap<String, String>) -> Result<String, String> {
    const OPEN: &str = "\"conversion to `";
    const CLOSE: &str = " . to_string ())";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        let unknown = || {
            format!(
                "progenitor emits a conversion message this code does not know: {}",
                &rest[at..rest.len().min(at + 80)]
            )
        };
        let body = &rest[at + OPEN.len()..];
        let end = body.find('"').ok_or_else(unknown)?;
        let (ty, tail) = body[..end].split_once("` for ").ok_or_else(unknown)?;
        let after = &body[end + 1..];
        if tail.ends_with(" failed: {}") {
            out.push_str(&rest[..at]);
            out.push_str("\"{}\"");
            rest = after;
            continue;
        }
        let name = tail.strip_suffix(" failed").ok_or_else(unknown)?;
        let head = format!(
            "pub fn {name} < V > (mut self , value : V ,) -> Self where V : std :: convert :: TryInto < {ty} > , {{ self . {name} = value . try_into ()"
        );
        let start = rest[..at].rfind(&head).ok_or_else(unknown)?;
        let optional = match &rest[start + head.len()..at] {
            " . map_err (| _ | " => "",
            " . map (Some) . map_err (| _ | " => " . map (Some)",
            _ => return Err(unknown()),
        };
        let after = after.strip_prefix(CLOSE).ok_or_else(unknown)?;
        let field = params.get(name).map_or(name, String::as_str);
        let what = match ty {
            ":: uuid :: Uuid" => "a UUID".to_owned(),
            ty => format!("a valid `{}`", ty.replace(' ', "")),
        };
        out.push_str(&rest[..start]);
        if ty.contains("SensitiveString") {
            // A secret is not shown, not even the one that failed.
            let message = format!("{field}: is not {what}");
            out.push_str(&format!(
                "{head}{optional} . map_err (| _ | {message:?} . to_string ())"
            ));
        } else {
            out.push_str(&format!(
                "pub fn {name} < V > (mut self , value : V ,) -> Self where V : std :: convert :: TryInto < {ty} > + std :: fmt :: Debug , {{ self . {name} = crate :: segments :: param (value , {field:?} , {what:?}){optional}"
            ));
        }
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks what typify was asked for, and adds what it has no setting for: `as_str` on every
/// enumeration, and on the open ones (a known enumeration or any other string) `FromStr` and
/// comparison with a known value, so that `operator == KnownConditionOperator::Contains` needs
/// no `matches!`.
pub fn finish(file: &mut syn::File, spec: &OpenAPI) -> Result<(), String> {
    let surface = Surface::build(&[], &file.to_token_stream().to_string())?;
    for name in all_optional(spec) {
        // A patch for a name typify does not use is ignored without a word.
        let def = surface.types.iter().find(|d| d.name == name);
        if !def.is_some_and(|d| d.traits.contains("Default")) {
            return Err(format!(
                "the schema `{name}` has only optional fields, but its type does not implement `Default`; typify may have renamed it"
            ));
        }
    }
    let types = file
        .items
        .iter_mut()
        .find_map(|item| match item {
            syn::Item::Mod(m) if m.ident == "types" => m.content.as_mut(),
            _ => None,
        })
        .ok_or("the generated code has no `types` module")?;
    for def in &surface.types {
        let Some(items) = enum_items(def, &surface) else {
            continue;
        };
        // Right after the type, where a reader of the generated code looks for it.
        let at = types
            .1
            .iter()
            .position(|item| matches!(item, syn::Item::Enum(e) if e.ident == def.name))
            .map_or(types.1.len(), |i| i + 1);
        for (i, item) in items.into_iter().enumerate() {
            let item = syn::parse2(item).map_err(|e| e.to_string())?;
            types.1.insert(at + i, item);
        }
    }
    Ok(())
}

/// The items added for one type: none when it is not an enumeration of strings.
fn enum_items(def: &TypeDef, surface: &Surface) -> Option<Vec<proc_macro2::TokenStream>> {
    let Shape::Enum { untagged, variants } = &def.shape else {
        return None;
    };
    let name = format_ident!("{}", def.name);
    if !untagged && variants.iter().all(|v| v.fields.is_none()) {
        let arms = variants.iter().map(|v| {
            let variant = format_ident!("{}", v.name);
            let wire = v.wire.as_deref().unwrap_or(&v.name);
            quote! { Self::#variant => #wire }
        });
        return Some(vec![quote! {
            impl #name {
                /// The value as the JSON writes it.
                pub fn as_str(&self) -> &'static str {
                    match self {
                        #(#arms,)*
                    }
                }
            }
        }]);
    }
    // An open enumeration: each variant holds a closed enumeration or a string.
    let held: Vec<(&str, &str, bool)> = variants
        .iter()
        .map(|v| match v.fields.as_deref() {
            Some([ty]) => {
                let closed = surface.types.iter().find(|d| d.name == *ty)?;
                match &closed.shape {
                    Shape::Enum {
                        untagged: false,
                        variants,
                    } if variants.iter().all(|v| v.fields.is_none()) => {
                        Some((v.name.as_str(), ty.as_str(), true))
                    }
                    Shape::Tuple(inner) if inner.as_slice() == ["String"] => {
                        Some((v.name.as_str(), ty.as_str(), false))
                    }
                    _ => None,
                }
            }
            _ => None,
        })
        .collect::<Option<_>>()?;
    if !untagged || held.is_empty() {
        return None;
    }
    let arms = held.iter().map(|(variant, _, _)| {
        let variant = format_ident!("{}", variant);
        quote! { Self::#variant(v) => v.as_str() }
    });
    let mut items = vec![quote! {
        impl #name {
            /// The value as the JSON writes it: a known value's name, or another value as the
            /// server sent it.
            pub fn as_str(&self) -> &str {
                match self {
                    #(#arms,)*
                }
            }
        }
    }];
    // Parsing tries the known values first, then the string variant, as decoding the JSON does;
    // the command line's flags parse with it.
    let known = held
        .iter()
        .filter(|(_, _, closed)| *closed)
        .map(|(variant, ty, _)| {
            let (variant, ty) = (format_ident!("{}", variant), format_ident!("{}", ty));
            quote! {
                if let Ok(v) = value.parse::<#ty>() {
                    return Ok(Self::#variant(v));
                }
            }
        });
    let rest = match held.iter().find(|(_, _, closed)| !*closed) {
        Some((variant, ty, _)) => {
            let (variant, ty) = (format_ident!("{}", variant), format_ident!("{}", ty));
            quote! { #ty::try_from(value.to_string()).map(Self::#variant) }
        }
        None => quote! { Err(format!("{value:?} is not one of the known values").into()) },
    };
    items.push(quote! {
        impl ::std::str::FromStr for #name {
            type Err = self::error::ConversionError;
            fn from_str(value: &str) -> ::std::result::Result<Self, self::error::ConversionError> {
                #(#known)*
                #rest
            }
        }
    });
    for (variant, ty, _) in held.iter().filter(|(_, _, closed)| *closed) {
        let variant = format_ident!("{}", variant);
        let ty = format_ident!("{}", ty);
        items.push(quote! {
            impl ::std::cmp::PartialEq<#ty> for #name {
                fn eq(&self, other: &#ty) -> bool {
                    matches!(self, Self::#variant(v) if v == other)
                }
            }
        });
        items.push(quote! {
            impl ::std::cmp::PartialEq<#name> for #ty {
                fn eq(&self, other: &#name) -> bool {
                    other == self
                }
            }
        });
    }
    Some(items)
}

/// typify does not enforce `minItems`: each array property of an object schema that has one
/// is checked in the conversion from the type's builder, which every operation body goes
/// through in `send`, so a short list is refused before anything is serialised or sent. The
/// message is `field: reason`, like the other refusals. Returns the rewritten text.
pub fn min_items(text: &str, spec: &OpenAPI) -> Result<String, String> {
    let Some(components) = &spec.components else {
        return Ok(text.to_owned());
    };
    let mut text = text.to_owned();
    for (name, schema) in &components.schemas {
        let ReferenceOr::Item(schema) = schema else {
            continue;
        };
        let SchemaKind::Type(openapiv3::Type::Object(object)) = &schema.schema_kind else {
            continue;
        };
        for (property, items) in &object.properties {
            let ReferenceOr::Item(items) = items else {
                continue;
            };
            let SchemaKind::Type(openapiv3::Type::Array(array)) = &items.schema_kind else {
                continue;
            };
            let Some(least) = array.min_items.filter(|&n| n > 0) else {
                continue;
            };
            let conversion =
                format!("impl :: std :: convert :: TryFrom < {name} > for super :: {name} {{");
            let field = snake(property);
            let take = format!("{field} : value . {field} ?");
            let start = text.find(&conversion).ok_or_else(|| {
                format!(
                    "`{name}.{property}` has minItems, but typify wrote no builder conversion for `{name}` to check it in"
                )
            })?;
            // Within this conversion: up to the next item.
            let end = text[start + conversion.len()..]
                .find("impl ")
                .map_or(text.len(), |i| start + conversion.len() + i);
            let at = text[start..end]
                .find(&take)
                .map(|i| start + i)
                .ok_or_else(|| {
                    format!(
                        "the builder conversion of `{name}` no longer takes `{field}` as `{take}`; teach `min_items` its new shape"
                    )
                })?;
            let checked = format!(
                "{field} : crate :: segments :: min_items (value . {field} ? , {least}usize , {property:?}) ?"
            );
            text.replace_range(at..at + take.len(), &checked);
        }
    }
    Ok(text)
}

/// typify's and progenitor's builders start a required field as an error message, made (and
/// allocated) for every builder, whether the field is then set or not: for a create, two
/// messages made and dropped on every call. They start empty here, which allocates nothing,
/// and `crate::segments::required` words the message where a builder is read: typify's
/// conversion from a builder, and an operation's parameters in `send`.
pub fn unset_without_allocation(text: &str, spec: &OpenAPI) -> Result<String, String> {
    let surface = Surface::build(&[], text)?;
    let fields = field_names(&surface)?;
    let params = param_names(spec);
    const EMPTY: &str = "Err (:: std :: string :: String :: new ())";
    let text = replace_named(text, "Err (\"", ": is required\" . to_string ())", |_| {
        EMPTY.to_owned()
    });
    if !text.contains(EMPTY) || text.contains(": is required\" . to_string ())") {
        return Err(
            "the builders no longer start a required field as `Err(\"x: is required\".to_string())`; teach `unset_without_allocation` their new shape".into(),
        );
    }
    let wire = |names: &BTreeMap<String, String>, rust: &str| {
        names.get(rust).cloned().unwrap_or_else(|| rust.to_owned())
    };
    // typify's conversions from a builder, one field at a time.
    let text = replace_named(&text, "value . ", " ?", |name| {
        format!(
            "crate :: segments :: required (value . {name} , {:?}) ?",
            wire(&fields, name)
        )
    });
    // progenitor's `send`, one parameter at a time.
    let mut text = text;
    for (rust, wire_name) in &params {
        let from = format!("let {rust} = {rust} . map_err (Error :: InvalidRequest) ? ;");
        let to = format!(
            "let {rust} = crate :: segments :: required ({rust} , {wire_name:?}) . map_err (Error :: InvalidRequest) ? ;"
        );
        text = text.replace(&from, &to);
    }
    Ok(text)
}
