//! The baseline: a raw tonic bidirectional-stream service that answers each
//! command with a canned reply shaped like the shopping cart's, with no entity
//! runtime in between (no protocol checks, no state, no handlers).

use std::pin::Pin;
use std::sync::Arc;

use cloudstate_sdk::protocol::cloudstate::client_action::Action;
use cloudstate_sdk::protocol::cloudstate::eventsourced::{
    EventSourcedStreamIn, EventSourcedStreamOut, event_sourced_stream_in::Message as In,
    event_sourced_stream_out::Message as Out,
};
use cloudstate_sdk::testkit::eventsourced as es;
use shopping_cart::proto::com::example::shoppingcart::{self as api, persistence as domain};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::proto::echo_server::{Echo, EchoServer};
use crate::script::{PRODUCTS, SNAPSHOT_EVERY, product};

/// The replies the cart gives once it holds every product of the script.
#[derive(Debug)]
struct Canned {
    add: EventSourcedStreamOut,
    add_with_snapshot: EventSourcedStreamOut,
    get: EventSourcedStreamOut,
}

impl Canned {
    fn new() -> Self {
        let (id, name) = product(0);
        let added = domain::ItemAdded {
            item: Some(domain::LineItem {
                product_id: id.clone(),
                name: name.clone(),
                quantity: 1,
            }),
        };
        let snapshot = domain::Cart {
            items: (0..PRODUCTS)
                .map(|k| {
                    let (product_id, name) = product(k);
                    domain::LineItem {
                        product_id,
                        name,
                        quantity: 1_000,
                    }
                })
                .collect(),
        };
        let cart = api::Cart {
            items: (0..PRODUCTS)
                .map(|k| {
                    let (product_id, name) = product(k);
                    api::LineItem {
                        product_id,
                        name,
                        quantity: 1_000,
                    }
                })
                .collect(),
        };
        Self {
            add: es::reply_empty(0).event(&added).build(),
            add_with_snapshot: es::reply_empty(0).event(&added).snapshot(&snapshot).build(),
            get: es::reply(0, &cart).build(),
        }
    }

    /// The reply to command `id` named `name`, the `adds`-th AddItem so far.
    fn reply(&self, id: i64, name: &str, adds: i64) -> EventSourcedStreamOut {
        let mut out = match name {
            "AddItem" if adds % SNAPSHOT_EVERY == 0 => self.add_with_snapshot.clone(),
            "AddItem" => self.add.clone(),
            "GetCart" => self.get.clone(),
            other => es::failure(0, &format!("unknown command {other}"), false),
        };
        if let Some(Out::Reply(reply)) = &mut out.message {
            reply.command_id = id;
            if let Some(Action::Failure(failure)) =
                reply.client_action.as_mut().and_then(|a| a.action.as_mut())
            {
                failure.command_id = id;
            }
        }
        out
    }
}

/// The echo service: answers on the gRPC stream itself, message by message.
#[derive(Debug, Clone)]
pub(crate) struct EchoService {
    canned: Arc<Canned>,
}

impl EchoService {
    /// The service, ready to add to a tonic server.
    pub(crate) fn server() -> EchoServer<Self> {
        EchoServer::new(Self {
            canned: Arc::new(Canned::new()),
        })
    }
}

type OutStream = Pin<Box<dyn Stream<Item = Result<EventSourcedStreamOut, Status>> + Send>>;

#[tonic::async_trait]
impl Echo for EchoService {
    type EchoStream = OutStream;

    async fn echo(
        &self,
        request: Request<Streaming<EventSourcedStreamIn>>,
    ) -> Result<Response<Self::EchoStream>, Status> {
        let canned = Arc::clone(&self.canned);
        let mut adds = 0_i64;
        let out = request
            .into_inner()
            .filter_map(move |message| match message {
                Ok(EventSourcedStreamIn {
                    message: Some(In::Command(command)),
                }) => {
                    if command.name == "AddItem" {
                        adds += 1;
                    }
                    Some(Ok(canned.reply(command.id, &command.name, adds)))
                }
                Ok(_) => None,
                Err(status) => Some(Err(status)),
            });
        Ok(Response::new(Box::pin(out)))
    }
}
