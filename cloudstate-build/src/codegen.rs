//! Turns services into Rust: a module per service with typed call builders,
//! and for event-sourced entities the handler trait, the event enum and the
//! dispatch onto the SDK's low-level entity API.

use std::collections::{BTreeMap, HashMap, HashSet};

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use proc_macro2::{Ident, Span, TokenStream};
use prost_build::{Method, Service, ServiceGenerator};
use quote::{format_ident, quote};

use crate::declared::Declared;
use crate::eventing::{MethodEventing, Source};
use crate::{Action, Crdt, EventSourced, ResolvedInput, ValueEntity, VariantEncoding};

/// Generates service code from prost's view of each service.
pub(crate) struct Generator {
    /// The declared services, validated, by full service name.
    pub(crate) declared: HashMap<String, Declared>,
    /// The eventing options of the declared services' methods, by full
    /// service name.
    pub(crate) eventing: HashMap<String, Vec<MethodEventing>>,
    /// The SDK crate path, e.g. `::cloudstate_sdk`.
    pub(crate) sdk: TokenStream,
    /// The packages of the bundled protos, whose services the SDK has.
    pub(crate) bundled_packages: HashSet<String>,
}

impl ServiceGenerator for Generator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        if self.bundled_packages.contains(&service.package) {
            return;
        }
        let full_name = full_name(&service.package, &service.proto_name);
        let code = match self.declared.get(&full_name) {
            Some(Declared::EventSourced(decl)) => {
                self.event_sourced_module(&service, &full_name, decl)
            }
            Some(Declared::ValueEntity(decl)) => {
                self.value_entity_module(&service, &full_name, decl)
            }
            Some(Declared::Action(decl)) => self.action_module(&service, &full_name, decl),
            Some(Declared::Crdt(decl)) => self.crdt_module(&service, &full_name, decl),
            None => self.service_module(&service, &full_name, TokenStream::new()),
        };
        let file: syn::File = match syn::parse2(code) {
            Ok(file) => file,
            Err(e) => panic!("cloudstate-build generated invalid code for {full_name}: {e}"),
        };
        buf.push('\n');
        buf.push_str(&prettyplease::unparse(&file));
    }
}

impl Generator {
    /// `pub mod <service>`: the service name, typed call builders, and `extra`.
    fn service_module(
        &self,
        service: &Service,
        full_name: &str,
        extra: TokenStream,
    ) -> TokenStream {
        let sdk = &self.sdk;
        let module = ident(&service.proto_name.to_snake_case());
        let doc = format!(" Calls of `{full_name}`, for forwards and side effects.");
        // A CRDT's server-streaming rpcs get builders too: the test kit runs
        // streamed commands from them.
        let crdt = matches!(self.declared.get(full_name), Some(Declared::Crdt(_)));
        let calls = service
            .methods
            .iter()
            .filter(|m| !m.client_streaming && (!m.server_streaming || crdt))
            .map(|m| {
                let name = ident(&m.proto_name.to_snake_case());
                let input = rust_type(&m.input_type);
                let output = rust_type(&m.output_type);
                let rpc = &m.proto_name;
                let doc = if m.server_streaming {
                    format!(
                        " A call of the server-streaming `{full_name}.{rpc}` with `request`, \
                         as `CrdtTestKit::call_streamed` takes it."
                    )
                } else {
                    format!(" A call of `{full_name}.{rpc}` with `request`.")
                };
                let rpc_doc = paragraph(&m.comments.leading);
                quote! {
                    #[doc = #doc]
                    #rpc_doc
                    pub fn #name(request: &#input) -> #sdk::__private::TypedCall<#output> {
                        #sdk::__private::TypedCall::new(
                            #sdk::__private::ServiceCall::new(SERVICE_NAME, #rpc, #sdk::__private::encode(request)),
                        )
                    }
                }
            });
        let service_doc = paragraph(&service.comments.leading);
        let persistence_id = match self.declared.get(full_name) {
            Some(Declared::EventSourced(EventSourced {
                persistence_id: Some(id),
                ..
            })) => quote! {
                /// The persistence id declared in `build.rs`, the name of the entity's
                /// journal: register it with `EventSourcedOptions::new(PERSISTENCE_ID)`.
                pub const PERSISTENCE_ID: &str = #id;
            },
            _ => TokenStream::new(),
        };
        let topics = self.eventing_of(full_name).iter().filter_map(|e| {
            let topic = e.out.as_ref()?;
            let name = format_ident!("{}_TOPIC", e.method.to_shouty_snake_case());
            let doc = format!(
                " The topic the replies of `{}` are published to (its `(cloudstate.eventing)` `out`).",
                e.method
            );
            Some(quote!(#[doc = #doc] pub const #name: &str = #topic;))
        });
        quote! {
            #[doc = #doc]
            #service_doc
            pub mod #module {
                /// The fully qualified service name.
                pub const SERVICE_NAME: &str = #full_name;
                #persistence_id
                #(#topics)*
                #(#calls)*
                #extra
            }
        }
    }

    fn eventing_of(&self, full_name: &str) -> &[MethodEventing] {
        self.eventing.get(full_name).map_or(&[], Vec::as_slice)
    }

    /// The doc of the trait method of `method`: its proto comments, then
    /// what its eventing option makes of it.
    fn method_docs(&self, full_name: &str, method: &Method) -> TokenStream {
        let docs = comments(&method.comments.leading);
        let Some(eventing) = self
            .eventing_of(full_name)
            .iter()
            .find(|e| e.method == method.proto_name)
        else {
            return docs;
        };
        let mut lines = Vec::new();
        if let Some(source) = &eventing.source {
            let source = match source {
                Source::EventLog(id) => format!("the event log `{id}`"),
                Source::Topic(topic) => format!("the topic `{topic}`"),
            };
            let group = if eventing.consumer_group.is_empty() {
                String::new()
            } else {
                format!(" (consumer group `{}`)", eventing.consumer_group)
            };
            lines.push(format!(
                " Eventing: the proxy calls it with the events of {source}{group}."
            ));
        }
        if let Some(topic) = &eventing.out {
            let name = format!("{}_TOPIC", method.proto_name.to_shouty_snake_case());
            let its = if lines.is_empty() {
                " Eventing: its"
            } else {
                " Its"
            };
            lines.push(format!(
                "{its} replies are published to the topic `{topic}` ([`{name}`])."
            ));
        }
        if lines.is_empty() {
            return docs;
        }
        let gap = (!method.comments.leading.is_empty()).then(|| quote!(#[doc = ""]));
        quote!(#docs #gap #(#[doc = #lines])*)
    }

    fn event_sourced_module(
        &self,
        service: &Service,
        full_name: &str,
        decl: &EventSourced,
    ) -> TokenStream {
        let sdk = &self.sdk;
        let p = quote!(#sdk::__private);
        let trait_name = format_ident!("{}", service.proto_name.to_upper_camel_case());
        // Event and snapshot paths are relative to the package module; the
        // generated module is one level below it.
        // Protobuf events, then JSON events (their types are the user's
        // paths, as written).
        let mut events: Vec<(Ident, TokenStream, Ident, String)> = decl
            .resolved_events
            .iter()
            .map(|(full, path)| {
                let simple = full.rsplit('.').next().unwrap_or(full);
                let variant = format_ident!("{}", simple.to_upper_camel_case());
                let handler = ident(&format!("on_{}", simple.to_snake_case()));
                (variant, rust_type(path), handler, full.clone())
            })
            .collect();
        let protobuf_events = events.len();
        for (json_name, path, simple) in &decl.resolved_json_events {
            let ty: TokenStream = path.parse().unwrap_or_else(|e| {
                panic!("cloudstate-build validated JSON event type [{path}]: {e}")
            });
            events.push((
                format_ident!("{}", simple.to_upper_camel_case()),
                ty,
                ident(&format!("on_{}", simple.to_snake_case())),
                format!("json.cloudstate.io/{json_name}"),
            ));
        }
        let variants = events.iter().map(|(v, ty, _, full)| {
            let doc = format!(" `{full}`");
            quote!(#[doc = #doc] #v(#ty))
        });
        let froms = events.iter().map(|(v, ty, _, _)| {
            quote! {
                impl ::core::convert::From<#ty> for Event {
                    fn from(event: #ty) -> Self { Self::#v(event) }
                }
            }
        });
        let json_names = decl.resolved_json_events.iter().map(|(name, _, _)| name);
        let encode_arms: Vec<TokenStream> = events[..protobuf_events]
            .iter()
            .map(|(v, _, _, _)| quote!(Self::#v(event) => #p::encode(&event)))
            .chain(
                events[protobuf_events..]
                    .iter()
                    .zip(json_names.clone())
                    .map(|((v, _, _, _), name)| quote!(Self::#v(event) => #p::json_to_any(#name, &event))),
            )
            .collect();
        let decode_arms = events[..protobuf_events]
            .iter()
            .map(|(v, _, _, full)| quote!(#full => #p::decode_as(&any).map(Self::#v)));
        // JSON events are matched on their whole type URL, before protobuf
        // names (which a JSON name could equal).
        let json_decode = if decl.resolved_json_events.is_empty() {
            TokenStream::new()
        } else {
            let arms = events[protobuf_events..]
                .iter()
                .zip(json_names)
                .map(|((v, _, _, _), name)| quote!(#name => #p::json_from_any(#name, &any).map(Self::#v)));
            quote! {
                if let ::core::option::Option::Some(name) = any.type_url.strip_prefix(#p::JSON_PREFIX) {
                    return match name {
                        #(#arms,)*
                        _ => ::core::result::Result::Err(#p::PayloadError::unhandled(&any)),
                    };
                }
            }
        };
        // A fixed state is named as the message; else the trait's `type State`.
        let (state_item, state, entity_state, initial_state_fn) = match &decl.resolved_state {
            Some((full, path)) => {
                let ty = rust_type(path);
                let doc = format!(
                    " The state of an entity with no snapshot: by default the default `{full}`."
                );
                let initial = quote! {
                    #[doc = #doc]
                    fn initial_state(&self, entity_id: &str) -> #ty {
                        let _ = entity_id;
                        ::core::default::Default::default()
                    }
                };
                (TokenStream::new(), ty.clone(), ty, initial)
            }
            None => (
                quote! {
                    /// The state of one entity instance.
                    type State: ::core::marker::Send + 'static;
                },
                quote!(Self::State),
                quote!(T::State),
                quote! {
                    /// The state of an entity with no snapshot.
                    fn initial_state(&self, entity_id: &str) -> Self::State;
                },
            ),
        };
        let handler_fns = events.iter().map(|(_, ty, handler, full)| {
            let doc =
                format!(" Applies `{full}` to the state: on replay, and when a command emits it.");
            quote!(#[doc = #doc] fn #handler(&self, state: &mut #state, event: &#ty);)
        });
        let apply_arms = events.iter().map(
            |(v, _, handler, _)| quote!(Event::#v(ref event) => self.0.#handler(state, event)),
        );

        let (snapshot_fns, snapshot_impl) = match &decl.resolved_snapshot {
            Some((full, path)) => {
                // A JSON snapshot is the user's own Rust path, used as written.
                let ty = if decl.resolved_json_snapshot {
                    match syn::parse_str::<syn::Type>(path) {
                        Ok(ty) => quote!(#ty),
                        Err(e) => panic!("cloudstate-build: unparsable snapshot type {path}: {e}"),
                    }
                } else {
                    rust_type(path)
                };
                let (encode_snapshot, decode_snapshot) = if decl.resolved_json_snapshot {
                    (
                        quote!(#p::json_to_any(#full, &self.0.snapshot(state))),
                        quote!(#p::json_from_any::<#ty>(#full, snapshot)?),
                    )
                } else {
                    (
                        quote!(#p::encode(&self.0.snapshot(state))),
                        quote!(#p::decode::<#ty>(snapshot)?),
                    )
                };
                let is_state = !decl.resolved_json_snapshot
                    && decl
                        .resolved_state
                        .as_ref()
                        .is_some_and(|(state, _)| state == full);
                let fns = if is_state {
                    let doc =
                        format!(" The `{full}` snapshot of a state: by default the state itself.");
                    quote! {
                        #[doc = #doc]
                        fn snapshot(&self, state: &#state) -> #ty {
                            ::core::clone::Clone::clone(state)
                        }
                        /// Rebuilds a state from a snapshot: by default the snapshot itself.
                        fn restore(&self, entity_id: &str, snapshot: #ty) -> #state {
                            let _ = entity_id;
                            snapshot
                        }
                    }
                } else {
                    let doc = format!(" The `{full}` snapshot of a state.");
                    quote! {
                        #[doc = #doc]
                        fn snapshot(&self, state: &#state) -> #ty;
                        /// Rebuilds a state from a snapshot.
                        fn restore(&self, entity_id: &str, snapshot: #ty) -> #state;
                    }
                };
                let implementation = quote! {
                    fn snapshot(&self, state: &Self::State) -> ::core::option::Option<#p::Any> {
                        ::core::option::Option::Some(#encode_snapshot)
                    }
                    fn restore(&self, entity_id: &str, snapshot: &#p::Any) -> ::core::result::Result<Self::State, #p::PayloadError> {
                        let snapshot = #decode_snapshot;
                        ::core::result::Result::Ok(self.0.restore(entity_id, snapshot))
                    }
                };
                (fns, implementation)
            }
            // Registration refuses a snapshot interval for this entity.
            None => (
                TokenStream::new(),
                quote! {
                    fn takes_snapshots(&self) -> bool {
                        false
                    }
                },
            ),
        };

        let command_fns = command_fns(self, service, full_name, &p);
        let dispatch_arms = dispatch_arms(service, &p);
        let trait_doc = format!(
            " The handlers of the event-sourced entity `{full_name}`: one per rpc, one per event type, \
             and the snapshot pair when a snapshot type is declared."
        );
        let service_doc = paragraph(&service.comments.leading);
        let entity_doc = format!(
            " Serves a [`{trait_name}`] implementation; register it with \
             `CloudState::register(Entity(handlers), options)`."
        );
        let service_impl_es = service_impl(
            service,
            &p,
            &trait_name,
            "Entity",
            "EventSourcedOptions",
            quote!(.event_sourced(SERVICE_NAME, self, options)),
        );
        let extra = quote! {
            /// The events of this entity.
            #[derive(Clone, PartialEq, Debug)]
            pub enum Event {
                #(#variants,)*
            }
            #(#froms)*
            impl #p::EventCodec for Event {
                fn into_any(self) -> #p::Any {
                    match self {
                        #(#encode_arms,)*
                    }
                }
                fn from_any(any: #p::Any) -> ::core::result::Result<Self, #p::PayloadError> {
                    #json_decode
                    match #p::type_name(&any.type_url) {
                        #(#decode_arms,)*
                        _ => ::core::result::Result::Err(#p::PayloadError::unhandled(&any)),
                    }
                }
            }

            /// The context of a command handler: state, `emit`, `effect`.
            pub type Context<'a, T> = #p::CommandContext<'a, Entity<T>>;

            #[doc = #trait_doc]
            #service_doc
            pub trait #trait_name: ::core::marker::Send + ::core::marker::Sync + ::core::marker::Sized + 'static {
                #state_item
                #initial_state_fn
                #(#handler_fns)*
                #snapshot_fns
                #command_fns
            }

            #[doc = #entity_doc]
            #[derive(Clone, Debug, Default)]
            pub struct Entity<T>(pub T);

            impl<T: #trait_name> #p::EventSourcedEntity for Entity<T> {
                type State = #entity_state;
                type Event = Event;
                fn initial_state(&self, entity_id: &str) -> Self::State {
                    self.0.initial_state(entity_id)
                }
                #[allow(unreachable_code, unused_variables)]
                fn apply_event(&self, state: &mut Self::State, event: &Event) -> ::core::result::Result<(), #p::PayloadError> {
                    match *event {
                        #(#apply_arms,)*
                    }
                    ::core::result::Result::Ok(())
                }
                #snapshot_impl
                fn handle_command(&self, command: &#p::Command<'_>, ctx: &mut #p::CommandContext<'_, Self>) -> #p::CommandResult {
                    #dispatch_arms
                }
            }

            #service_impl_es
        };
        self.service_module(service, full_name, extra)
    }
}

impl Generator {
    fn value_entity_module(
        &self,
        service: &Service,
        full_name: &str,
        decl: &ValueEntity,
    ) -> TokenStream {
        let sdk = &self.sdk;
        let p = quote!(#sdk::__private);
        let trait_name = format_ident!("{}", service.proto_name.to_upper_camel_case());
        // A JSON state is the user's own Rust path, used as written.
        let state = match &decl.resolved_json_name {
            Some(_) => match syn::parse_str::<syn::Type>(&decl.resolved_state) {
                Ok(ty) => quote!(#ty),
                Err(e) => panic!(
                    "cloudstate-build: unparsable state type {}: {e}",
                    decl.resolved_state
                ),
            },
            None => rust_type(&decl.resolved_state),
        };
        let (encode_state, decode_state) = match &decl.resolved_json_name {
            Some(name) => (
                quote!(#p::json_to_any(#name, state)),
                quote!(#p::json_from_any(#name, state)),
            ),
            None => (
                quote!(#p::encode(state)),
                quote!(#p::decode::<#state>(state)),
            ),
        };
        let command_fns = command_fns(self, service, full_name, &p);
        let dispatch_arms = dispatch_arms(service, &p);
        let trait_doc = format!(" The handlers of the value entity `{full_name}`: one per rpc.");
        let service_doc = paragraph(&service.comments.leading);
        let entity_doc = format!(
            " Serves a [`{trait_name}`] implementation; register it with \
             `CloudState::register(Entity(handlers), options)`."
        );
        let service_impl_ve = service_impl(
            service,
            &p,
            &trait_name,
            "Entity",
            "ValueEntityOptions",
            quote!(.value_entity(SERVICE_NAME, self, options)),
        );
        let extra = quote! {
            /// The context of a command handler: read, update or delete the state; side effects.
            pub type Context<'a, T> = #p::ValueContext<'a, Entity<T>>;

            #[doc = #trait_doc]
            #service_doc
            pub trait #trait_name: ::core::marker::Send + ::core::marker::Sync + ::core::marker::Sized + 'static {
                #command_fns
            }

            #[doc = #entity_doc]
            #[derive(Clone, Debug, Default)]
            pub struct Entity<T>(pub T);

            impl<T: #trait_name> #p::ValueEntity for Entity<T> {
                type State = #state;
                fn encode_state(&self, state: &#state) -> #p::Any {
                    #encode_state
                }
                fn decode_state(&self, state: &#p::Any) -> ::core::result::Result<#state, #p::PayloadError> {
                    #decode_state
                }
                fn handle_command(&self, command: &#p::Command<'_>, ctx: &mut #p::ValueContext<'_, Self>) -> #p::CommandResult {
                    #dispatch_arms
                }
            }

            #service_impl_ve
        };
        self.service_module(service, full_name, extra)
    }
}

impl Generator {
    /// An action: the typed trait (one method per rpc, by call shape) and
    /// `Action<T>`, which routes each call shape by method name.
    fn action_module(&self, service: &Service, full_name: &str, decl: &Action) -> TokenStream {
        let sdk = &self.sdk;
        let p = quote!(#sdk::__private);
        let trait_name = format_ident!("{}", service.proto_name.to_upper_camel_case());
        let result = quote!(::core::result::Result);
        let mut fns = Vec::new();
        // Dispatch arms per call shape: unary, streamed in, streamed out, streamed.
        let mut arms: [Vec<TokenStream>; 4] = Default::default();
        let typed_enums = decl
            .resolved_typed
            .iter()
            .map(|typed| typed_input(typed, &p));
        for m in &service.methods {
            let name = ident(&m.proto_name.to_snake_case());
            let typed = decl
                .resolved_typed
                .iter()
                .find(|t| t.method == m.proto_name);
            // A typed input decodes as its enum, which takes any payload.
            let (input, decode) = match typed {
                Some(typed) => {
                    let input = format_ident!("{}", typed.enum_name);
                    (quote!(#input), quote!(payload_as::<#input>))
                }
                None => {
                    let input = rust_type(&m.input_type);
                    let decode = quote!(decode::<#input>);
                    (input, decode)
                }
            };
            let output = rust_type(&m.output_type);
            let rpc = &m.proto_name;
            let doc = self.method_docs(full_name, m);
            let to_any = reply_conversion(m, &p);
            let requests = quote!(#p::BoxStream<'static, #result<#input, #p::Failure>>);
            let responses = quote!(#p::BoxStream<'static, #p::ActionResult<#output>>);
            let future = quote!(impl ::core::future::Future<Output = #p::ActionResult<#output>> + ::core::marker::Send);
            let decode_stream = quote! {
                #p::StreamExt::boxed(#p::StreamExt::map(input, |message| message.#decode()))
            };
            let map_stream = quote! {
                #p::StreamExt::boxed(#p::StreamExt::map(responses, |result| result.map(|reply| reply.map(#to_any))))
            };
            match (m.client_streaming, m.server_streaming) {
                (false, false) => {
                    fns.push(quote! {
                        #doc
                        fn #name(&self, request: #input, ctx: #p::ActionContext) -> #future;
                    });
                    arms[0].push(quote! {
                        #rpc => {
                            let request = message.#decode()?;
                            self.0.#name(request, ctx).await.map(|reply| reply.map(#to_any))
                        }
                    });
                }
                (true, false) => {
                    fns.push(quote! {
                        #doc
                        fn #name(&self, requests: #requests, ctx: #p::ActionContext) -> #future;
                    });
                    arms[1].push(quote! {
                        #rpc => {
                            let requests = #decode_stream;
                            self.0.#name(requests, ctx).await.map(|reply| reply.map(#to_any))
                        }
                    });
                }
                (false, true) => {
                    fns.push(quote! {
                        #doc
                        fn #name(&self, request: #input, ctx: #p::ActionContext) -> #responses;
                    });
                    arms[2].push(quote! {
                        #rpc => match message.#decode() {
                            #result::Ok(request) => {
                                let responses = self.0.#name(request, ctx);
                                #map_stream
                            }
                            #result::Err(failure) => #p::once_failure(failure),
                        }
                    });
                }
                (true, true) => {
                    fns.push(quote! {
                        #doc
                        fn #name(&self, requests: #requests, ctx: #p::ActionContext) -> #responses;
                    });
                    arms[3].push(quote! {
                        #rpc => {
                            let requests = #decode_stream;
                            let responses = self.0.#name(requests, ctx);
                            #map_stream
                        }
                    });
                }
            }
        }
        let [unary, streamed_in, streamed_out, streamed] = arms;
        let trait_doc = format!(
            " The handlers of the action `{full_name}`: one per rpc. Implement unary and \
             streamed-in rpcs with `async fn`."
        );
        let service_doc = paragraph(&service.comments.leading);
        let action_doc = format!(
            " Serves a [`{trait_name}`] implementation; register it with \
             `CloudState::register(Action(handlers), ActionOptions::new())`."
        );
        let service_impl_action = service_impl(
            service,
            &p,
            &trait_name,
            "Action",
            "ActionOptions",
            quote!(.action(SERVICE_NAME, self)),
        );
        let extra = quote! {
            #(#typed_enums)*

            #[doc = #trait_doc]
            #service_doc
            pub trait #trait_name: ::core::marker::Send + ::core::marker::Sync + ::core::marker::Sized + 'static {
                #(#fns)*
            }

            #[doc = #action_doc]
            #[derive(Clone, Debug, Default)]
            pub struct Action<T>(pub T);

            impl<T: #trait_name> #p::ActionHandler for Action<T> {
                #[allow(unused_variables, unreachable_code)]
                fn handle_unary(self: ::std::sync::Arc<Self>, message: #p::ActionMessage, ctx: #p::ActionContext) -> #p::BoxFuture<'static, #p::ActionResult> {
                    ::std::boxed::Box::pin(async move {
                        let name = ::std::string::ToString::to_string(ctx.command_name());
                        let result: #p::ActionResult = match name.as_str() {
                            #(#unary)*
                            _ => #result::Err(#p::unhandled_action(&ctx, "unary")),
                        };
                        result
                    })
                }
                #[allow(unused_variables, unreachable_code)]
                fn handle_streamed_in(self: ::std::sync::Arc<Self>, input: #p::BoxStream<'static, #p::ActionMessage>, ctx: #p::ActionContext) -> #p::BoxFuture<'static, #p::ActionResult> {
                    ::std::boxed::Box::pin(async move {
                        let name = ::std::string::ToString::to_string(ctx.command_name());
                        let result: #p::ActionResult = match name.as_str() {
                            #(#streamed_in)*
                            _ => #result::Err(#p::unhandled_action(&ctx, "streamed-in")),
                        };
                        result
                    })
                }
                #[allow(unused_variables, unreachable_code)]
                fn handle_streamed_out(self: ::std::sync::Arc<Self>, message: #p::ActionMessage, ctx: #p::ActionContext) -> #p::BoxStream<'static, #p::ActionResult> {
                    let name = ::std::string::ToString::to_string(ctx.command_name());
                    match name.as_str() {
                        #(#streamed_out)*
                        _ => #p::once_failure(#p::unhandled_action(&ctx, "streamed-out")),
                    }
                }
                #[allow(unused_variables, unreachable_code)]
                fn handle_streamed(self: ::std::sync::Arc<Self>, input: #p::BoxStream<'static, #p::ActionMessage>, ctx: #p::ActionContext) -> #p::BoxStream<'static, #p::ActionResult> {
                    let name = ::std::string::ToString::to_string(ctx.command_name());
                    match name.as_str() {
                        #(#streamed)*
                        _ => #p::once_failure(#p::unhandled_action(&ctx, "streamed")),
                    }
                }
            }

            #service_impl_action
        };
        self.service_module(service, full_name, extra)
    }
}

impl Generator {
    /// A CRDT entity: the context aliases, the typed trait (unary and
    /// server-streaming rpcs) and `Entity<T>`, which dispatches by command name.
    fn crdt_module(&self, service: &Service, full_name: &str, decl: &Crdt) -> TokenStream {
        let sdk = &self.sdk;
        let p = quote!(#sdk::__private);
        let result = quote!(::core::result::Result);
        let option = quote!(::core::option::Option);
        let trait_name = format_ident!("{}", service.proto_name.to_upper_camel_case());
        let fixed =
            decl.resolved_state
                .as_deref()
                .map(|state| match syn::parse_str::<syn::Type>(state) {
                    Ok(ty) => quote!(#ty),
                    Err(e) => panic!("cloudstate-build: unparsable state type {state}: {e}"),
                });
        // With a fixed state the aliases need no handler type parameter.
        let (handler, state_item, state, entity_state) = match &fixed {
            Some(ty) => (
                TokenStream::new(),
                TokenStream::new(),
                ty.clone(),
                ty.clone(),
            ),
            None => (
                quote!(Self,),
                quote! {
                    /// The CRDT of one entity instance: one of the types of
                    /// `cloudstate_sdk::crdt`, or `Crdt` when chosen at run time.
                    type State: #p::CrdtType;
                },
                quote!(Self::State),
                quote!(T::State),
            ),
        };
        let aliases = match &fixed {
            Some(ty) => quote! {
                /// The context of a command handler: read and change the CRDT, delete the
                /// entity, choose the write consistency, add side effects.
                pub type Context<'a> = #p::CrdtContext<'a, #ty>;
                /// The context of a server-streaming handler whose messages are `R`: a
                /// [`Context`] whose subscriptions return typed messages.
                pub type StreamContext<'a, 'b, R> = #p::StreamedContext<'a, 'b, #ty, R>;
            },
            None => quote! {
                /// The context of a command handler: read and change the CRDT, delete the
                /// entity, choose the write consistency, add side effects.
                pub type Context<'a, T> = #p::CrdtContext<'a, <T as #trait_name>::State>;
                /// The context of a server-streaming handler whose messages are `R`: a
                /// [`Context`] whose subscriptions return typed messages.
                pub type StreamContext<'a, 'b, T, R> =
                    #p::StreamedContext<'a, 'b, <T as #trait_name>::State, R>;
            },
        };
        let mut fns = Vec::new();
        let mut arms = Vec::new();
        for m in &service.methods {
            let name = ident(&m.proto_name.to_snake_case());
            let input = rust_type(&m.input_type);
            let output = rust_type(&m.output_type);
            let rpc = &m.proto_name;
            let doc = self.method_docs(full_name, m);
            let to_any = reply_conversion(m, &p);
            if m.server_streaming {
                fns.push(quote! {
                    #doc
                    /// Server-streaming: subscribe with `ctx.on_change(..)`; `Ok(None)` sends no reply message.
                    fn #name(&self, request: #input, ctx: &mut StreamContext<'_, '_, #handler #output>)
                        -> #result<#option<#p::Reply<#output>>, #p::Failure>;
                });
                arms.push(quote! {
                    #rpc => {
                        let request = command.decode()?;
                        self.0
                            .#name(request, &mut ctx.streamed::<#output>())
                            .map(|reply| reply.map(|reply| reply.map(#to_any)))
                    }
                });
            } else {
                fns.push(quote! {
                    #doc
                    fn #name(&self, request: #input, ctx: &mut Context<'_, #handler>) -> #p::CommandResult<#output>;
                });
                arms.push(quote! {
                    #rpc => {
                        let request = command.decode()?;
                        self.0
                            .#name(request, ctx)
                            .map(|reply| #option::Some(reply.map(#to_any)))
                    }
                });
            }
        }
        let trait_doc = format!(" The handlers of the CRDT entity `{full_name}`: one per rpc.");
        let service_doc = paragraph(&service.comments.leading);
        let entity_doc = format!(
            " Serves a [`{trait_name}`] implementation; register it with \
             `CloudState::register(Entity(handlers), CrdtOptions::new())`."
        );
        let service_impl_crdt = service_impl(
            service,
            &p,
            &trait_name,
            "Entity",
            "CrdtOptions",
            quote!(.crdt(SERVICE_NAME, self, options)),
        );
        let extra = quote! {
            #aliases

            #[doc = #trait_doc]
            #service_doc
            pub trait #trait_name: ::core::marker::Send + ::core::marker::Sync + ::core::marker::Sized + 'static {
                #state_item
                /// The CRDT of an entity the proxy holds no value for yet.
                fn initial_state(&self, entity_id: &str) -> #state;
                #(#fns)*
            }

            #[doc = #entity_doc]
            #[derive(Clone, Debug, Default)]
            pub struct Entity<T>(pub T);

            impl<T: #trait_name> #p::CrdtEntity for Entity<T> {
                type State = #entity_state;
                fn initial_state(&self, entity_id: &str) -> Self::State {
                    self.0.initial_state(entity_id)
                }
                fn handle_command(&self, command: &#p::Command<'_>, ctx: &mut #p::CrdtContext<'_, Self::State>)
                    -> #result<#option<#p::Reply>, #p::Failure>
                {
                    match command.name() {
                        #(#arms)*
                        _ => #result::Err(#p::unhandled_command(command)),
                    }
                }
            }

            #service_impl_crdt
        };
        self.service_module(service, full_name, extra)
    }
}

/// The enum a typed `Any` input decodes to: a variant per declared type,
/// matched on the type URL (JSON ones on the whole URL, protobuf ones on the
/// name after the last `/`), and `Other` for any other payload.
fn typed_input(typed: &ResolvedInput, p: &TokenStream) -> TokenStream {
    let name = format_ident!("{}", typed.enum_name);
    let doc = format!(
        " The input of `{}`: the payloads of the types declared for it in `build.rs`, \
         decoded, and any other payload as it came.",
        typed.method
    );
    let variants: Vec<(Ident, TokenStream, &VariantEncoding)> = typed
        .variants
        .iter()
        .map(|v| {
            let ty = match &v.encoding {
                VariantEncoding::Protobuf(_) => rust_type(&v.rust_type),
                VariantEncoding::Json(_) => v.rust_type.parse().unwrap_or_else(|e| {
                    panic!(
                        "cloudstate-build validated JSON type [{}]: {e}",
                        v.rust_type
                    )
                }),
            };
            (format_ident!("{}", v.name), ty, &v.encoding)
        })
        .collect();
    let decls = variants.iter().map(|(v, ty, encoding)| {
        let doc = match encoding {
            VariantEncoding::Protobuf(full) => format!(" `type.googleapis.com/{full}`"),
            VariantEncoding::Json(json) => format!(" `json.cloudstate.io/{json}`"),
        };
        quote!(#[doc = #doc] #v(#ty))
    });
    let to_any = variants.iter().map(|(v, _, encoding)| match encoding {
        VariantEncoding::Protobuf(_) => quote!(Self::#v(event) => #p::encode(event)),
        VariantEncoding::Json(json) => quote!(Self::#v(event) => #p::json_to_any(#json, event)),
    });
    let json_arms: Vec<TokenStream> = variants
        .iter()
        .filter_map(|(v, _, encoding)| match encoding {
            VariantEncoding::Json(json) => {
                Some(quote!(#json => #p::json_from_any(#json, any).map(Self::#v)))
            }
            VariantEncoding::Protobuf(_) => None,
        })
        .collect();
    let protobuf_arms = variants
        .iter()
        .filter_map(|(v, _, encoding)| match encoding {
            VariantEncoding::Protobuf(full) => {
                Some(quote!(#full => #p::decode_as(any).map(Self::#v)))
            }
            VariantEncoding::Json(_) => None,
        });
    let other =
        quote!(_ => ::core::result::Result::Ok(Self::Other(::core::clone::Clone::clone(any))));
    let json_decode = (!json_arms.is_empty()).then(|| {
        quote! {
            if let ::core::option::Option::Some(name) = any.type_url.strip_prefix(#p::JSON_PREFIX) {
                return match name {
                    #(#json_arms,)*
                    #other,
                };
            }
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(Clone, PartialEq, Debug)]
        pub enum #name {
            #(#decls,)*
            /// A payload of any other type, as it came.
            Other(#p::Any),
        }

        impl #p::Payload for #name {
            fn to_any(&self) -> #p::Any {
                match self {
                    #(#to_any,)*
                    Self::Other(any) => ::core::clone::Clone::clone(any),
                }
            }
            fn from_any(any: &#p::Any) -> ::core::result::Result<Self, #p::PayloadError> {
                #json_decode
                match #p::type_name(&any.type_url) {
                    #(#protobuf_arms,)*
                    #other,
                }
            }
        }
    }
}

/// The file of `Payload` impls, one per message at `paths` (from the module
/// that includes the generated code), encoding as a protobuf message and
/// checking the type URL when decoding.
pub(crate) fn payload_impls(sdk: &TokenStream, paths: &[String]) -> String {
    let p = quote!(#sdk::__private);
    let impls = paths.iter().map(|path| {
        let ty = match syn::parse_str::<syn::Type>(path) {
            Ok(ty) => ty,
            Err(e) => panic!("cloudstate-build: unparsable type path {path}: {e}"),
        };
        quote! {
            #[automatically_derived]
            impl #p::Payload for #ty {
                fn to_any(&self) -> #p::Any {
                    #p::encode(self)
                }
                fn from_any(any: &#p::Any) -> ::core::result::Result<Self, #p::PayloadError> {
                    #p::decode(any)
                }
            }
        }
    });
    let allowed = allowed_lints();
    let code = quote! {
        #allowed
        const _: () = {
            #(#impls)*
        };
    };
    let file: syn::File = match syn::parse2(code) {
        Ok(file) => file,
        Err(e) => panic!("cloudstate-build generated invalid Payload impls: {e}"),
    };
    format!(
        "// @generated by cloudstate-build. Do not edit.\n\n{}",
        prettyplease::unparse(&file)
    )
}

/// The lints that generated code may trip in the user's crate, allowed on
/// each generated top-level item: the user's `include_protos!` needs no
/// `#[allow]`, however strict the crate's lints are.
fn allowed_lints() -> TokenStream {
    quote! {
        #[allow(
            dead_code,
            missing_docs,
            missing_debug_implementations,
            unreachable_pub,
            unused_qualifications,
            non_camel_case_types,
            non_snake_case,
            clippy::all,
            clippy::pedantic,
            clippy::nursery,
            rustdoc::all
        )]
    }
}

/// The module tree of the compiled packages, laid out as prost lays out
/// modules, each module including its package's file. The top-level modules
/// carry [`allowed_lints`]. A package-less file is included at the root as
/// it is: its items belong to the including module.
pub(crate) fn module_tree(packages: &[String]) -> String {
    #[derive(Default)]
    struct Node {
        file: Option<String>,
        children: BTreeMap<String, Node>,
    }
    fn body(node: &Node) -> TokenStream {
        let include = node.file.as_ref().map(|file| quote!(include!(#file);));
        let children = node.children.iter().map(|(name, child)| {
            let module: Ident = match syn::parse_str(name) {
                Ok(module) => module,
                Err(e) => panic!("cloudstate-build: module name {name}: {e}"),
            };
            let child = body(child);
            quote!(pub mod #module { #child })
        });
        quote!(#include #(#children)*)
    }
    let mut root = Node::default();
    for package in packages {
        let module = prost_build::Module::from_protobuf_package_name(package);
        let mut node = &mut root;
        for part in module.parts() {
            node = node.children.entry(part.to_owned()).or_default();
        }
        node.file = Some(module.to_file_name_or("_"));
    }
    let allowed = allowed_lints();
    let include = root.file.as_ref().map(|file| quote!(include!(#file);));
    let modules = root.children.iter().map(|(name, child)| {
        let module: Ident = match syn::parse_str(name) {
            Ok(module) => module,
            Err(e) => panic!("cloudstate-build: module name {name}: {e}"),
        };
        let child = body(child);
        quote!(#allowed pub mod #module { #child })
    });
    let file: syn::File = match syn::parse2(quote!(#include #(#modules)*)) {
        Ok(file) => file,
        Err(e) => panic!("cloudstate-build generated an invalid module tree: {e}"),
    };
    format!(
        "// @generated by cloudstate-build. Do not edit.\n\n{}",
        prettyplease::unparse(&file)
    )
}

/// `impl Service for <wrapper><T>`: register the descriptors, then the
/// service through `call` (a `CloudState` method call on `server`).
fn service_impl(
    service: &Service,
    p: &TokenStream,
    trait_name: &Ident,
    wrapper: &str,
    options: &str,
    call: TokenStream,
) -> TokenStream {
    // The descriptor set is at the root of the include, above the package modules.
    let depth = service.package.split('.').filter(|s| !s.is_empty()).count() + 1;
    let supers = (0..depth).map(|_| quote!(super::));
    let wrapper = format_ident!("{wrapper}");
    let options = format_ident!("{options}");
    // Actions take no options; the parameter stays for the trait's signature.
    let unused = (wrapper == "Action").then(|| quote!(let _ = options;));
    quote! {
        impl<T: #trait_name> #p::Service for #wrapper<T> {
            type Options = #p::#options;
            fn register(self, server: #p::CloudState, options: Self::Options) -> #p::CloudState {
                #unused
                server
                    .descriptor_set(#(#supers)* FILE_DESCRIPTOR_SET)
                    #call
            }
        }
    }
}

/// One trait method per rpc: the request, the context, a typed reply.
fn command_fns(
    generator: &Generator,
    service: &Service,
    full_name: &str,
    p: &TokenStream,
) -> TokenStream {
    let fns = service.methods.iter().map(|m| {
        let name = ident(&m.proto_name.to_snake_case());
        let input = rust_type(&m.input_type);
        let output = rust_type(&m.output_type);
        let doc = generator.method_docs(full_name, m);
        quote! {
            #doc
            fn #name(&self, request: #input, ctx: &mut Context<'_, Self>) -> #p::CommandResult<#output>;
        }
    });
    quote!(#(#fns)*)
}

/// The dispatch from a command's name to its trait method, decoding the
/// request as the method's input type and encoding the reply.
fn dispatch_arms(service: &Service, p: &TokenStream) -> TokenStream {
    let arms = service.methods.iter().map(|m| {
        let name = ident(&m.proto_name.to_snake_case());
        let rpc = &m.proto_name;
        let to_any = reply_conversion(m, p);
        quote! {
            #rpc => {
                let request = command.decode()?;
                self.0.#name(request, ctx).map(|reply| reply.map(#to_any))
            }
        }
    });
    quote! {
        match command.name() {
            #(#arms)*
            _ => ::core::result::Result::Err(#p::unhandled_command(command)),
        }
    }
}

/// How a typed reply becomes the `Any` on the wire.
fn reply_conversion(method: &Method, p: &TokenStream) -> TokenStream {
    match method.output_proto_type.trim_start_matches('.') {
        "google.protobuf.Empty" => quote!(|()| #p::empty()),
        "google.protobuf.Any" => quote!(|any| any),
        _ => quote!(|message| #p::encode(&message)),
    }
}

/// A Rust type path as prost wrote it (relative to the package module), seen
/// from the service module one level below.
fn rust_type(path: &str) -> TokenStream {
    let path = if path == "()" || path.starts_with("::") {
        path.to_owned()
    } else {
        format!("super::{path}")
    };
    match syn::parse_str::<syn::Type>(&path) {
        Ok(ty) => quote!(#ty),
        Err(e) => panic!("cloudstate-build: unparsable type path {path}: {e}"),
    }
}

fn full_name(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}.{name}")
    }
}

/// An identifier, raw when it is a keyword.
pub(crate) fn ident(name: &str) -> Ident {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern",
        "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move",
        "mut", "pub", "ref", "return", "static", "struct", "trait", "true", "type", "unsafe",
        "use", "where", "while", "abstract", "become", "box", "do", "final", "macro", "override",
        "priv", "try", "typeof", "unsized", "virtual", "yield",
    ];
    if KEYWORDS.contains(&name) {
        Ident::new_raw(name, Span::call_site())
    } else {
        Ident::new(name, Span::call_site())
    }
}

/// Proto comments as doc attributes.
fn comments(lines: &[String]) -> TokenStream {
    let docs = lines.iter().map(|line| {
        let line = line.trim_end();
        // prost keeps the space after `//`; a doc line wants exactly one.
        let line = match line.strip_prefix(' ') {
            Some(_) => line.to_owned(),
            None if line.is_empty() => String::new(),
            None => format!(" {line}"),
        };
        quote!(#[doc = #line])
    });
    quote!(#(#docs)*)
}

/// Proto comments as a doc paragraph below a summary line; nothing when
/// there are none.
fn paragraph(lines: &[String]) -> TokenStream {
    if lines.is_empty() {
        return TokenStream::new();
    }
    let docs = comments(lines);
    quote!(#[doc = ""] #docs)
}
