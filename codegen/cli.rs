//! The per-operation commands of the `comm100` command line (`cli/`): progenitor's
//! `Generator::cli` with the settings the client is generated with (`super::settings`), so that
//! a spec edit changes both, and what its 0.15.1 output gets wrong, changed with checked
//! rewrites: flags given with `--json-body` were silently dropped (they are merged into it
//! now), `--json-body-template` was a stub (it prints a body built from the spec),
//! `--json-body -` read a file named `-` (it reads stdin), errors went out through progenitor's
//! `Display` (they become `comm100::ApiError`), and an operation whose request carries a secret
//! would have taken it on the command line (it is no command).

use openapiv3::{OpenAPI, ReferenceOr};
use proc_macro2::TokenStream;
use quote::quote;
use serde_yaml::Value;

use super::CodegenError;

/// The path the generated commands reach the generated client by.
pub const CLIENT_PATH: &str = "::comm100::generated";

/// What progenitor 0.15.1's `Generator::cli` has no setting for, changed in its output (the
/// tokens as `proc_macro2` prints them). Each must be found, or generation fails: a rewrite
/// that no longer applies would otherwise leave the trap it closes open.
const REWRITES: &[(&str, &str, &str)] = &[
    (
        // The client is another crate: its replacement types are named from outside.
        "crate :: generated ::",
        ":: comm100 :: generated ::",
        "the commands no longer name the replacement types by `crate::generated`",
    ),
    (
        // The cli crate reaches `uuid` through comm100, so that both use one version.
        ":: uuid :: Uuid",
        ":: comm100 :: uuid :: Uuid",
        "the commands no longer name `::uuid::Uuid`",
    ),
    (
        ". value_name (\"JSON-FILE\")",
        ". value_name (\"FILE|-\")",
        "`--json-body` no longer has the value name `JSON-FILE`",
    ),
    (
        "\"Path to a file that contains the full json body.\"",
        "\"The JSON body, from a file, or from stdin with `-`. Flags given with it are merged into it: each replaces its field of the body.\"",
        "`--json-body` no longer has its help text `Path to a file that contains the full json body.`",
    ),
    (
        // The stub: nothing read it. `cli/src/op.rs` prints `json_body_template` (below) when
        // it is given, before any credentials are needed. Exclusive: it needs nothing else,
        // and clap then waives the required `--json-body` and path parameters.
        ". action (:: clap :: ArgAction :: SetTrue) . help (\"XXX\")",
        ". action (:: clap :: ArgAction :: SetTrue) . exclusive (true) . help (\"Prints a JSON body to start from, valid as it is, and exits: the required fields and those the description gives an example or a default for.\")",
        "`--json-body-template` is no longer the stub with the help `XXX`",
    ),
    (
        // `-` is stdin, as for `comm100 api --json-body`.
        "std :: fs :: read_to_string (value)",
        "crate :: op :: read_body (value)",
        "the commands no longer read `--json-body` with `std::fs::read_to_string(value)`",
    ),
    (
        // progenitor's `Display` dumps the headers; the crate's own error says the operation,
        // the status, Comm100's code and message in one line, and tells a refusal from an
        // outage for the exit code.
        "self . config . error (& r) ; Err (anyhow :: Error :: new (r))",
        "Err (anyhow :: Error :: new (:: comm100 :: ApiError :: from (r)))",
        "the commands no longer return progenitor's error as `anyhow::Error::new(r)`",
    ),
];

/// Generates the commands from spec text: the same rule checks as the client, progenitor's
/// `Generator::cli`, the rewrites, then formatting. Returns the Rust source `cli/src/op.rs`
/// includes.
pub fn generate(text: &str) -> Result<String, CodegenError> {
    let spec = super::parse(text)?;
    super::check_rules(&spec)?;
    let (commands, hidden) = without_secret_operations(&spec);
    let tokens = super::catch_progenitor(|| {
        let mut generator = progenitor::Generator::new(&super::settings(&commands));
        generator.cli(&commands, CLIENT_PATH)
    })?;
    let text = super::apply_rewrites(tokens.to_string(), REWRITES, "codegen/cli.rs")?;
    let yaml = serde_yaml::to_value(&commands).map_err(|e| CodegenError::Parse(e.to_string()))?;
    let text = closed_flags(text, &yaml);
    let mut file: syn::File =
        syn::parse_str(&text).map_err(|e| CodegenError::Progenitor(e.to_string()))?;
    merge_flags_into_body(&mut file)?;
    file.items
        .push(templates(&commands, &yaml).map_err(CodegenError::Rules)?);
    let reasons = hidden.iter().map(|(id, why)| quote! { (#id, #why) });
    file.items.push(syn::parse_quote! {
        /// The operations that are no command, and why: their request carries a secret, which
        /// a command would take on the command line or from a file. Generated from the spec
        /// (`format: password`) by `codegen/cli.rs`.
        pub const HIDDEN_OPERATIONS: &[(&str, &str)] = &[#(#reasons),*];
    });
    Ok(prettyplease::unparse(&file))
}

/// A flag whose schema the client's settings give an open Rust type (`super::REPLACEMENTS`)
/// would take any string, which the server then refuses: it takes the schema's own values, and
/// its help lists them, as progenitor does for a closed enumeration.
fn closed_flags(mut text: String, spec: &Value) -> String {
    for (schema, rust) in super::REPLACEMENTS {
        let Some(values) = spec
            .get("components")
            .and_then(|c| c.get("schemas"))
            .and_then(|s| s.get(*schema))
            .and_then(|s| s.get("enum"))
            .and_then(Value::as_sequence)
        else {
            continue;
        };
        let values = values.iter().filter_map(Value::as_str);
        let path: syn::Path = match syn::parse_str(&rust.replacen("crate::", "::comm100::", 1)) {
            Ok(path) => path,
            Err(_) => continue,
        };
        let open = quote! { ::clap::value_parser!(#path) }.to_string();
        let closed = quote! {
            ::clap::builder::TypedValueParser::map(
                ::clap::builder::PossibleValuesParser::new([#(#values),*]),
                |s: String| s.parse::<#path>().expect("a listed value parses"),
            )
        }
        .to_string();
        text = text.replace(&open, &closed);
    }
    text
}

/// The spec without the operations whose request carries a secret (`format: password`, the
/// mark the client's settings turn into `SensitiveString`), and those operations' ids with the
/// reason.
fn without_secret_operations(spec: &OpenAPI) -> (OpenAPI, Vec<(String, String)>) {
    let yaml = serde_yaml::to_value(spec).unwrap_or(Value::Null);
    let mut commands = spec.clone();
    let mut hidden = Vec::new();
    for item in commands.paths.paths.values_mut() {
        let ReferenceOr::Item(item) = item else {
            continue;
        };
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ] {
            let Some(operation) = op else { continue };
            let request = serde_yaml::to_value((&operation.request_body, &operation.parameters))
                .unwrap_or(Value::Null);
            if let Some(field) = secret_field(&yaml, &request, &mut Vec::new()) {
                let id = operation.operation_id.clone().unwrap_or_default();
                hidden.push((
                    id,
                    format!("its request carries a secret (`{field}`); `comm100 login` checks the credentials"),
                ));
                *op = None;
            }
        }
    }
    (commands, hidden)
}

/// The name of a property marked `format: password` in `value`, following `$ref`s once each.
fn secret_field(spec: &Value, value: &Value, seen: &mut Vec<String>) -> Option<String> {
    match value {
        Value::Mapping(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                if seen.contains(reference) {
                    return None;
                }
                seen.push(reference.clone());
                return secret_field(spec, resolve(spec, reference)?, seen);
            }
            if let Some(Value::Mapping(properties)) = map.get("properties") {
                for (name, property) in properties {
                    if property.get("format").and_then(Value::as_str) == Some("password") {
                        return name.as_str().map(str::to_owned);
                    }
                }
            }
            map.values().find_map(|v| secret_field(spec, v, seen))
        }
        Value::Sequence(items) => items.iter().find_map(|v| secret_field(spec, v, seen)),
        _ => None,
    }
}

/// The schema a local `$ref` names.
fn resolve<'a>(spec: &'a Value, reference: &str) -> Option<&'a Value> {
    reference
        .strip_prefix("#/")?
        .split('/')
        .try_fold(spec, |at, key| at.get(key))
}

/// progenitor applies each body flag with `body_map` and then, if `--json-body` was given,
/// replaces the whole body with the file's, so that the flags were silently lost. The file is
/// read first now, and the flags change its fields: they merge.
fn merge_flags_into_body(file: &mut syn::File) -> Result<(), CodegenError> {
    let unexpected = |what: &str| {
        CodegenError::Progenitor(format!(
            "{what}; update merge_flags_into_body in codegen/cli.rs"
        ))
    };
    let cli = file
        .items
        .iter_mut()
        .find_map(|item| match item {
            syn::Item::Impl(imp)
                if imp.trait_.is_none() && quote!(#imp).to_string().contains("fn execute (") =>
            {
                Some(imp)
            }
            _ => None,
        })
        .ok_or_else(|| unexpected("the commands have no `impl Cli` with `execute`"))?;
    let mut moved = 0;
    for member in &mut cli.items {
        let syn::ImplItem::Fn(f) = member else {
            continue;
        };
        if !f.sig.ident.to_string().starts_with("execute_") {
            continue;
        }
        let stmts = &mut f.block.stmts;
        let reads_body = |stmt: &syn::Stmt| {
            matches!(stmt, syn::Stmt::Expr(syn::Expr::If(i), _)
                if quote!(#i).to_string().starts_with("if let Some (value) = matches . get_one :: < std :: path :: PathBuf > (\"json-body\")"))
        };
        let Some(at) = stmts.iter().position(reads_body) else {
            continue;
        };
        let first = stmts
            .first()
            .map(|s| quote!(#s).to_string())
            .unwrap_or_default();
        if !first.starts_with("let mut request = self . client .") {
            return Err(unexpected(&format!(
                "`{}` no longer starts with `let mut request = self.client...`",
                f.sig.ident
            )));
        }
        let read = stmts.remove(at);
        stmts.insert(1, read);
        moved += 1;
    }
    let consumers = quote!(#cli)
        .to_string()
        .matches("get_one :: < std :: path :: PathBuf > (\"json-body\")")
        .count();
    if moved != consumers {
        return Err(unexpected(&format!(
            "{consumers} commands read `--json-body`, {moved} in the expected shape"
        )));
    }
    Ok(())
}

/// `json_body_template(operation_id)`: for each operation with a JSON body, a body to start
/// from, valid as it is. It holds the required properties, and the optional ones the spec gives
/// an `example` or a `default`; a value is the property's `example`, else its `default`, else
/// the first value of its `enum`. A required string or number with none of them has no value
/// that is sure to be valid: the spec must give it an `example`, and generation says where.
fn templates(spec: &OpenAPI, yaml: &Value) -> Result<syn::Item, Vec<String>> {
    let mut arms = Vec::new();
    let mut problems = Vec::new();
    for (path, method, op) in spec.operations() {
        let Some(id) = op.operation_id.as_deref() else {
            continue;
        };
        let Some(schema) = yaml
            .get("paths")
            .and_then(|p| p.get(path))
            .and_then(|p| p.get(method))
            .and_then(|o| o.get("requestBody"))
            .and_then(|b| b.get("content"))
            .and_then(|c| c.get("application/json"))
            .and_then(|m| m.get("schema"))
        else {
            continue;
        };
        match template(yaml, schema, id) {
            Ok(body) => arms.push(quote! { #id => Some(::serde_json::json!(#body)), }),
            Err(mut more) => problems.append(&mut more),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(syn::parse_quote! {
        /// A JSON body to start from for the operation `operation_id`, valid as it is; `None`
        /// for an operation without one. Generated from the spec by `codegen/cli.rs`.
        pub fn json_body_template(operation_id: &str) -> Option<::serde_json::Value> {
            match operation_id {
                #(#arms)*
                _ => None,
            }
        }
    })
}

/// The template of one schema, as the tokens of a `json!` value; `at` names it in a problem.
fn template(spec: &Value, schema: &Value, at: &str) -> Result<TokenStream, Vec<String>> {
    if let Some(value) = schema.get("example").or_else(|| schema.get("default")) {
        return Ok(literal(value));
    }
    // No `let` chains: the client's build script, which includes this file, is edition 2021.
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_sequence)
        .and_then(|v| v.first())
    {
        return Ok(literal(first));
    }
    if let Some(Value::String(reference)) = schema.get("$ref") {
        let target = resolve(spec, reference)
            .ok_or_else(|| vec![format!("{at}: `{reference}` names no schema")])?;
        return template(spec, target, at);
    }
    for combinator in ["allOf", "oneOf", "anyOf"] {
        if let Some(first) = schema
            .get(combinator)
            .and_then(Value::as_sequence)
            .and_then(|b| b.first())
        {
            return template(spec, first, at);
        }
    }
    let required: Vec<&str> = match schema.get("required") {
        Some(Value::Sequence(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    match schema.get("type").and_then(Value::as_str) {
        Some("object") | None if schema.get("properties").is_some() => {
            let mut fields = Vec::new();
            let mut problems = Vec::new();
            if let Some(Value::Mapping(properties)) = schema.get("properties") {
                for (name, property) in properties {
                    let Some(name) = name.as_str() else { continue };
                    let has_value =
                        property.get("example").is_some() || property.get("default").is_some();
                    if !required.contains(&name) && !has_value {
                        continue;
                    }
                    match template(spec, property, &format!("{at}.{name}")) {
                        Ok(value) => fields.push(quote! { #name: #value }),
                        Err(mut more) => problems.append(&mut more),
                    }
                }
            }
            if problems.is_empty() {
                Ok(quote! { { #(#fields),* } })
            } else {
                Err(problems)
            }
        }
        Some("array") => {
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let items = schema.get("items").cloned().unwrap_or(Value::Null);
            let item = template(spec, &items, &format!("{at}[]"))?;
            let items = (0..min).map(|_| item.clone());
            Ok(quote! { [#(#items),*] })
        }
        Some("boolean") => Ok(quote! { false }),
        _ => Err(vec![format!(
            "{at}: the command line's `--json-body-template` needs a value that is sure to be valid; give this schema an `example` in {}",
            super::SPEC_PATH
        )]),
    }
}

/// A YAML value as the tokens of a `json!` value.
fn literal(value: &Value) -> TokenStream {
    match value {
        Value::Null => quote! { null },
        Value::Bool(b) => quote! { #b },
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => quote! { #i },
            (None, Some(f)) => quote! { #f },
            _ => quote! { null },
        },
        Value::String(s) => quote! { #s },
        Value::Sequence(items) => {
            let items = items.iter().map(literal);
            quote! { [#(#items),*] }
        }
        Value::Mapping(map) => {
            let fields = map.iter().filter_map(|(k, v)| {
                let k = k.as_str()?;
                let v = literal(v);
                Some(quote! { #k: #v })
            });
            quote! { { #(#fields),* } }
        }
        Value::Tagged(tagged) => literal(&tagged.value),
    }
}
