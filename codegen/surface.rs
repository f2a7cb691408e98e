//! The API surface: a short listing of what the generated client offers, read from the
//! generated code itself so that it shows what users get, not what the spec intended.

use std::fmt::Write;

use openapiv3::OpenAPI;
use quote::ToTokens;
use syn::{
    Fields, FnArg, GenericArgument, Item, ItemImpl, PathArguments, ReturnType, Type, WherePredicate,
};

/// Renders the surface: operations in spec order, then types in the order progenitor emits them.
pub fn render(spec: &OpenAPI, code: &str) -> Result<String, String> {
    let file: syn::File = syn::parse_file(code).map_err(|e| e.to_string())?;
    let types = module(&file.items, "types").ok_or("the generated code has no `types` module")?;
    let builder =
        module(&file.items, "builder").ok_or("the generated code has no `builder` module")?;

    let mut out = String::new();
    writeln!(out, "# Operations").unwrap();
    for (path, method, op) in spec.operations() {
        let id = op.operation_id.as_deref().unwrap_or("(no operationId)");
        let name = pascal(id);
        writeln!(out, "\n{id}: {} {path}", method.to_uppercase()).unwrap();
        for method in impl_methods(builder, &name) {
            let sig = &method.sig;
            let ident = sig.ident.to_string();
            if ident == "send" {
                let (ok, err) = send_types(&sig.output);
                writeln!(out, "  send -> Ok({ok}), Err({err})").unwrap();
            } else if ident != "new" && !ident.ends_with("_map") {
                writeln!(
                    out,
                    "  .{ident}({})",
                    setter_type(sig).unwrap_or_else(|| "?".into())
                )
                .unwrap();
            }
        }
    }

    writeln!(out, "\n# Types").unwrap();
    for item in types {
        match item {
            Item::Struct(s) if matches!(s.vis, syn::Visibility::Public(_)) => match &s.fields {
                Fields::Named(fields) => {
                    writeln!(out, "\nstruct {}", s.ident).unwrap();
                    for f in &fields.named {
                        let wire = serde_rename(&f.attrs);
                        let flatten = if has_serde_word(&f.attrs, "flatten") {
                            " (flattened)"
                        } else {
                            ""
                        };
                        let ident = f.ident.as_ref().map(|i| i.to_string()).unwrap_or_default();
                        let wire = wire.map(|w| format!(" as \"{w}\"")).unwrap_or_default();
                        writeln!(out, "  {ident}: {}{wire}{flatten}", ty(&f.ty)).unwrap();
                    }
                }
                Fields::Unnamed(fields) => {
                    let inner: Vec<_> = fields.unnamed.iter().map(|f| ty(&f.ty)).collect();
                    writeln!(out, "\nstruct {}({})", s.ident, inner.join(", ")).unwrap();
                }
                Fields::Unit => writeln!(out, "\nstruct {}", s.ident).unwrap(),
            },
            Item::Enum(e) => {
                let untagged = if has_serde_word(&e.attrs, "untagged") {
                    " (untagged)"
                } else {
                    ""
                };
                writeln!(out, "\nenum {}{untagged}", e.ident).unwrap();
                for v in &e.variants {
                    let wire = serde_rename(&v.attrs)
                        .map(|w| format!(" as \"{w}\""))
                        .unwrap_or_default();
                    match &v.fields {
                        Fields::Unnamed(f) => {
                            let inner: Vec<_> = f.unnamed.iter().map(|f| ty(&f.ty)).collect();
                            writeln!(out, "  {}({}){wire}", v.ident, inner.join(", ")).unwrap();
                        }
                        _ => writeln!(out, "  {}{wire}", v.ident).unwrap(),
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
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
    // The types here need no inner spaces (no `dyn`, `impl` or lifetimes), so drop them all.
    let mut s: String = t
        .to_token_stream()
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
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
