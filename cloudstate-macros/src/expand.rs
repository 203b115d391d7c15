//! `#[event_sourced]`, `#[value_entity]`, `#[crdt]` and `#[action]`: wire
//! freely named handlers to the methods of a trait that `cloudstate-build`
//! generated. They share this expansion; [`Kind`] holds what tells them apart.
//!
//! The expansion is thin. Every method carrying one of our attributes moves,
//! unchanged but for that attribute, into an inherent impl of the same type,
//! and the trait impl gets a one-line method of the trait's name that calls it.
//! The one-liner takes the user's own parameter types and the span of what
//! chose its name, so rustc checks the handler against the trait and points
//! at the user's code when they disagree.

use std::collections::HashMap;

use heck::ToSnakeCase;
use proc_macro2::{Group, Ident, Spacing, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, ImplItem, ImplItemFn, Item, ItemImpl, LitStr, Pat, Path, Signature, Type,
};

use crate::attr::{self, HandlerAttr, Kind, Role};
use crate::ctxt::Ctxt;

fn not_a_trait_impl(kind: Kind) -> String {
    format!(
        "`#[{}]` applies to an implementation of {}",
        kind.name(),
        kind.trait_example()
    )
}

/// The expansion, and every error found on the way. On errors the expansion
/// is still as complete as it can be, so that rustc does not add errors of
/// its own about the same mistake.
pub(crate) fn expand(
    kind: Kind,
    args: TokenStream,
    item: TokenStream,
) -> (TokenStream, syn::Result<()>) {
    let cx = Ctxt::default();
    // Checked now for the day the expansion names the SDK; nothing does yet.
    let _sdk_path = attr::parse_macro_args(args, kind, &cx);
    let output = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Impl(item)) => expand_impl(item, kind, &cx),
        Ok(Item::Fn(item)) => {
            let (fn_token, ident) = (&item.sig.fn_token, &item.sig.ident);
            cx.error_spanned_by(quote!(#fn_token #ident), not_a_trait_impl(kind));
            item.into_token_stream()
        }
        Ok(other) => {
            match item_head(&other) {
                Some(head) => cx.error_spanned_by(head, not_a_trait_impl(kind)),
                None => cx.error_at(Span::call_site(), not_a_trait_impl(kind)),
            }
            other.into_token_stream()
        }
        Err(error) => {
            cx.push(error);
            item
        }
    };
    (output, cx.check())
}

/// The keyword and name of an item, where an error about the whole item
/// points.
fn item_head(item: &Item) -> Option<TokenStream> {
    fn head(keyword: &impl ToTokens, ident: &Ident) -> TokenStream {
        quote!(#keyword #ident)
    }
    Some(match item {
        Item::Const(item) => head(&item.const_token, &item.ident),
        Item::Enum(item) => head(&item.enum_token, &item.ident),
        Item::Mod(item) => head(&item.mod_token, &item.ident),
        Item::Static(item) => head(&item.static_token, &item.ident),
        Item::Struct(item) => head(&item.struct_token, &item.ident),
        Item::Trait(item) => head(&item.trait_token, &item.ident),
        Item::Type(item) => head(&item.type_token, &item.ident),
        Item::Union(item) => head(&item.union_token, &item.ident),
        _ => return None,
    })
}

fn expand_impl(mut item: ItemImpl, kind: Kind, cx: &Ctxt) -> TokenStream {
    let trait_path = match &item.trait_ {
        Some((None, path, _)) => path.clone(),
        Some((Some(bang), _, _)) => {
            cx.error_spanned_by(
                bang,
                format!("`#[{}]` does not apply to negative impls", kind.name()),
            );
            return without_our_attrs(item);
        }
        None => {
            let (impl_token, generics, self_ty) = (&item.impl_token, &item.generics, &item.self_ty);
            cx.error_spanned_by(
                quote!(#impl_token #generics #self_ty),
                not_a_trait_impl(kind),
            );
            return without_our_attrs(item);
        }
    };

    let assoc_types: Vec<Ident> = item
        .items
        .iter()
        .filter_map(|item| match item {
            ImplItem::Type(ty) => Some(ty.ident.clone()),
            _ => None,
        })
        .collect();

    // The impl's items in order; `None` marks where a handler was.
    let mut kept: Vec<Option<ImplItem>> = Vec::new();
    let mut handlers: Vec<Handler> = Vec::new();
    // Methods whose attribute this kind of impl does not allow: they move to
    // the inherent impl, with no trait method to stand for them.
    let mut rejected: Vec<ImplItemFn> = Vec::new();
    for impl_item in std::mem::take(&mut item.items) {
        match impl_item {
            ImplItem::Fn(mut method) => {
                let mut ours = take_our_attrs(&mut method.attrs).into_iter();
                let Some((role, first)) = ours.next() else {
                    kept.push(Some(ImplItem::Fn(method)));
                    continue;
                };
                for (other, attr) in ours {
                    if other == role {
                        cx.error_spanned_by(attr, format!("duplicate `#[{}]`", role.name()));
                    } else {
                        cx.error_spanned_by(
                            attr,
                            format!(
                                "`#[{}]` cannot be combined with `#[{}]`: a method is one kind of handler",
                                other.name(),
                                role.name()
                            ),
                        );
                    }
                }
                if !kind.allows(role) {
                    cx.error_spanned_by(
                        &first,
                        format!(
                            "`#[{}]` is for `#[{}]` impls; `#[{}]` allows only `#[{}]`",
                            role.name(),
                            Kind::EventSourced.name(),
                            kind.name(),
                            Role::CommandHandler.name()
                        ),
                    );
                    rejected.push(method);
                    continue;
                }
                let attr = attr::parse_handler_attr(&first, role, cx);
                handlers.push(Handler::new(attr, method, kind, cx));
                kept.push(None);
            }
            mut other => {
                if let Some(attrs) = item_attrs_mut(&mut other) {
                    for (role, attr) in take_our_attrs(attrs) {
                        cx.error_spanned_by(
                            attr,
                            format!("`#[{}]` applies to methods only", role.name()),
                        );
                    }
                }
                kept.push(Some(other));
            }
        }
    }

    check_names(&kept, &mut handlers, cx);
    let partner_stub = check_snapshot_pair(&kept, &handlers, cx);

    // The trait impl: its own items in place, a delegating method where each
    // handler was.
    let mut handler_slots = handlers.iter();
    item.items = kept
        .into_iter()
        .filter_map(|slot| match slot {
            Some(item) => Some(item),
            None => handler_slots
                .next()
                .and_then(Handler::trait_method)
                .map(ImplItem::Verbatim),
        })
        .chain(partner_stub.map(ImplItem::Verbatim))
        .collect();

    let methods = handlers
        .iter()
        .map(|handler| &handler.method)
        .chain(&rejected);
    let inherent = inherent_impl(&item, &trait_path, &assoc_types, methods, cx.has_errors());
    let mut output = item.into_token_stream();
    output.extend(inherent);
    output
}

/// The inherent impl holding the handlers. It sits in a `const _` block that
/// brings the trait into scope, so that handler bodies resolve
/// `self.initial_state(..)` as they did inside the trait impl.
fn inherent_impl<'a>(
    item: &ItemImpl,
    trait_path: &Path,
    assoc_types: &[Ident],
    methods: impl Iterator<Item = &'a ImplItemFn>,
    has_errors: bool,
) -> TokenStream {
    let trait_tokens = trait_path.to_token_stream();
    let methods: Vec<TokenStream> = methods
        .map(|method| qualify_self_types(method.to_token_stream(), assoc_types, &trait_tokens))
        .collect();
    if methods.is_empty() {
        return TokenStream::new();
    }
    let mut trait_use = trait_path.clone();
    for segment in &mut trait_use.segments {
        segment.arguments = syn::PathArguments::None;
    }
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    let self_ty = &item.self_ty;
    // A handler that failed its checks has no caller: no second complaint.
    let dead_code = has_errors.then(|| quote!(#[allow(dead_code)]));
    // The lints that fire on these methods only because they left the trait
    // impl: rustc and clippy exempt trait methods, whose signatures are given.
    // No `#[automatically_derived]`: these are the user's methods, to be
    // linted and measured by coverage like any other.
    quote! {
        const _: () = {
            #[allow(unused_imports)]
            use #trait_use as _;

            #[allow(
                clippy::missing_const_for_fn,
                clippy::needless_pass_by_ref_mut,
                clippy::needless_pass_by_value,
                clippy::ptr_arg,
                clippy::trivially_copy_pass_by_ref,
                clippy::unnecessary_wraps,
                clippy::unused_async,
                clippy::unused_self,
                clippy::wrong_self_convention,
            )]
            #dead_code
            impl #impl_generics #self_ty #where_clause {
                #(#methods)*
            }
        };
    }
}

/// A method carrying one of our attributes.
struct Handler {
    role: Role,
    /// The attribute's path.
    attr_span: Span,
    /// The method, without our attribute.
    method: ImplItemFn,
    /// The handler's `async`, when its kind allows it: the trait method is
    /// then `async` too, and awaits it.
    asyncness: Option<syn::token::Async>,
    /// The trait method it implements, spanned on what chose its name.
    target: Option<Ident>,
    /// What chose the target's name, where errors about the name point.
    culprit: TokenStream,
    /// An event handler's event: its type and the type's simple name.
    event: Option<(Type, String)>,
    /// Whether the delegating method can call the handler; otherwise a stub of
    /// the trait method's shape stands in for it.
    callable: bool,
    /// Whether another handler or item already implements the target.
    duplicate: bool,
}

impl Handler {
    fn new(attr: HandlerAttr, method: ImplItemFn, kind: Kind, cx: &Ctxt) -> Self {
        let what = attr.role.name();
        let sig = &method.sig;
        let mut callable = true;
        let mut asyncness = None;
        if kind.allows_async() {
            asyncness = sig.asyncness;
        } else if let Some(asyncness) = &sig.asyncness {
            cx.error_spanned_by(
                asyncness,
                format!("`#[{what}]` methods cannot be `async`: handlers run synchronously"),
            );
            callable = false;
        }
        if let Some(unsafety) = &sig.unsafety {
            cx.error_spanned_by(unsafety, format!("`#[{what}]` methods cannot be `unsafe`"));
            callable = false;
        }
        let mut event = None;
        let (target, culprit) = match attr.role {
            Role::EventHandler => {
                let (found, signature_ok) = check_event_signature(sig, cx);
                callable &= signature_ok;
                let target = found.as_ref().and_then(|found| event_method(found, cx));
                let culprit = found.as_ref().map_or_else(
                    || sig.ident.to_token_stream(),
                    |found| found.path.to_token_stream(),
                );
                event = found.map(|found| (found.path, found.name));
                (target, culprit)
            }
            // Arguments in error without a name leave the rpc unknown: no
            // trait method rather than one of a name that may well be wrong.
            Role::CommandHandler => match &attr.rpc {
                Some(rpc) => (rpc_method(rpc, cx), rpc.to_token_stream()),
                None if !attr.valid => (None, sig.ident.to_token_stream()),
                None => (Some(sig.ident.clone()), sig.ident.to_token_stream()),
            },
            Role::Snapshot => (
                Some(Ident::new("snapshot", attr.path.span())),
                attr.path.to_token_stream(),
            ),
            Role::SnapshotHandler => (
                Some(Ident::new("restore", attr.path.span())),
                attr.path.to_token_stream(),
            ),
        };
        Handler {
            role: attr.role,
            attr_span: attr.path.span(),
            method,
            asyncness,
            target,
            culprit,
            event,
            callable,
            duplicate: false,
        }
    }

    fn has_cfg(&self) -> bool {
        self.method
            .attrs
            .iter()
            .any(|attr| attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr"))
    }

    /// The method of the trait impl that stands for this handler.
    fn trait_method(&self) -> Option<TokenStream> {
        let target = self.target.as_ref()?;
        if self.duplicate {
            return None;
        }
        let sig = &self.method.sig;
        let span = target.span();
        let cfgs = self
            .method
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("cfg"));
        let generics = &sig.generics;
        let where_clause = &sig.generics.where_clause;
        let output = &sig.output;
        // Spanned like the name: rustc's errors about the method span from
        // its first token to its name.
        let asyncness = self.asyncness.map(|_| quote_spanned!(span=> async));

        if !self.callable {
            // Stubs only keep the impl complete while the build fails on our
            // error; their bodies never run.
            if let Some((event, _)) = &self.event {
                return Some(quote_spanned! {span=>
                    #(#cfgs)*
                    fn #target(&self, _: &mut Self::State, _: &#event) {}
                });
            }
            let params = sig.inputs.iter().map(|input| match input {
                FnArg::Receiver(receiver) => receiver_tokens(receiver),
                FnArg::Typed(param) => {
                    let ty = &param.ty;
                    quote!(_: #ty)
                }
            });
            return Some(quote_spanned! {span=>
                #(#cfgs)*
                #asyncness fn #target #generics (#(#params),*) #output #where_clause {
                    ::core::unreachable!()
                }
            });
        }

        let mut params = Vec::new();
        let mut args = Vec::new();
        for (index, input) in sig.inputs.iter().enumerate() {
            match input {
                FnArg::Receiver(receiver) => {
                    params.push(receiver_tokens(receiver));
                    args.push(quote!(self));
                }
                FnArg::Typed(param) => {
                    let name = param_name(&param.pat, index);
                    let ty = &param.ty;
                    params.push(quote!(#name: #ty));
                    args.push(name.into_token_stream());
                }
            }
        }
        let handler = &sig.ident;
        let call = quote_spanned!(span=> Self::#handler(#(#args),*));
        let call = match asyncness {
            Some(_) => quote_spanned!(span=> #call.await),
            None => call,
        };
        Some(quote_spanned! {span=>
            #(#cfgs)*
            #[inline]
            #asyncness fn #target #generics (#(#params),*) #output #where_clause {
                #call
            }
        })
    }
}

/// An event handler's event type, as its signature names it.
struct FoundEvent {
    /// The type path, `persistence::ItemAdded`.
    path: Type,
    /// Its last segment, `ItemAdded`.
    name: String,
    name_span: Span,
}

/// Checks `fn(&self, state: &mut Self::State, event: &Event)`, reporting each
/// wrong part; returns the event type when one can be made out, and whether
/// the signature is right.
fn check_event_signature(sig: &Signature, cx: &Ctxt) -> (Option<FoundEvent>, bool) {
    let mut ok = true;
    let params = sig.paren_token.span.join();
    match sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) if is_shared_reference(&receiver.ty) => {}
        Some(FnArg::Receiver(receiver)) => {
            cx.error_spanned_by(receiver, "an event handler takes `&self`");
            ok = false;
        }
        _ => {
            cx.error_at(params, "an event handler takes `&self` first");
            ok = false;
        }
    }
    let typed: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(param) => Some(param),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let found = if let [_state, event] = typed[..] {
        event_type(&event.ty, Some(cx), &mut ok)
    } else {
        cx.error_at(
            params,
            "an event handler takes the state and the event after `&self`: \
             `(&self, state: &mut Self::State, event: &ItemAdded)`",
        );
        ok = false;
        // The last parameter that looks like an event still names the trait
        // method, so that a stub can stand in for it.
        typed
            .iter()
            .rev()
            .filter(|param| looks_like_event(&param.ty))
            .find_map(|param| event_type(&param.ty, None, &mut ok))
    };
    (found, ok)
}

/// The event type of an event parameter's type, `&Event`; errors go to `cx`
/// when it is given.
fn event_type(ty: &Type, cx: Option<&Ctxt>, ok: &mut bool) -> Option<FoundEvent> {
    let inner = match ungroup(ty) {
        Type::Reference(reference) => {
            if let Some(mutability) = &reference.mutability {
                if let Some(cx) = cx {
                    let and = &reference.and_token;
                    cx.error_spanned_by(
                        quote!(#and #mutability),
                        "an event handler takes the event by shared reference, not `&mut`",
                    );
                }
                *ok = false;
            }
            ungroup(&reference.elem)
        }
        other => {
            *ok = false;
            if let Some(cx) = cx {
                let name = simple_name(other).unwrap_or_else(|| "ItemAdded".to_owned());
                cx.error_spanned_by(
                    other,
                    format!("an event handler takes the event by reference: `&{name}`"),
                );
            }
            other
        }
    };
    match inner {
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            Some(FoundEvent {
                path: inner.clone(),
                name: last.ident.unraw().to_string(),
                name_span: last.ident.span(),
            })
        }
        other => {
            *ok = false;
            if let Some(cx) = cx {
                cx.error_spanned_by(
                    other,
                    "expected the event's message type, such as `&ItemAdded`",
                );
            }
            None
        }
    }
}

/// Reports handlers whose trait method another handler, or the impl itself,
/// already implements; the later one loses its delegating method.
fn check_names(kept: &[Option<ImplItem>], handlers: &mut [Handler], cx: &Ctxt) {
    /// Who implements a trait method.
    enum Owner {
        /// A method written directly in the trait impl.
        Impl,
        /// The handler of this index.
        Handler(usize),
    }
    let mut owners: HashMap<String, Owner> = HashMap::new();
    for item in kept.iter().flatten() {
        if let ImplItem::Fn(method) = item {
            owners.insert(method.sig.ident.unraw().to_string(), Owner::Impl);
        }
    }
    for index in 0..handlers.len() {
        let handler = &handlers[index];
        // Handlers under `cfg` may well exclude each other.
        let Some(target) = handler.target.as_ref().filter(|_| !handler.has_cfg()) else {
            continue;
        };
        let name = target.unraw().to_string();
        let Some(owner) = owners.get(&name) else {
            owners.insert(name, Owner::Handler(index));
            continue;
        };
        let first = match owner {
            Owner::Impl => None,
            Owner::Handler(first) => Some(&handlers[*first]),
        };
        let already = match first {
            Some(first) => format!("`{}` already handles it", first.method.sig.ident),
            None => format!("`{name}` is implemented directly in this impl"),
        };
        let message = match (&handler.event, handler.role, first) {
            (Some((_, event)), _, _) => format!("duplicate event handler for `{event}`; {already}"),
            (None, Role::Snapshot, Some(first)) if first.role == Role::Snapshot => format!(
                "duplicate `#[snapshot]`; `{}` already takes snapshots",
                first.method.sig.ident
            ),
            (None, Role::SnapshotHandler, Some(first)) if first.role == Role::SnapshotHandler => {
                format!(
                    "duplicate `#[snapshot_handler]`; `{}` already restores snapshots",
                    first.method.sig.ident
                )
            }
            (None, Role::CommandHandler, _) => {
                format!("duplicate command handler for `{name}`; {already}")
            }
            (None, _, _) => format!("duplicate handler for `{name}`; {already}"),
        };
        cx.error_spanned_by(&handler.culprit, message);
        handlers[index].duplicate = true;
    }
}

/// `#[snapshot]` and `#[snapshot_handler]` come in pairs. Returns a stub of
/// the missing one, so that rustc does not report it missing too.
fn check_snapshot_pair(
    kept: &[Option<ImplItem>],
    handlers: &[Handler],
    cx: &Ctxt,
) -> Option<TokenStream> {
    let has = |role: Role, direct: &str| {
        handlers.iter().any(|handler| handler.role == role)
            || kept
                .iter()
                .flatten()
                .any(|item| matches!(item, ImplItem::Fn(method) if method.sig.ident == direct))
    };
    let first = |role: Role| handlers.iter().find(|handler| handler.role == role);
    if let Some(snapshot) = first(Role::Snapshot).filter(|_| !has(Role::SnapshotHandler, "restore"))
    {
        cx.error_at(
            snapshot.attr_span,
            "`#[snapshot]` needs a `#[snapshot_handler]` method that restores the state from the snapshot",
        );
        let syn::ReturnType::Type(_, ty) = &snapshot.method.sig.output else {
            return None;
        };
        return Some(quote_spanned! {snapshot.attr_span=>
            fn restore(&self, _: &str, _: #ty) -> Self::State {
                ::core::unreachable!()
            }
        });
    }
    if let Some(restore) = first(Role::SnapshotHandler).filter(|_| !has(Role::Snapshot, "snapshot"))
    {
        cx.error_at(
            restore.attr_span,
            "`#[snapshot_handler]` needs a `#[snapshot]` method that takes the snapshots",
        );
        let ty = match restore.method.sig.inputs.iter().nth(2) {
            Some(FnArg::Typed(snapshot)) => &snapshot.ty,
            _ => return None,
        };
        return Some(quote_spanned! {restore.attr_span=>
            fn snapshot(&self, _: &Self::State) -> #ty {
                ::core::unreachable!()
            }
        });
    }
    None
}

/// The trait method of an event handler of `ItemAdded`: `on_item_added`.
fn event_method(event: &FoundEvent, cx: &Ctxt) -> Option<Ident> {
    let name = format!("on_{}", event.name.to_snake_case());
    let ident = method_ident(&name, event.name_span);
    if ident.is_none() {
        cx.error_spanned_by(
            &event.path,
            format!("no event handler method can be named `{name}`"),
        );
    }
    ident
}

/// The trait method of `#[command_handler(name = "AddItem")]`: `add_item`.
fn rpc_method(rpc: &LitStr, cx: &Ctxt) -> Option<Ident> {
    let snake = rpc.value().to_snake_case();
    let ident = method_ident(&snake, rpc.span());
    if ident.is_none() {
        cx.error_spanned_by(
            rpc,
            format!(
                "no rpc method can be named `{snake}`, the snake_case of `{}`",
                rpc.value()
            ),
        );
    }
    ident
}

/// `name` as a method name, raw when it is a keyword: as `cloudstate-build`
/// names the trait's methods.
fn method_ident(name: &str, span: Span) -> Option<Ident> {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern",
        "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move",
        "mut", "pub", "ref", "return", "static", "struct", "trait", "true", "type", "unsafe",
        "use", "where", "while", "abstract", "become", "box", "do", "final", "macro", "override",
        "priv", "try", "typeof", "unsized", "virtual", "yield",
    ];
    if KEYWORDS.contains(&name) {
        Some(Ident::new_raw(name, span))
    } else if syn::parse_str::<Ident>(name).is_ok() {
        Some(Ident::new(name, span))
    } else {
        None
    }
}

/// Removes our attributes from `attrs`, returning them with their roles.
fn take_our_attrs(attrs: &mut Vec<Attribute>) -> Vec<(Role, Attribute)> {
    let mut ours = Vec::new();
    attrs.retain(|attr| match Role::of(attr) {
        Some(role) => {
            ours.push((role, attr.clone()));
            false
        }
        None => true,
    });
    ours
}

fn item_attrs_mut(item: &mut ImplItem) -> Option<&mut Vec<Attribute>> {
    match item {
        ImplItem::Const(item) => Some(&mut item.attrs),
        ImplItem::Fn(item) => Some(&mut item.attrs),
        ImplItem::Type(item) => Some(&mut item.attrs),
        ImplItem::Macro(item) => Some(&mut item.attrs),
        _ => None,
    }
}

/// The fallback for an impl we do not expand: as written, less our
/// attributes, so that rustc does not also report them as unknown.
fn without_our_attrs(mut item: ItemImpl) -> TokenStream {
    for impl_item in &mut item.items {
        if let Some(attrs) = item_attrs_mut(impl_item) {
            take_our_attrs(attrs);
        }
    }
    item.into_token_stream()
}

/// A receiver as a delegating method takes it: no attributes, and no `mut`
/// binding, which only the handler's body can use.
fn receiver_tokens(receiver: &syn::Receiver) -> TokenStream {
    let mut receiver = receiver.clone();
    receiver.attrs.clear();
    if receiver.reference.is_none() {
        receiver.mutability = None;
    }
    receiver.into_token_stream()
}

/// A delegating method's name for a parameter: the handler's own when it is
/// a plain name in use (`_request` would trip `clippy::used_underscore_binding`
/// in the call), else a hygienic one.
fn param_name(pat: &Pat, index: usize) -> Ident {
    match pat {
        Pat::Ident(pat)
            if pat.by_ref.is_none()
                && pat.subpat.is_none()
                && !pat.ident.unraw().to_string().starts_with('_') =>
        {
            pat.ident.clone()
        }
        _ => format_ident!("arg{}", index, span = Span::mixed_site()),
    }
}

/// `&Path`, with a path not starting at `Self`: unlike `&Self::State`.
fn looks_like_event(ty: &Type) -> bool {
    match ungroup(ty) {
        Type::Reference(reference) if reference.mutability.is_none() => {
            matches!(ungroup(&reference.elem), Type::Path(path)
                if path.qself.is_none() && path.path.segments.first().is_some_and(|first| first.ident != "Self"))
        }
        _ => false,
    }
}

fn is_shared_reference(ty: &Type) -> bool {
    matches!(ungroup(ty), Type::Reference(reference) if reference.mutability.is_none())
}

fn ungroup(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(group) => ty = &group.elem,
            Type::Paren(paren) => ty = &paren.elem,
            _ => return ty,
        }
    }
}

fn simple_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(path) => Some(path.path.segments.last()?.ident.unraw().to_string()),
        _ => None,
    }
}

/// Rewrites `Self::State` (for each associated type of the trait impl) into
/// `<Self as Trait>::State`, which an inherent impl needs. Works on tokens, so
/// macro arguments such as `vec![Self::State::default()]` are covered too.
fn qualify_self_types(
    tokens: TokenStream,
    assoc_types: &[Ident],
    trait_path: &TokenStream,
) -> TokenStream {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut output = TokenStream::new();
    for (index, token) in tokens.iter().enumerate() {
        match token {
            TokenTree::Group(group) => {
                let stream = qualify_self_types(group.stream(), assoc_types, trait_path);
                let mut rewritten = Group::new(group.delimiter(), stream);
                rewritten.set_span(group.span());
                output.extend([TokenTree::Group(rewritten)]);
            }
            TokenTree::Ident(ident)
                if ident == "Self" && names_assoc_type(&tokens[index + 1..], assoc_types) =>
            {
                let span = ident.span();
                output.extend(quote_spanned!(span=> <#ident as #trait_path>));
            }
            other => output.extend([other.clone()]),
        }
    }
    output
}

/// Whether `rest` starts with `::Name` for an associated type `Name`.
fn names_assoc_type(rest: &[TokenTree], assoc_types: &[Ident]) -> bool {
    match rest {
        [
            TokenTree::Punct(first),
            TokenTree::Punct(second),
            TokenTree::Ident(name),
            ..,
        ] => {
            first.as_char() == ':'
                && first.spacing() == Spacing::Joint
                && second.as_char() == ':'
                && assoc_types.iter().any(|assoc| assoc == name)
        }
        _ => false,
    }
}
