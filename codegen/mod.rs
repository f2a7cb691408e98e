//! The one place where the generated client is defined: the progenitor settings, the checks
//! that run on the spec before progenitor sees it, and the rendering of the reviewed outputs.
//!
//! `build.rs`, the xtask and the snapshot test all include this file with `#[path]`, so the
//! code that is compiled, the code that is reviewed and the code that is checked in CI come
//! from the same settings and cannot disagree. It is included rather than published as a crate
//! so that the packaged `comm100` crate builds on its own.

#![allow(dead_code)] // Each includer uses a different part.

pub mod cli;
pub mod semver;
pub mod surface;
pub mod types;

use std::fmt;
use std::path::Path;

use openapiv3::{OpenAPI, ReferenceOr, StatusCode};
use progenitor::{GenerationSettings, Generator, HooksMode, InterfaceStyle, TagStyle, TypeImpl};

/// The spec, relative to the workspace root.
pub const SPEC_PATH: &str = "openapi/comm100.yaml";
/// The reviewed snapshots, relative to the workspace root. The snapshot test (`tests/generated.rs`)
/// names its snapshots `generated__<name>.snap` in this directory, as insta does.
pub const SNAPSHOT_DIR: &str = "tests/snapshots";
/// The reviewed snapshots, in the order a reviewer should read their diffs: the client's API
/// surface, its code, and the command line's generated commands (`cli::generate`).
pub const SNAPSHOTS: [&str; 3] = ["api_surface", "code", "cli_code"];

/// The request schemas given the Rust type of another: `(schema, type)`. The spec closes these
/// enumerations in requests, because the server accepts only the listed values; in Rust a
/// request holds the open type of the response, so that a value the server itself sent (an
/// `Other`) goes back as it came on get -> modify -> put. Their `FromStr` (codegen/types.rs) is
/// declared, so that the command line gives a field of these types a flag, which takes the
/// schema's own values (codegen/cli.rs).
pub const REPLACEMENTS: &[(&str, &str)] = &[
    (
        "ConditionMetTypeInput",
        "crate::generated::types::ConditionMetType",
    ),
    (
        "ConditionOperatorInput",
        "crate::generated::types::ConditionOperator",
    ),
];

/// The progenitor settings. Changing any of these changes the public API of the crate.
pub fn settings(spec: &OpenAPI) -> GenerationSettings {
    let mut settings = GenerationSettings::default();
    settings
        .with_interface(InterfaceStyle::Builder)
        .with_tag(TagStyle::Separate)
        .with_derive("schemars::JsonSchema")
        // The hand-written layer (src/hooks.rs) supplies auth, retries and error normalisation
        // through `impl ClientHooks<Inner> for Client`.
        .with_inner_type(quote_path("crate::hooks::Inner"))
        .with_hooks(HooksMode::Expected)
        // Secrets (`format: password`: the password and the token) become a type that is
        // zeroised on drop and redacted in `Debug`, so the generated types can derive `Debug`.
        .with_conversion(
            schemars::schema::SchemaObject {
                instance_type: Some(schemars::schema::InstanceType::String.into()),
                format: Some("password".into()),
                ..Default::default()
            },
            "crate::SensitiveString",
            std::iter::empty(),
        );
    for (schema, rust) in REPLACEMENTS {
        settings.with_replacement(schema, rust, [TypeImpl::FromStr].into_iter());
    }
    // `PartialEq`, `Eq`, and `Default` where every field is optional (codegen/types.rs).
    types::configure(&mut settings, spec);
    settings
}

fn quote_path(path: &str) -> proc_macro2::TokenStream {
    path.parse().expect("a valid Rust path")
}

/// Why a spec could not become a client. Each variant names what to fix.
#[derive(Debug)]
pub enum CodegenError {
    /// The file could not be read or is not YAML/OpenAPI.
    Parse(String),
    /// The spec breaks rules progenitor 0.15.1 relies on; one line each.
    Rules(Vec<String>),
    /// progenitor refused the spec, or panicked on it.
    Progenitor(String),
}

impl fmt::Display for CodegenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodegenError::Parse(e) => {
                write!(f, "{SPEC_PATH} is not a readable OpenAPI document: {e}")
            }
            CodegenError::Rules(problems) => {
                writeln!(f, "{SPEC_PATH} breaks rules the generator relies on:")?;
                for p in problems {
                    writeln!(f, "  - {p}")?;
                }
                Ok(())
            }
            CodegenError::Progenitor(e) => write!(
                f,
                "progenitor could not generate a client from {SPEC_PATH}: {e}"
            ),
        }
    }
}

/// Parses the spec text.
pub fn parse(text: &str) -> Result<OpenAPI, CodegenError> {
    // Read the version first: a 3.1 file otherwise fails with an obscure parse error.
    let raw: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| CodegenError::Parse(e.to_string()))?;
    let version = raw
        .get("openapi")
        .and_then(|v| v.as_str())
        .unwrap_or("(missing)");
    if !version.starts_with("3.0.") {
        return Err(CodegenError::Rules(vec![format!(
            "`openapi: {version}`: progenitor 0.15.1 accepts only OpenAPI 3.0.x; write `openapi: 3.0.3`"
        )]));
    }
    serde_yaml::from_value(raw).map_err(|e| CodegenError::Parse(e.to_string()))
}

/// The rules progenitor 0.15.1 enforces by panicking; checked here so that a bad spec fails the
/// build with a sentence naming the operation instead of a backtrace from inside progenitor.
pub fn check_rules(spec: &OpenAPI) -> Result<(), CodegenError> {
    let mut problems = Vec::new();
    for (path, method, op) in spec.operations() {
        let name = op
            .operation_id
            .clone()
            .unwrap_or_else(|| format!("{} {path}", method.to_uppercase()));
        if op.operation_id.is_none() {
            problems.push(format!(
                "{name}: every operation needs an operationId (it names the builder method)"
            ));
        }
        if op.responses.default.is_some() {
            problems.push(format!(
                "{name}: uses a `default` response; progenitor panics when an operation has two error body types. Declare `4XX` and `5XX` with the Error schema instead"
            ));
        }
        let mut success = Vec::new();
        let mut error = Vec::new();
        for (code, response) in &op.responses.responses {
            let body = response_body(spec, response);
            let (is_success, label) = match code {
                StatusCode::Code(c) => ((200..300).contains(c), c.to_string()),
                StatusCode::Range(r) => (*r == 2, format!("{r}XX")),
            };
            let list = if is_success { &mut success } else { &mut error };
            if !list.iter().any(|(_, b)| *b == body) {
                list.push((label, body));
            }
        }
        for (kind, list) in [("success", &success), ("error", &error)] {
            let typed: Vec<_> = list.iter().filter(|(_, b)| b.is_some()).collect();
            if typed.len() > 1 {
                let codes: Vec<_> = typed.iter().map(|(c, _)| c.as_str()).collect();
                problems.push(format!(
                    "{name}: has {} different {kind} body types (responses {}); progenitor 0.15.1 allows one. Use one schema for all of them",
                    typed.len(),
                    codes.join(", ")
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CodegenError::Rules(problems))
    }
}

/// A comparable description of a response body: the schema reference or inline schema text.
fn response_body(spec: &OpenAPI, response: &ReferenceOr<openapiv3::Response>) -> Option<String> {
    let response = match response {
        ReferenceOr::Item(r) => r,
        ReferenceOr::Reference { reference } => {
            let name = reference.rsplit('/').next()?;
            match spec.components.as_ref()?.responses.get(name)? {
                ReferenceOr::Item(r) => r,
                ReferenceOr::Reference { .. } => return Some(reference.clone()),
            }
        }
    };
    let media = response.content.values().next()?;
    Some(match media.schema.as_ref()? {
        ReferenceOr::Reference { reference } => reference.clone(),
        ReferenceOr::Item(schema) => serde_yaml::to_string(schema).unwrap_or_default(),
    })
}

/// Generates the client from spec text: rule checks, progenitor, then formatting.
/// Returns the formatted Rust source that `src/lib.rs` includes.
pub fn generate(text: &str) -> Result<String, CodegenError> {
    let spec = parse(text)?;
    check_rules(&spec)?;
    let tokens = catch_progenitor(|| {
        let mut generator = Generator::new(&settings(&spec));
        generator.generate_tokens(&spec)
    })?;
    let tokens = rewrite(tokens, &spec)?;
    let mut file: syn::File =
        syn::parse2(tokens).map_err(|e| CodegenError::Progenitor(e.to_string()))?;
    types::finish(&mut file, &spec).map_err(CodegenError::Progenitor)?;
    add_call_methods(&mut file)?;
    file.items.push(documented_success(&spec)?);
    Ok(prettyplease::unparse(&file))
}

/// Runs progenitor, which still panics on shapes the checks above do not know about: the panic
/// is caught, and its message kept, so that the build fails with a sentence rather than a
/// backtrace.
pub fn catch_progenitor(
    run: impl FnOnce() -> Result<proc_macro2::TokenStream, progenitor::Error> + std::panic::UnwindSafe,
) -> Result<proc_macro2::TokenStream, CodegenError> {
    // The hook is process-wide: serialise the swap so concurrent callers (tests) restore it.
    static HOOK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let result = {
        let _guard = HOOK.lock().unwrap_or_else(|e| e.into_inner());
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let result = std::panic::catch_unwind(run);
        std::panic::set_hook(previous);
        result
    };
    match result {
        Ok(Ok(tokens)) => Ok(tokens),
        Ok(Err(e)) => Err(CodegenError::Progenitor(e.to_string())),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(no message)".into());
            Err(CodegenError::Progenitor(format!("it panicked: {message}")))
        }
    }
}

/// What progenitor 0.15.1 and typify 0.8 have no setting for, changed in their output. Each
/// rewrite is checked: if the generator stops emitting the text it replaces, generation fails
/// rather than silently producing something else.
const REWRITES: &[(&str, &str, &str)] = &[
    (
        // progenitor sends an `api-version` header, an Oxide convention; Comm100 versions by
        // path. Built, merged into the request and removed again in a hook, it cost two
        // thousand instructions a call.
        "header_map . append (:: reqwest :: header :: HeaderName :: from_static (\"api-version\") , :: reqwest :: header :: HeaderValue :: from_static (super :: Client :: api_version ()) ,) ;",
        "",
        "the generated code no longer adds the `api-version` header this way",
    ),
    (
        // progenitor's `ResponseValue::from_response` keeps the whole body in
        // `InvalidResponsePayload`, whose `Display` prints it; `crate::hooks::decode_response`
        // has the same signature and keeps a bounded snippet instead.
        "ResponseValue :: from_response",
        "crate :: hooks :: decode_response",
        "the generated code no longer calls `ResponseValue::from_response`",
    ),
    (
        // typify's builders treat the flattened `extra` map of unknown fields (from
        // `additionalProperties: {}`) as a required field with no value, so every builder
        // would fail unless `.extra(..)` was called; an empty map is its natural default.
        "extra : Err (\"no value supplied for extra\" . to_string ())",
        "extra : Ok (Default :: default ())",
        "typify no longer writes a missing `extra` as an error in its builders",
    ),
    // typify states a broken rule in the spec's terms (`doesn't match pattern "\S"`); the
    // messages below say what a user must change, in the words of `InvalidSegment` (the
    // builders' messages add the field: codegen/types.rs). A `minLength: 1` with the `\S`
    // pattern is the one rule "not blank".
    (
        r#"Err ("shorter than 1 characters" . into ())"#,
        r#"Err ("must not be blank" . into ())"#,
        "typify no longer checks a `minLength: 1` with the message `shorter than 1 characters`",
    ),
    (
        r#"Err ("doesn't match pattern \"\\S\"" . into ())"#,
        r#"Err ("must not be blank" . into ())"#,
        "typify no longer checks the name's `\\S` pattern with `doesn't match pattern`",
    ),
    (
        r#"Err ("doesn't match pattern \"^[0-9A-Fa-f]{6}$\"" . into ())"#,
        r#"Err (format ! ("{value:?} is not 6 hex digits with no `#`, e.g. \"339FD9\"") . into ())"#,
        "typify no longer checks the color's pattern with `doesn't match pattern` in a `from_str(value)`",
    ),
    (
        // The `FromStr` of a closed enumeration, whose argument is `value`.
        r#"_ => Err ("invalid value" . into ())"#,
        r#"_ => Err (format ! ("{value:?} is not one of the known values") . into ())"#,
        "typify no longer refuses an unknown enumeration value with `invalid value`",
    ),
];

/// Applies each `(from, to, what changed if from is missing)`; a rewrite that finds nothing
/// fails generation, naming the file whose list to update.
pub fn apply_rewrites(
    mut text: String,
    rewrites: &[(&str, &str, &str)],
    file: &str,
) -> Result<String, CodegenError> {
    for (from, to, changed) in rewrites {
        if !text.contains(from) {
            return Err(CodegenError::Progenitor(format!(
                "{changed}; update REWRITES in {file}"
            )));
        }
        text = text.replace(from, to);
    }
    Ok(text)
}

fn rewrite(
    tokens: proc_macro2::TokenStream,
    spec: &OpenAPI,
) -> Result<proc_macro2::TokenStream, CodegenError> {
    let text = apply_rewrites(tokens.to_string(), REWRITES, "codegen/mod.rs")?;
    let text = types::plain_messages(&text, spec).map_err(CodegenError::Progenitor)?;
    let text = types::min_items(&text, spec).map_err(CodegenError::Progenitor)?;
    let text = types::unset_without_allocation(&text, spec).map_err(CodegenError::Progenitor)?;
    let text = without_empty_header_maps(text)?;
    let text = successes_beside(text, spec)?;
    let text = uuid_paths(text, spec);
    text.parse()
        .map_err(|e: proc_macro2::LexError| CodegenError::Progenitor(e.to_string()))
}

/// Without `api-version`, an operation with no header parameter of its own would build an
/// empty header map and merge it into the request (three hundred instructions a call): its map,
/// made with room for `api-version` alone, and the merge that follows it are left out. An
/// operation with header parameters keeps both.
fn without_empty_header_maps(text: String) -> Result<String, CodegenError> {
    const EMPTY: &str =
        "let mut header_map = :: reqwest :: header :: HeaderMap :: with_capacity (1usize) ;";
    const MERGE: &str = ". headers (header_map)";
    if !text.contains(EMPTY) {
        return Err(CodegenError::Progenitor(
            "the generated code no longer starts its header map with room for `api-version` alone; update `without_empty_header_maps` in codegen/mod.rs".into(),
        ));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find(EMPTY) {
        out.push_str(&rest[..at]);
        rest = &rest[at + EMPTY.len()..];
        let merge = rest.find(MERGE).ok_or_else(|| {
            CodegenError::Progenitor(
                "an operation builds a header map that it never merges; update `without_empty_header_maps` in codegen/mod.rs".into(),
            )
        })?;
        out.push_str(&rest[..merge]);
        rest = &rest[merge + MERGE.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A path parameter that the spec types as a UUID goes into the URL by its `Display`, which is
/// already a valid path segment (hex digits and hyphens), instead of through `to_string` and
/// progenitor's percent-encoding: a thousand instructions a call. Parameters of any other type
/// keep `encode_path`.
fn uuid_paths(mut text: String, spec: &OpenAPI) -> String {
    use openapiv3::{
        Parameter, ParameterSchemaOrContent, SchemaKind, Type, VariantOrUnknownOrEmpty,
    };
    let names: std::collections::BTreeSet<&str> = types::parameters(spec)
        .filter_map(|p| {
            let Parameter::Path { parameter_data, .. } = p else {
                return None;
            };
            let ParameterSchemaOrContent::Schema(ReferenceOr::Item(schema)) =
                &parameter_data.format
            else {
                return None;
            };
            let uuid = matches!(&schema.schema_kind, SchemaKind::Type(Type::String(s))
                if matches!(&s.format, VariantOrUnknownOrEmpty::Unknown(f) if f == "uuid"));
            uuid.then_some(parameter_data.name.as_str())
        })
        .collect();
    for name in names {
        let ident = name.replace('-', "_");
        text = text.replace(&format!("encode_path (& {ident} . to_string ())"), &ident);
    }
    text
}

/// Gives every operation's builder a `call()` beside progenitor's `send()`: the body of the
/// success itself, and the crate's own error, `crate::ApiError`. Read from the builders that
/// progenitor wrote, so that a new operation gets one too.
fn add_call_methods(file: &mut syn::File) -> Result<(), CodegenError> {
    let Some(builder) = file.items.iter_mut().find_map(|item| match item {
        syn::Item::Mod(m) if m.ident == "builder" => m.content.as_mut().map(|(_, items)| items),
        _ => None,
    }) else {
        return Err(CodegenError::Progenitor(
            "the generated code has no `builder` module; update add_call_methods in codegen/mod.rs"
                .into(),
        ));
    };
    let mut added = Vec::new();
    for item in builder.iter() {
        let syn::Item::Impl(imp) = item else { continue };
        if imp.trait_.is_some() {
            continue;
        }
        for member in &imp.items {
            let syn::ImplItem::Fn(f) = member else {
                continue;
            };
            if f.sig.ident != "send" {
                continue;
            }
            let Some(success) = send_success_type(&f.sig.output) else {
                return Err(CodegenError::Progenitor(
                    "a builder's `send` no longer returns `Result<ResponseValue<T>, Error<E>>`; update add_call_methods in codegen/mod.rs"
                        .into(),
                ));
            };
            let self_ty = &imp.self_ty;
            let generics = &imp.generics;
            added.push(syn::Item::Impl(syn::parse_quote! {
                impl #generics #self_ty {
                    /// Sends the request and returns the body of the success itself; any failure
                    /// is a [`crate::ApiError`]. The short form of `send().await?.into_inner()`.
                    pub async fn call(self) -> Result<#success, crate::ApiError> {
                        self.send()
                            .await
                            .map(ResponseValue::into_inner)
                            .map_err(crate::ApiError::from)
                    }
                }
            }));
        }
    }
    if added.is_empty() {
        return Err(CodegenError::Progenitor(
            "no builder has a `send`; update add_call_methods in codegen/mod.rs".into(),
        ));
    }
    builder.extend(added);
    Ok(())
}

/// `T` of `Result<ResponseValue<T>, Error<E>>`.
fn send_success_type(output: &syn::ReturnType) -> Option<syn::Type> {
    let syn::ReturnType::Type(_, ty) = output else {
        return None;
    };
    let generic = |ty: &syn::Type| -> Option<syn::Type> {
        let syn::Type::Path(p) = ty else { return None };
        let syn::PathArguments::AngleBracketed(args) = &p.path.segments.last()?.arguments else {
            return None;
        };
        args.args.iter().find_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        })
    };
    generic(&generic(ty)?)
}

/// `DOCUMENTED_SUCCESS`: each operation's documented success status and whether it has a body,
/// from the spec, for the hooks' rule that any `2xx` is a success (src/hooks.rs).
fn documented_success(spec: &OpenAPI) -> Result<syn::Item, CodegenError> {
    let rows = successes(spec)
        .into_iter()
        .map(|(id, status, has_body)| quote::quote! { (#id, #status, #has_body) });
    syn::parse2(quote::quote! {
        /// Each operation's documented success: its id, its status, and whether it has a body.
        /// Generated from the spec by `codegen/mod.rs`; read by the hooks, which take any `2xx`
        /// as this success.
        pub(crate) const DOCUMENTED_SUCCESS: &[(&str, u16, bool)] = &[#(#rows),*];
    })
    .map_err(|e| CodegenError::Progenitor(e.to_string()))
}

/// Each operation's documented success: its id, its status, and whether it has a body.
fn successes(spec: &OpenAPI) -> Vec<(String, u16, bool)> {
    let mut rows = Vec::new();
    for (_, _, op) in spec.operations() {
        let Some(id) = op.operation_id.as_deref() else {
            continue;
        };
        let success = op
            .responses
            .responses
            .iter()
            .find_map(|(code, response)| match code {
                StatusCode::Code(c) if (200..300).contains(c) => Some((*c, response)),
                _ => None,
            });
        let Some((status, response)) = success else {
            continue;
        };
        rows.push((
            id.to_owned(),
            status,
            response_body(spec, response).is_some(),
        ));
    }
    rows
}

/// Each operation with a documented success hands it to the hooks
/// (`crate::hooks::exec_documented` instead of `exec`), which read a success body within the
/// call and give it back beside the response, for `crate::hooks::decode_read`: no lookup by
/// operation id and no trip through the response's extensions (an allocation) per call.
fn successes_beside(mut text: String, spec: &OpenAPI) -> Result<String, CodegenError> {
    const EXEC: &str = "let result = client . exec (request , & info) . await ;";
    let changed = |what: &str| {
        CodegenError::Progenitor(format!(
            "{what}; update `successes_beside` in codegen/mod.rs"
        ))
    };
    for (id, status, has_body) in successes(spec) {
        let marker = format!("operation_id : \"{id}\"");
        let at = text.find(&marker).ok_or_else(|| {
            changed(&format!(
                "the generated `{id}` no longer names its operation as `{marker}`"
            ))
        })?;
        let exec = text[at..]
            .find(EXEC)
            .map(|i| at + i)
            .ok_or_else(|| changed(&format!("the generated `{id}` no longer calls `{EXEC}`")))?;
        let read = if has_body { "read" } else { "_" };
        text.replace_range(
            exec..exec + EXEC.len(),
            &format!(
                "let (result , {read}) = crate :: hooks :: exec_documented (client , request , & info , {status}u16 , {has_body}) . await ;"
            ),
        );
        if has_body {
            let arm = format!(
                "{status}u16 => {{ crate :: hooks :: decode_response (response) . await }}"
            );
            let found = text[exec..].find(&arm).map(|i| exec + i).ok_or_else(|| {
                changed(&format!(
                    "the generated `{id}` no longer decodes its success as `{arm}`"
                ))
            })?;
            text.replace_range(
                found..found + arm.len(),
                &format!(
                    "{status}u16 => {{ crate :: hooks :: decode_read (response , read) . await }}"
                ),
            );
        }
    }
    Ok(text)
}

/// Generates the reviewed outputs from the spec at `spec_path`, in the order of `SNAPSHOTS`:
/// `(api_surface, code, cli_code)`.
pub fn reviewed_outputs(spec_path: &Path) -> Result<(String, String, String), CodegenError> {
    let text = std::fs::read_to_string(spec_path)
        .map_err(|e| CodegenError::Parse(format!("{}: {e}", spec_path.display())))?;
    let code = generate(&text)?;
    let spec = parse(&text)?;
    let surface = surface::render(&spec, &code).map_err(CodegenError::Progenitor)?;
    let cli = cli::generate(&text)?;
    Ok((surface, code, cli))
}

/// The text of an insta snapshot file holding `contents`, in the format `insta` reads.
pub fn snapshot_file(name: &str, contents: &str) -> String {
    // The test that compares it with what the build compiled.
    let source = if name == "cli_code" {
        "cli/tests/generated.rs"
    } else {
        "tests/generated.rs"
    };
    format!(
        "---\nsource: {source}\nexpression: {name}\n---\n{}\n",
        contents.trim_end()
    )
}

/// The contents of an insta snapshot file, without its header.
pub fn snapshot_contents(file: &str) -> &str {
    // The header is `---\n...\n---\n`; the contents follow the second marker.
    match file
        .strip_prefix("---\n")
        .and_then(|rest| rest.find("\n---\n").map(|i| &rest[i + 5..]))
    {
        Some(contents) => contents,
        None => file,
    }
}
