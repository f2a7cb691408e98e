//! What a change of the API surface means for users of the crate, under the policy in
//! `docs/semver.md`: each difference between two [`Surface`]s is breaking, additive or docs only,
//! with the reason, and the worst of them is the release it needs.
//!
//! The classification works on the surface model, not on the text of the listing: the model
//! knows which setters and fields are required, which enums are open, which traits each type has
//! and the docs, which the listing does not show.

use std::fmt;

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};

use super::surface::{Field, Operation, Setter, Shape, Surface, TypeDef, Variant};

/// What a change means for code written against the old surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Code that the policy covers may stop compiling or behave differently: a major release.
    Breaking,
    /// Something new; covered code compiles and behaves as before: a minor release.
    Additive,
    /// Documentation only: a patch release.
    Docs,
}

impl Kind {
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Breaking => "[breaking]",
            Kind::Additive => "[additive]",
            Kind::Docs => "[docs]",
        }
    }
}

/// One classified change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: Kind,
    /// What changed; also the draft CHANGELOG line.
    pub what: String,
    /// Why it is of its kind under the policy.
    pub why: String,
    /// Where the listing shows it: the header line of its item and its own line. `None` for what
    /// the listing does not show (docs, traits, required setters and fields).
    pub at: Option<(String, String)>,
    /// The CHANGELOG heading it goes under: `Added`, `Changed` or `Removed`.
    pub heading: &'static str,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind.tag(), self.what, self.why)
    }
}

/// The changes between two surfaces.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub changes: Vec<Change>,
}

impl Report {
    pub fn count(&self, kind: Kind) -> usize {
        self.changes.iter().filter(|c| c.kind == kind).count()
    }

    /// `major`, `minor` or `patch`: the release the worst change needs.
    pub fn level(&self) -> &'static str {
        if self.count(Kind::Breaking) > 0 {
            "major"
        } else if self.count(Kind::Additive) > 0 {
            "minor"
        } else {
            "patch"
        }
    }

    /// `semver: minor (0 breaking, 1 additive, 0 docs)`.
    pub fn summary(&self) -> String {
        format!(
            "semver: {} ({} breaking, {} additive, {} docs)",
            self.level(),
            self.count(Kind::Breaking),
            self.count(Kind::Additive),
            self.count(Kind::Docs)
        )
    }

    /// A draft CHANGELOG entry, in Keep a Changelog's headings, to paste under `[Unreleased]`.
    pub fn changelog(&self) -> String {
        let mut out = String::new();
        for heading in ["Added", "Changed", "Removed"] {
            let entries: Vec<&Change> = self
                .changes
                .iter()
                .filter(|c| c.heading == heading)
                .collect();
            if entries.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("### {heading}\n"));
            for c in entries {
                let breaking = if c.kind == Kind::Breaking && heading == "Changed" {
                    "**Breaking:** "
                } else {
                    ""
                };
                out.push_str(&format!("- {breaking}{}.\n", capitalised(&c.what)));
            }
        }
        out
    }
}

/// Classifies the change between two pairs of reviewed outputs: the surface listing and the
/// generated code each was read from. A pair that cannot be read is one breaking change.
pub fn classify(old_listing: &str, old_code: &str, new_listing: &str, new_code: &str) -> Report {
    let surfaces = Surface::from_listing(old_listing, old_code)
        .map_err(|e| format!("the reviewed snapshots cannot be read as an API surface ({e})"))
        .and_then(|old| {
            Surface::from_listing(new_listing, new_code)
                .map(|new| (old, new))
                .map_err(|e| format!("the generated code cannot be read as an API surface ({e})"))
        });
    match surfaces {
        Ok((old, new)) => compare(&old, &new, old_code, new_code),
        Err(e) => {
            let mut out = Changes::default();
            out.push(
                Kind::Breaking,
                "the API surface could not be compared".into(),
                &format!("{e}; counted as breaking until a reviewer has read the diff"),
                None,
            );
            Report { changes: out.0 }
        }
    }
}

/// Compares two surfaces, and the code they were read from for what the surface leaves out.
pub fn compare(old: &Surface, new: &Surface, old_code: &str, new_code: &str) -> Report {
    let mut out = Changes::default();
    operations(old, new, &mut out);
    types(old, new, &mut out);
    // Generated code that changed where the surface did not: docs elsewhere (the client's, the
    // builders'), or code the surface does not describe (a validation rule, a serde attribute).
    if old_code != new_code && out.0.iter().all(|c| c.kind == Kind::Docs) {
        if without_docs(old_code) != without_docs(new_code) {
            out.push(
                Kind::Breaking,
                "generated code changed outside the API surface".into(),
                "no item of the surface changed, but the code did beyond its docs (a validation \
                 rule, a serde attribute, a status code); callers may see another behaviour, so \
                 it counts as breaking until a reviewer has read the code diff",
                None,
            );
        } else if out.0.is_empty() {
            out.push(
                Kind::Docs,
                "docs of the generated code changed".into(),
                DOCS,
                None,
            );
        }
    }
    Report { changes: out.0 }
}

const DOCS: &str = "documentation only; no code changes";

#[derive(Default)]
struct Changes(Vec<Change>);

impl Changes {
    fn push(&mut self, kind: Kind, what: String, why: &str, at: Option<(String, String)>) {
        let heading = match kind {
            Kind::Additive => "Added",
            _ if what.ends_with(" removed") => "Removed",
            _ => "Changed",
        };
        self.0.push(Change {
            kind,
            what,
            why: why.into(),
            at,
            heading,
        });
    }
}

fn operations(old: &Surface, new: &Surface, out: &mut Changes) {
    for o in &old.operations {
        let id = &o.route.id;
        let Some(n) = new.operations.iter().find(|n| n.route.id == *id) else {
            out.push(
                Kind::Breaking,
                format!("operation `{id}` removed"),
                &format!("calls to `client.{id}()` no longer compile"),
                Some((o.header(), o.header())),
            );
            continue;
        };
        let header = n.header();
        if o.route != n.route {
            out.push(
                Kind::Breaking,
                format!(
                    "operation `{id}` moved (`{} {}` -> `{} {}`)",
                    o.route.method, o.route.path, n.route.method, n.route.path
                ),
                "the same call reaches another endpoint, which a server may not serve",
                Some((header.clone(), header.clone())),
            );
        }
        setters(o, n, out);
        if o.send != n.send {
            out.push(
                Kind::Breaking,
                format!(
                    "result of operation `{id}` retyped (`Ok({}), Err({})` -> `Ok({}), Err({})`)",
                    o.send.0, o.send.1, n.send.0, n.send.1
                ),
                "code that uses the result of `send` no longer compiles",
                Some((header.clone(), n.send_line())),
            );
        }
        match (&o.call, &n.call, n.call_line()) {
            (None, Some(_), Some(line)) => out.push(
                Kind::Additive,
                format!("method `call` added to the builder of operation `{id}`"),
                "a new method; `send` is unchanged",
                Some((header.clone(), line)),
            ),
            (Some(_), None, _) => out.push(
                Kind::Breaking,
                format!("method `call` removed from the builder of operation `{id}`"),
                "code that calls it no longer compiles",
                Some((header.clone(), header.clone())),
            ),
            (Some(oc), Some(nc), Some(line)) if oc != nc => out.push(
                Kind::Breaking,
                format!(
                    "result of `call` of operation `{id}` retyped (`Ok({}), Err({})` -> `Ok({}), Err({})`)",
                    oc.0, oc.1, nc.0, nc.1
                ),
                "code that uses the result of `call` no longer compiles",
                Some((header.clone(), line)),
            ),
            _ => {}
        }
        if o.docs != n.docs {
            out.push(Kind::Docs, format!("docs of operation `{id}`"), DOCS, None);
        }
    }
    for n in &new.operations {
        if !old.operations.iter().any(|o| o.route.id == n.route.id) {
            out.push(
                Kind::Additive,
                format!(
                    "operation `{}` added (`{} {}`)",
                    n.route.id, n.route.method, n.route.path
                ),
                "a new method on the client's extension trait; existing calls are unchanged \
                 (the `Client…Ext` traits are implemented by the crate only)",
                Some((n.header(), n.header())),
            );
        }
    }
}

fn setters(o: &Operation, n: &Operation, out: &mut Changes) {
    let id = &o.route.id;
    let at = |s: &Setter| Some((n.header(), s.line()));
    for os in &o.setters {
        let name = &os.name;
        let Some(ns) = n.setters.iter().find(|s| s.name == *name) else {
            out.push(
                Kind::Breaking,
                format!("setter `{id}().{name}()` removed"),
                "calls that set it no longer compile",
                Some((o.header(), os.line())),
            );
            continue;
        };
        if os.ty != ns.ty {
            out.push(
                Kind::Breaking,
                format!(
                    "setter `{id}().{name}()` retyped (`{}` -> `{}`)",
                    os.ty, ns.ty
                ),
                "a value of the old type may no longer convert into the new one",
                at(ns),
            );
        } else if ns.required && !os.required {
            out.push(
                Kind::Breaking,
                format!("setter `{id}().{name}()` made required"),
                "calls that leave it out now fail at `send` with `Error::InvalidRequest`",
                at(ns),
            );
        } else if os.required && !ns.required {
            out.push(
                Kind::Additive,
                format!("setter `{id}().{name}()` made optional"),
                "calls that set it work as before; calls may now leave it out",
                at(ns),
            );
        }
    }
    for ns in &n.setters {
        if o.setters.iter().any(|s| s.name == ns.name) {
            continue;
        }
        let what = format!("setter `{id}().{}({})` added", ns.name, ns.ty);
        if ns.required {
            out.push(
                Kind::Breaking,
                format!("{what}, required"),
                "calls written before it fail at `send` with `Error::InvalidRequest`",
                at(ns),
            );
        } else {
            out.push(
                Kind::Additive,
                format!("{what}, optional"),
                "calls that leave it out send what they sent before",
                at(ns),
            );
        }
    }
}

fn types(old: &Surface, new: &Surface, out: &mut Changes) {
    for o in &old.types {
        match new.types.iter().find(|n| n.name == o.name) {
            Some(n) => type_change(o, n, new, out),
            None => out.push(
                Kind::Breaking,
                format!("type `{}` removed", o.name),
                "code that names it no longer compiles",
                Some((o.header(), o.header())),
            ),
        }
    }
    for n in &new.types {
        if !old.types.iter().any(|o| o.name == n.name) {
            out.push(
                Kind::Additive,
                format!("type `{}` added", n.name),
                "a new name; nothing that exists changes",
                Some((n.header(), n.header())),
            );
        }
    }
}

fn type_change(o: &TypeDef, n: &TypeDef, new: &Surface, out: &mut Changes) {
    let name = &n.name;
    for t in o.traits.difference(&n.traits) {
        out.push(
            Kind::Breaking,
            format!("`{name}` no longer implements `{t}`"),
            "code that relies on the trait no longer compiles",
            None,
        );
    }
    for t in n.traits.difference(&o.traits) {
        out.push(
            Kind::Additive,
            format!("`{name}` implements `{t}`"),
            "a new trait implementation; existing code is unchanged",
            None,
        );
    }
    if o.docs != n.docs {
        out.push(Kind::Docs, format!("docs of type `{name}`"), DOCS, None);
    }
    match (&o.shape, &n.shape) {
        (Shape::Struct(of), Shape::Struct(nf)) => fields(o, n, of, nf, out),
        (
            Shape::Enum {
                untagged: ou,
                variants: ov,
            },
            Shape::Enum {
                untagged: nu,
                variants: nv,
            },
        ) if ou == nu => variants(o, n, ov, nv, new, out),
        (os, ns) if os == ns => {}
        _ => out.push(
            Kind::Breaking,
            format!(
                "type `{name}` reshaped (`{}` -> `{}`)",
                o.header(),
                n.header()
            ),
            "code that builds, reads or matches it no longer compiles",
            Some((n.header(), n.header())),
        ),
    }
}

fn fields(o: &TypeDef, n: &TypeDef, old: &[Field], new: &[Field], out: &mut Changes) {
    let t = &n.name;
    let at = |f: &Field| Some((n.header(), f.line()));
    for of in old {
        let name = &of.name;
        let Some(nf) = new.iter().find(|f| f.name == *name) else {
            out.push(
                Kind::Breaking,
                format!("field `{t}.{name}` removed"),
                "code that reads, sets or builds it no longer compiles",
                Some((o.header(), of.line())),
            );
            continue;
        };
        if of.ty != nf.ty {
            let (what, why) = if of.ty == format!("Option<{}>", nf.ty) {
                (
                    "made required",
                    "code that reads it as an `Option` no longer compiles, and builders that \
                     leave it out fail",
                )
            } else {
                (
                    "retyped",
                    "code that reads or sets it with the old type no longer compiles",
                )
            };
            out.push(
                Kind::Breaking,
                format!("field `{t}.{name}` {what} (`{}` -> `{}`)", of.ty, nf.ty),
                why,
                at(nf),
            );
        } else if nf.required && !of.required {
            out.push(
                Kind::Breaking,
                format!("field `{t}.{name}` made required"),
                "builders that leave it out now fail with `<field>: is required`",
                at(nf),
            );
        } else if of.required && !nf.required {
            out.push(
                Kind::Additive,
                format!("field `{t}.{name}` made optional"),
                "builders that set it work as before; builders may now leave it out",
                at(nf),
            );
        }
        if of.wire != nf.wire || of.flatten != nf.flatten {
            out.push(
                Kind::Breaking,
                format!(
                    "field `{t}.{name}` renamed on the wire (`{}` -> `{}`)",
                    of.line().trim(),
                    nf.line().trim()
                ),
                "the same value is sent and read under another name or shape",
                at(nf),
            );
        }
        if of.docs != nf.docs {
            out.push(
                Kind::Docs,
                format!("docs of field `{t}.{name}`"),
                DOCS,
                None,
            );
        }
    }
    for nf in new.iter().filter(|f| !old.iter().any(|o| o.name == f.name)) {
        let what = format!("field `{t}.{}: {}` added", nf.name, nf.ty);
        if nf.required {
            out.push(
                Kind::Breaking,
                format!("{what}, required"),
                "builders written before it fail with `<field>: is required`",
                at(nf),
            );
        } else {
            out.push(
                Kind::Additive,
                format!("{what}, optional"),
                "builders leave it unset, so code that builds with them is unchanged (struct \
                 literals are not covered)",
                at(nf),
            );
        }
    }
}

fn variants(
    o: &TypeDef,
    n: &TypeDef,
    old: &[Variant],
    new: &[Variant],
    surface: &Surface,
    out: &mut Changes,
) {
    let t = &n.name;
    let at = |v: &Variant| Some((n.header(), v.line()));
    for ov in old {
        let name = &ov.name;
        match new.iter().find(|v| v.name == *name) {
            None => out.push(
                Kind::Breaking,
                format!("variant `{t}::{name}` removed"),
                "code that names it no longer compiles",
                Some((o.header(), ov.line())),
            ),
            Some(nv) => {
                if ov.fields != nv.fields || ov.wire != nv.wire {
                    out.push(
                        Kind::Breaking,
                        format!(
                            "variant `{t}::{name}` changed (`{}` -> `{}`)",
                            ov.line().trim(),
                            nv.line().trim()
                        ),
                        "code that builds or matches it no longer compiles, or it is sent and \
                         read as another value",
                        at(nv),
                    );
                }
                if ov.docs != nv.docs {
                    out.push(
                        Kind::Docs,
                        format!("docs of variant `{t}::{name}`"),
                        DOCS,
                        None,
                    );
                }
            }
        }
    }
    for nv in new.iter().filter(|v| !old.iter().any(|o| o.name == v.name)) {
        let value = nv.wire.as_deref().unwrap_or(&nv.name);
        match open_enum_of(surface, t) {
            Some(open) => out.push(
                Kind::Additive,
                format!(
                    "value `{value}` added to the open enum `{open}` (`{t}::{}`)",
                    nv.name
                ),
                &format!(
                    "under the policy a `match` on `{t}` has a `_` arm, and the value used to \
                     arrive as `{open}::Other`"
                ),
                at(nv),
            ),
            None => out.push(
                Kind::Breaking,
                format!(
                    "value `{value}` added to the closed enum `{t}` (`{t}::{}`)",
                    nv.name
                ),
                "closed enums are exhaustive: a `match` on it without a `_` arm no longer compiles",
                at(nv),
            ),
        }
    }
}

/// The open enum that `name` is the known half of: an untagged enum with an `Other` variant and
/// a variant that holds `name`.
fn open_enum_of<'a>(surface: &'a Surface, name: &str) -> Option<&'a str> {
    surface.types.iter().find_map(|t| match &t.shape {
        Shape::Enum {
            untagged: true,
            variants,
        } if variants.iter().any(|v| v.name == "Other")
            && variants
                .iter()
                .any(|v| v.fields.as_deref() == Some(&[name.to_string()][..])) =>
        {
            Some(t.name.as_str())
        }
        _ => None,
    })
}

/// The code as tokens without its `#[doc]` attributes (`///` comments become them), to tell a
/// docs-only change from one in the code.
fn without_docs(code: &str) -> String {
    fn is_punct(t: Option<&TokenTree>, c: char) -> bool {
        matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == c)
    }
    fn strip(tokens: TokenStream) -> TokenStream {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut out = Vec::with_capacity(trees.len());
        let mut i = 0;
        while i < trees.len() {
            if is_punct(trees.get(i), '#') {
                // `#[doc = ".."]`, or `#![doc = ".."]`
                let bang = usize::from(is_punct(trees.get(i + 1), '!'));
                if let Some(TokenTree::Group(g)) = trees.get(i + 1 + bang) {
                    let first = g.stream().into_iter().next();
                    if g.delimiter() == Delimiter::Bracket
                        && matches!(first, Some(TokenTree::Ident(ref d)) if d == "doc")
                    {
                        i += 2 + bang;
                        continue;
                    }
                }
            }
            out.push(match &trees[i] {
                TokenTree::Group(g) => {
                    TokenTree::Group(Group::new(g.delimiter(), strip(g.stream())))
                }
                t => t.clone(),
            });
            i += 1;
        }
        out.into_iter().collect()
    }
    // Code that does not parse is compared whole.
    match code.parse::<TokenStream>() {
        Ok(tokens) => strip(tokens).to_string(),
        Err(_) => code.to_string(),
    }
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
