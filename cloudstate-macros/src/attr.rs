//! The arguments of `#[event_sourced]`, `#[value_entity]`, `#[crdt]` and
//! `#[action]`, and of their method attributes.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, Lit, LitStr, Meta, Token};

use crate::ctxt::Ctxt;

/// Which of our macros is expanding: they share the expansion and differ in
/// the method attributes they allow and whether handlers may be `async`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// `#[event_sourced]`: every method attribute, synchronous handlers.
    EventSourced,
    /// `#[value_entity]`: command handlers only, synchronous.
    ValueEntity,
    /// `#[action]`: command handlers only, `async fn` allowed.
    Action,
    /// `#[crdt]`: command handlers only, synchronous.
    Crdt,
}

impl Kind {
    /// The macro's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::EventSourced => "event_sourced",
            Kind::ValueEntity => "value_entity",
            Kind::Action => "action",
            Kind::Crdt => "crdt",
        }
    }

    /// Whether methods of this kind of impl may carry `role`'s attribute.
    pub(crate) fn allows(self, role: Role) -> bool {
        self == Kind::EventSourced || role == Role::CommandHandler
    }

    /// Whether handlers may be `async fn`.
    pub(crate) fn allows_async(self) -> bool {
        self == Kind::Action
    }

    /// What the generated trait is called, in messages.
    pub(crate) fn trait_example(self) -> &'static str {
        match self {
            Kind::EventSourced => {
                "a generated entity trait, such as `impl shopping_cart::ShoppingCart for Cart`"
            }
            Kind::ValueEntity => {
                "a generated value entity trait, such as `impl shopping_cart::ShoppingCart for Cart`"
            }
            Kind::Action => "a generated action trait, such as `impl greeter::Greeter for Greeter`",
            Kind::Crdt => {
                "a generated CRDT entity trait, such as `impl presence::Presence for Presence`"
            }
        }
    }
}

/// What an attribute makes of the method it is on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
    /// `#[event_handler]`: applies one event type to the state.
    EventHandler,
    /// `#[command_handler]`: handles one rpc.
    CommandHandler,
    /// `#[snapshot]`: the snapshot of a state.
    Snapshot,
    /// `#[snapshot_handler]`: a state restored from a snapshot.
    SnapshotHandler,
}

impl Role {
    const ALL: [Role; 4] = [
        Role::EventHandler,
        Role::CommandHandler,
        Role::Snapshot,
        Role::SnapshotHandler,
    ];

    /// The attribute's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::EventHandler => "event_handler",
            Role::CommandHandler => "command_handler",
            Role::Snapshot => "snapshot",
            Role::SnapshotHandler => "snapshot_handler",
        }
    }

    /// The role of `attr`, when it is one of ours.
    pub(crate) fn of(attr: &Attribute) -> Option<Role> {
        let ident = attr.path().get_ident()?;
        Role::ALL.into_iter().find(|role| ident == role.name())
    }
}

/// One of our attributes on a method.
pub(crate) struct HandlerAttr {
    pub(crate) role: Role,
    /// The attribute's path, where errors about the attribute point.
    pub(crate) path: syn::Path,
    /// `#[command_handler(name = "...")]`: the rpc as the proto names it.
    pub(crate) rpc: Option<LitStr>,
    /// Whether the arguments were all understood.
    pub(crate) valid: bool,
}

/// Reads one of our attributes; argument errors go to `cx` and the
/// attribute then counts as if it had no arguments.
pub(crate) fn parse_handler_attr(attr: &Attribute, role: Role, cx: &Ctxt) -> HandlerAttr {
    let mut rpc = None;
    let mut valid = true;
    match (&attr.meta, role) {
        (Meta::Path(_), _) => {}
        (Meta::List(list), Role::CommandHandler) => {
            let args = cx.ok(list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated));
            valid = args.is_some();
            for arg in args.into_iter().flatten() {
                if !arg.path().is_ident("name") {
                    valid = false;
                    cx.error_spanned_by(
                        arg.path(),
                        format!(
                            "unknown argument `{}`; `#[command_handler]` accepts `name = \"RpcName\"`",
                            arg.path().to_token_stream()
                        ),
                    );
                } else if let Some(name) = string_value(&arg, cx, EXPECTED_RPC_NAME) {
                    if rpc.is_some() {
                        valid = false;
                        cx.error_spanned_by(arg.path(), "duplicate argument `name`");
                    } else if name.value().is_empty() {
                        valid = false;
                        cx.error_spanned_by(&name, "the rpc name must not be empty");
                    } else {
                        rpc = Some(name);
                    }
                } else {
                    valid = false;
                }
            }
        }
        (Meta::List(list), _) => {
            let culprit = if list.tokens.is_empty() {
                list.delimiter.span().join()
            } else {
                list.tokens.span()
            };
            cx.error_at(culprit, format!("`#[{}]` takes no arguments", role.name()));
        }
        (Meta::NameValue(nv), _) => {
            cx.error_spanned_by(
                &nv.value,
                format!("`#[{}]` takes no arguments", role.name()),
            );
        }
    }
    HandlerAttr {
        role,
        path: attr.path().clone(),
        rpc,
        valid,
    }
}

const EXPECTED_RPC_NAME: &str =
    "expected the rpc name as a string, as the proto declares it: `name = \"AddItem\"`";

/// Reads the arguments of `#[event_sourced(...)]` (or of the macro of
/// `kind`), returning `crate = "..."`'s path of the SDK crate; errors go to
/// `cx`.
pub(crate) fn parse_macro_args(args: TokenStream, kind: Kind, cx: &Ctxt) -> Option<syn::Path> {
    let args = cx.ok(Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args))?;
    let mut krate = None;
    for arg in args {
        if !arg.path().is_ident("crate") {
            cx.error_spanned_by(
                arg.path(),
                format!(
                    "unknown argument `{}`; `#[{}]` accepts `crate = \"path::to::cloudstate_sdk\"`",
                    arg.path().to_token_stream(),
                    kind.name()
                ),
            );
            continue;
        }
        let expected =
            "expected the path of the SDK crate as a string: `crate = \"::cloudstate_sdk\"`";
        let Some(lit) = string_value(&arg, cx, expected) else {
            continue;
        };
        let Some(path) = cx.ok(lit.parse::<syn::Path>()) else {
            continue;
        };
        if krate.is_some() {
            cx.error_spanned_by(arg.path(), "duplicate argument `crate`");
        } else {
            krate = Some(path);
        }
    }
    krate
}

/// The string literal of `key = "..."`, or an error saying `expected`.
fn string_value(arg: &Meta, cx: &Ctxt, expected: &str) -> Option<LitStr> {
    match arg {
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(lit), ..
            }) => Some(lit.clone()),
            other => {
                cx.error_spanned_by(other, expected);
                None
            }
        },
        other => {
            cx.error_spanned_by(other, expected);
            None
        }
    }
}
