//! The API surface: a short listing of what the generated client offers, read from the
//! generated code itself so that it shows what users get, not what the spec intended.
//!
//! [`Surface`] is the model: operations with their setters and results, and the public types
//! with their fields and variants. [`render`] prints the reviewed listing from it; `semver.rs`
//! compares two of them. The model also holds what the listing leaves out, so that a comparison
//! can tell more than a text diff: which setters and fields are required, which traits each type
//! implements, and the docs.

use std::collections::BTreeSet;
use std::fmt;

use openapiv3::OpenAPI;
use quote::ToTokens;
use syn::{
    Fields, FnArg, GenericArgument, Item, ItemImpl, PathArguments, ReturnType, Type, WherePredicate,
};

/// Renders the surface: operations in spec order, then types in the order progenitor emits them.
pub fn render(spec: &OpenAPI, code: &str) -> Result<String, String> {
    let routes = spec
        .operations()
        .map(|(path, method, op)| Route {
            id: op
                .operation_id
                .clone()
                .unwrap_or_else(|| "(no operationId)".into()),
            method: method.to_uppercase(),
            path: path.to_string(),
        })
        .collect::<Vec<_>>();
    Ok(Surface::build(&routes, code)?.to_string())
}

/// What the generated client offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Surface {
    pub operations: Vec<Operation>,
    pub types: Vec<TypeDef>,
}

/// Where an operation is sent: its id (the client method), its HTTP method and its path.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub id: String,
    pub method: String,
    pub path: String,
}

/// An operation: `client.<id>()` returns a builder with these setters and a `send`.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub route: Route,
    pub setters: Vec<Setter>,
    /// `send`'s `Ok` and `Err` types.
    pub send: (String, String),
    /// `call`'s `Ok` and `Err` types, when the builder has the short form.
    pub call: Option<(String, String)>,
    /// The docs of the client method.
    pub docs: String,
}

/// A setter of an operation's builder; `required` when `send` fails without it.
#[derive(Debug, Clone, PartialEq)]
pub struct Setter {
    pub name: String,
    pub ty: String,
    pub required: bool,
}

/// A public type of the `types` module.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeDef {
    pub name: String,
    pub shape: Shape,
    /// The traits it derives or implements, by their last path segment (`Clone`,
    /// `From<KnownConditionOperator>`, `TryFrom<&str>`).
    pub traits: BTreeSet<String>,
    pub docs: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Struct(Vec<Field>),
    /// A newtype: the types it wraps.
    Tuple(Vec<String>),
    Unit,
    Enum {
        /// `#[serde(untagged)]`: the open enums (a `Known…` variant and `Other`) are untagged.
        untagged: bool,
        variants: Vec<Variant>,
    },
}

/// A field of a struct; `required` when its builder fails without it.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: String,
    /// Its name on the wire, when that is not its Rust name.
    pub wire: Option<String>,
    pub flatten: bool,
    pub required: bool,
    pub docs: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub name: String,
    /// The types it holds, for a tuple variant.
    pub fields: Option<Vec<String>>,
    /// Its value on the wire, when that is not its Rust name.
    pub wire: Option<String>,
    pub docs: String,
}

impl Surface {
    /// Reads the surface from the generated code; `routes` gives the operations, in order.
    pub fn build(routes: &[Route], code: &str) -> Result<Surface, String> {
        let file: syn::File = syn::parse_file(code).map_err(|e| e.to_string())?;
        let types =
            module(&file.items, "types").ok_or("the generated code has no `types` module")?;
        let builder =
            module(&file.items, "builder").ok_or("the generated code has no `builder` module")?;
        let type_builders = module(types, "builder").unwrap_or(&[]);
        let operations = routes
            .iter()
            .map(|route| operation(route, &file.items, builder))
            .collect();
        let types = types
            .iter()
            .filter_map(|item| type_def(item, types, type_builders))
            .collect();
        Ok(Surface { operations, types })
    }

    /// Reads the surface from a rendered listing (for its routes) and the code it came from,
    /// as the reviewed snapshots hold them.
    pub fn from_listing(listing: &str, code: &str) -> Result<Surface, String> {
        let routes = listing
            .lines()
            .skip_while(|l| *l != "# Operations")
            .take_while(|l| *l != "# Types")
            .filter(|l| !l.is_empty() && !l.starts_with([' ', '#']))
            .map(|l| {
                let (id, rest) = l.split_once(": ")?;
                let (method, path) = rest.split_once(' ')?;
                Some(Route {
                    id: id.into(),
                    method: method.into(),
                    path: path.into(),
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or("the listing has an operation line that is not `id: METHOD path`")?;
        Surface::build(&routes, code)
    }
}

/// For each line of a rendered listing, the header of the item it belongs to (an operation's
/// `id: METHOD path`, a type's `struct X` or `enum X`): how a diff line is traced to its item.
pub fn line_headers(listing: &str) -> Vec<&str> {
    let mut header = "";
    listing
        .lines()
        .map(|line| {
            if !line.is_empty() && !line.starts_with([' ', '#']) {
                header = line;
            }
            header
        })
        .collect()
}

impl Operation {
    pub fn header(&self) -> String {
        let Route { id, method, path } = &self.route;
        format!("{id}: {method} {path}")
    }

    pub fn send_line(&self) -> String {
        format!("  send -> Ok({}), Err({})", self.send.0, self.send.1)
    }

    pub fn call_line(&self) -> Option<String> {
        let (ok, err) = self.call.as_ref()?;
        Some(format!("  call -> Ok({ok}), Err({err})"))
    }
}

impl Setter {
    pub fn line(&self) -> String {
        format!("  .{}({})", self.name, self.ty)
    }
}

impl TypeDef {
    pub fn header(&self) -> String {
        match &self.shape {
            Shape::Struct(_) | Shape::Unit => format!("struct {}", self.name),
            Shape::Tuple(inner) => format!("struct {}({})", self.name, inner.join(", ")),
            Shape::Enum { untagged, .. } => {
                let untagged = if *untagged { " (untagged)" } else { "" };
                format!("enum {}{untagged}", self.name)
            }
        }
    }
}

impl Field {
    pub fn line(&self) -> String {
        let wire = wire_suffix(&self.wire);
        let flatten = if self.flatten { " (flattened)" } else { "" };
        format!("  {}: {}{wire}{flatten}", self.name, self.ty)
    }
}

impl Variant {
    pub fn line(&self) -> String {
        let wire = wire_suffix(&self.wire);
        match &self.fields {
            Some(inner) => format!("  {}({}){wire}", self.name, inner.join(", ")),
            None => format!("  {}{wire}", self.name),
        }
    }
}

/// ` as "wireName"` when the wire name is not the Rust name.
fn wire_suffix(wire: &Option<String>) -> String {
    wire.as_ref()
        .map(|w| format!(" as \"{w}\""))
        .unwrap_or_default()
}

/// The reviewed listing.
impl fmt::Display for Surface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# Operations")?;
        for op in &self.operations {
            writeln!(f, "\n{}", op.header())?;
            for setter in &op.setters {
                writeln!(f, "{}", setter.line())?;
            }
            writeln!(f, "{}", op.send_line())?;
            if let Some(line) = op.call_line() {
                writeln!(f, "{line}")?;
            }
        }
        writeln!(f, "\n# Types")?;
        for t in &self.types {
            writeln!(f, "\n{}", t.header())?;
            match &t.shape {
                Shape::Struct(fields) => {
                    for field in fields {
                        writeln!(f, "{}", field.line())?;
                    }
                }
                Shape::Enum { variants, .. } => {
                    for variant in variants {
                        writeln!(f, "{}", variant.line())?;
                    }
                }
                Shape::Tuple(_) | Shape::Unit => {}
            }
        }
        Ok(())
    }
}

fn operation(route: &Route, top: &[Item], builder: &[Item]) -> Operation {
    let name = pascal(&route.id);
    // A setter is required when its builder field is not an `Option` (progenitor starts it as
    // an error, or as the body type's builder, which fails on its own required fields).
    let stored: Vec<(String, String)> = builder
        .iter()
        .find_map(|item| match item {
            Item::Struct(s) if s.ident == name => Some(&s.fields),
            _ => None,
        })
        .into_iter()
        .flatten()
        .map(|f| (ident(&f.ident), ty(&f.ty)))
        .collect();
    let mut setters = Vec::new();
    let mut send = ("()".to_string(), "?".to_string());
    let mut call = None;
    for method in impl_methods(builder, &name) {
        let sig = &method.sig;
        let ident = sig.ident.to_string();
        if ident == "send" {
            send = send_types(&sig.output);
        } else if ident == "call" {
            call = Some(send_types(&sig.output));
        } else if ident != "new" && !ident.ends_with("_map") {
            let required = !stored
                .iter()
                .any(|(f, t)| *f == ident && t.starts_with("Result<Option<"));
            setters.push(Setter {
                ty: setter_type(sig).unwrap_or_else(|| "?".into()),
                name: ident,
                required,
            });
        }
    }
    // The client method is declared in the tag's extension trait, with the operation's docs.
    let docs = top
        .iter()
        .filter_map(|item| match item {
            Item::Trait(t) => Some(&t.items),
            _ => None,
        })
        .flatten()
        .find_map(|item| match item {
            syn::TraitItem::Fn(f) if f.sig.ident == route.id => Some(docs(&f.attrs)),
            _ => None,
        })
        .unwrap_or_default();
    Operation {
        route: route.clone(),
        setters,
        send,
        call,
        docs,
    }
}

fn type_def(item: &Item, types: &[Item], builders: &[Item]) -> Option<TypeDef> {
    let (name, attrs, shape) = match item {
        Item::Struct(s) if matches!(s.vis, syn::Visibility::Public(_)) => {
            let shape = match &s.fields {
                Fields::Named(fields) => {
                    let defaults = builder_defaults(builders, &s.ident.to_string());
                    Shape::Struct(
                        fields
                            .named
                            .iter()
                            .map(|f| {
                                let name = ident(&f.ident);
                                let ty = ty(&f.ty);
                                // Required when the builder starts it as an error; without a
                                // builder, when it is not an `Option`.
                                let required = match defaults.iter().find(|(n, _)| *n == name) {
                                    Some((_, starts_as_error)) => *starts_as_error,
                                    None => !ty.starts_with("Option<"),
                                };
                                Field {
                                    wire: serde_rename(&f.attrs),
                                    flatten: has_serde_word(&f.attrs, "flatten"),
                                    docs: docs(&f.attrs),
                                    name,
                                    ty,
                                    required,
                                }
                            })
                            .collect(),
                    )
                }
                Fields::Unnamed(fields) => {
                    Shape::Tuple(fields.unnamed.iter().map(|f| ty(&f.ty)).collect())
                }
                Fields::Unit => Shape::Unit,
            };
            (s.ident.to_string(), &s.attrs, shape)
        }
        Item::Enum(e) => {
            let variants = e
                .variants
                .iter()
                .map(|v| Variant {
                    name: v.ident.to_string(),
                    fields: match &v.fields {
                        Fields::Unnamed(f) => Some(f.unnamed.iter().map(|f| ty(&f.ty)).collect()),
                        _ => None,
                    },
                    wire: serde_rename(&v.attrs),
                    docs: docs(&v.attrs),
                })
                .collect();
            let shape = Shape::Enum {
                untagged: has_serde_word(&e.attrs, "untagged"),
                variants,
            };
            (e.ident.to_string(), &e.attrs, shape)
        }
        _ => return None,
    };
    Some(TypeDef {
        traits: traits(attrs, types, &name),
        docs: docs(attrs),
        name,
        shape,
    })
}

/// The traits a type derives, and those implemented for it in the `types` module.
fn traits(attrs: &[syn::Attribute], types: &[Item], name: &str) -> BTreeSet<String> {
    let mut traits = BTreeSet::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let _ = attr.parse_nested_meta(|meta| {
            traits.insert(trait_name(&meta.path));
            Ok(())
        });
    }
    traits.extend(types.iter().filter_map(|item| match item {
        Item::Impl(ItemImpl {
            trait_: Some((path, _)),
            self_ty,
            ..
        }) if type_ident(self_ty) == name => Some(trait_name(path)),
        _ => None,
    }));
    traits
}

/// `::std::convert::TryFrom<::std::string::String>` → `TryFrom<String>`; lifetimes are dropped,
/// so that `Deserialize` derived and `Deserialize<'de>` implemented by hand are one trait.
fn trait_name(path: &syn::Path) -> String {
    let Some(last) = path.segments.last() else {
        return String::new();
    };
    let args: Vec<String> = match &last.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter(|a| !matches!(a, GenericArgument::Lifetime(_)))
            .map(|a| clean(a.to_token_stream().to_string()))
            .collect(),
        _ => Vec::new(),
    };
    if args.is_empty() {
        last.ident.to_string()
    } else {
        format!("{}<{}>", last.ident, args.join(", "))
    }
}

/// For each field of a type's builder: whether `Default` starts it as an error (`no value
/// supplied`), i.e. whether building fails without it.
fn builder_defaults(builders: &[Item], name: &str) -> Vec<(String, bool)> {
    let default_fn = builders.iter().find_map(|item| match item {
        Item::Impl(ItemImpl {
            trait_: Some((path, _)),
            self_ty,
            items,
            ..
        }) if type_ident(self_ty) == name
            && path.segments.last().is_some_and(|s| s.ident == "Default") =>
        {
            items.iter().find_map(|item| match item {
                syn::ImplItem::Fn(f) => Some(f),
                _ => None,
            })
        }
        _ => None,
    });
    let Some(default_fn) = default_fn else {
        return Vec::new();
    };
    let Some(syn::Stmt::Expr(syn::Expr::Struct(init), _)) = default_fn.block.stmts.last() else {
        return Vec::new();
    };
    init.fields
        .iter()
        .map(|f| {
            let name = match &f.member {
                syn::Member::Named(i) => i.to_string(),
                syn::Member::Unnamed(i) => i.index.to_string(),
            };
            let starts_as_error = matches!(&f.expr, syn::Expr::Call(c)
                if matches!(&*c.func, syn::Expr::Path(p) if p.path.is_ident("Err")));
            (name, starts_as_error)
        })
        .collect()
}

/// The text of the `#[doc]` attributes (`///` and `/** */` comments).
fn docs(attrs: &[syn::Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    lines.join("\n")
}

fn ident(i: &Option<syn::Ident>) -> String {
    i.as_ref().map(|i| i.to_string()).unwrap_or_default()
}

fn module<'a>(items: &'a [Item], name: &str) -> Option<&'a [Item]> {
    items.iter().find_map(|item| match item {
        Item::Mod(m) if m.ident == name => m.content.as_ref().map(|(_, items)| items.as_slice()),
        _ => None,
    })
}

fn impl_methods<'a>(items: &'a [Item], type_name: &str) -> Vec<&'a syn::ImplItemFn> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Impl(ItemImpl {
                self_ty,
                trait_: None,
                items,
                ..
            }) if type_ident(self_ty) == type_name => Some(items),
            _ => None,
        })
        .flatten()
        .filter_map(|item| match item {
            syn::ImplItem::Fn(f) if matches!(f.vis, syn::Visibility::Public(_)) => Some(f),
            _ => None,
        })
        .collect()
}

fn type_ident(t: &Type) -> String {
    match t {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// A setter is `fn x<V>(mut self, value: V) -> Self where V: TryInto<T>`: the surface shows `T`.
fn setter_type(sig: &syn::Signature) -> Option<String> {
    let arg = sig.inputs.iter().find_map(|a| match a {
        FnArg::Typed(t) => Some(ty(&t.ty)),
        FnArg::Receiver(_) => None,
    })?;
    let predicates = sig
        .generics
        .where_clause
        .iter()
        .flat_map(|w| w.predicates.iter());
    let bounds = predicates
        .filter_map(|pred| match pred {
            WherePredicate::Type(p) if ty(&p.bounded_ty) == arg => Some(p.bounds.iter()),
            _ => None,
        })
        .flatten();
    for bound in bounds {
        let syn::TypeParamBound::Trait(t) = bound else {
            continue;
        };
        let Some(last) = t.path.segments.last() else {
            continue;
        };
        let PathArguments::AngleBracketed(a) = &last.arguments else {
            continue;
        };
        match a.args.first() {
            Some(GenericArgument::Type(target))
                if last.ident == "TryInto" || last.ident == "Into" =>
            {
                return Some(ty(target));
            }
            _ => {}
        }
    }
    Some(arg)
}

/// `Result<ResponseValue<T>, Error<E>>` → (`T`, `Error<E>`).
fn send_types(output: &ReturnType) -> (String, String) {
    let ReturnType::Type(_, t) = output else {
        return ("()".into(), "?".into());
    };
    let Type::Path(p) = &**t else {
        return (ty(t), "?".into());
    };
    let Some(last) = p.path.segments.last() else {
        return (ty(t), "?".into());
    };
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return (ty(t), "?".into());
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(ty(t)),
        _ => None,
    });
    (
        types.next().unwrap_or_default(),
        types.next().unwrap_or_default(),
    )
}

/// A type as a reviewer would write it: no `::std::` paths, no `types::` prefix.
fn ty(t: &Type) -> String {
    clean(t.to_token_stream().to_string())
}

fn clean(tokens: String) -> String {
    // The types here need no inner spaces (no `dyn`, `impl` or lifetimes), so drop them all.
    let mut s: String = tokens.chars().filter(|c| !c.is_whitespace()).collect();
    for (from, to) in [
        ("::std::option::", ""),
        ("::std::vec::", ""),
        ("::std::string::", ""),
        ("::std::collections::", ""),
        ("std::convert::", ""),
        ("::serde_json::", "serde_json::"),
        ("::uuid::", "uuid::"),
        ("types::", ""),
        (",", ", "),
    ] {
        s = s.replace(from, to);
    }
    s
}

fn serde_rename(attrs: &[syn::Attribute]) -> Option<String> {
    let mut found = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let value: syn::LitStr = meta.value()?.parse()?;
                found = Some(value.value());
            } else if let Ok(v) = meta.value() {
                let _: syn::Expr = v.parse()?;
            }
            Ok(())
        });
    }
    found
}

fn has_serde_word(attrs: &[syn::Attribute], word: &str) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("serde"))
        .any(|a| a.to_token_stream().to_string().contains(word))
}

/// `list_customer_segments` → `ListCustomerSegments`, as progenitor names builders.
fn pascal(id: &str) -> String {
    id.split(['_', '-'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}
