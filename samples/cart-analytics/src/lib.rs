//! Cart analytics: an action subscribed to the shopping cart's event log
//! keeps a read model of the most added products, served over HTTP.
//!
//! `build.rs` declares two services (`proto/cartanalytics/analytics.proto`):
//!
//! - **`CartAnalytics`**, an action. The proxy delivers every event of the
//!   carts' journal (persistence id `shopping-cart`) to the method taking its
//!   type, `OnItemAdded` or `OnItemRemoved`, with CloudEvent metadata; the
//!   action forwards it, with its offset, to the read model. Its
//!   `GetTopProducts` (`GET /analytics/top-products`) asks the read model.
//! - **`TopProducts`**, a value entity per board (the action writes to
//!   [`BOARD`]): the quantity added and the number of removals per product,
//!   and the last offset counted per event log, so that an event delivered
//!   twice is counted once.
//!
//! [`register`] serves both next to the shopping cart, in one user function.

use cloudstate_sdk::{
    ActionContext, ActionOptions, ActionReply, ActionResult, CloudState, CommandResult, Failure,
    ValueEntityOptions, done,
};

/// The generated messages, action and entity traits and descriptor set.
pub mod proto {
    cloudstate_sdk::include_protos!();
}

use proto::com::example::cartanalytics::{
    GetTopProducts, ProductCount, RecordEvent, TopProductList, TopProductsQuery, cart_analytics,
    persistence::Board, record_event::Change, top_products,
};
use proto::com::example::shoppingcart::persistence::{ItemAdded, ItemRemoved};

/// The board the action keeps: every cart, since the start of the journal.
pub const BOARD: &str = "all";

/// How many products `GetTop` answers when the request says 0.
pub const DEFAULT_LIMIT: usize = 10;

/// Registers the shopping cart, the analytics action and the read model.
pub fn register(server: CloudState) -> CloudState {
    ::shopping_cart::register(server, 5)
        .register(cart_analytics::Action(CartAnalytics), ActionOptions::new())
        .register(
            top_products::Entity(TopProducts),
            ValueEntityOptions::new("top-products"),
        )
}

/// The subscriber: turns each cart event into a `Record` of the read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct CartAnalytics;

/// Where an event came from, read from its CloudEvent metadata.
struct Origin {
    source: String,
    offset: i64,
    cart_id: String,
}

impl Origin {
    /// The origin of the event `ctx` delivers, or the failure that says
    /// what is missing (the proxy then retries, and the log shows why).
    fn of(method: &str, ctx: &ActionContext) -> Result<Self, String> {
        let Some(event) = ctx.metadata().cloud_event() else {
            return Err(format!(
                "{method} takes events of the shopping cart's event log, \
                 but the call has no CloudEvent metadata"
            ));
        };
        let offset = event.id().parse::<i64>().map_err(|_| {
            format!(
                "{method}: the event id (ce-id) [{}] is not an event-log offset",
                event.id()
            )
        })?;
        Ok(Self {
            source: event.source().to_owned(),
            offset,
            cart_id: event.subject().unwrap_or_default().to_owned(),
        })
    }

    fn record(self, change: Change) -> RecordEvent {
        RecordEvent {
            board: BOARD.to_owned(),
            source: self.source,
            offset: self.offset,
            cart_id: self.cart_id,
            change: Some(change),
        }
    }
}

/// Forwards `change` to the read model: the event counts as handled (and
/// its offset is saved by the proxy) only once `Record` succeeded.
fn forward(method: &str, ctx: &ActionContext, change: Change) -> ActionResult<()> {
    Ok(match Origin::of(method, ctx) {
        Ok(origin) => ActionReply::forward(top_products::record(&origin.record(change))),
        Err(text) => ActionReply::failure(text),
    })
}

impl cart_analytics::CartAnalytics for CartAnalytics {
    async fn on_item_added(&self, added: ItemAdded, ctx: ActionContext) -> ActionResult<()> {
        let item = added.item.unwrap_or_default();
        forward("OnItemAdded", &ctx, Change::Added(item))
    }

    async fn on_item_removed(&self, removed: ItemRemoved, ctx: ActionContext) -> ActionResult<()> {
        let change = Change::RemovedProductId(removed.product_id);
        forward("OnItemRemoved", &ctx, change)
    }

    async fn get_top_products(
        &self,
        query: TopProductsQuery,
        _: ActionContext,
    ) -> ActionResult<TopProductList> {
        let get = GetTopProducts {
            board: BOARD.to_owned(),
            limit: query.limit,
        };
        Ok(ActionReply::forward(top_products::get_top(&get)))
    }
}

/// The read model: counts per product, fed by [`CartAnalytics`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TopProducts;

impl top_products::TopProducts for TopProducts {
    fn record(
        &self,
        event: RecordEvent,
        ctx: &mut top_products::Context<'_, Self>,
    ) -> CommandResult<()> {
        let mut board = ctx.state().cloned().unwrap_or_default();
        // Events of one log arrive in offset order, again from an earlier
        // one after a failure or a restart: what is at or before the last
        // offset counted was counted already.
        let last = board.offsets.get(&event.source).copied();
        if last.is_some_and(|last| event.offset <= last) {
            return done();
        }
        match event.change {
            Some(Change::Added(item)) => {
                let count = entry(&mut board, &item.product_id);
                count.added = count.added.saturating_add(i64::from(item.quantity));
                if !item.name.is_empty() {
                    count.name = item.name;
                }
            }
            Some(Change::RemovedProductId(product_id)) => {
                let count = entry(&mut board, &product_id);
                count.removed = count.removed.saturating_add(1);
            }
            None => {
                return Err(Failure::new(format!(
                    "the event at offset {} of [{}] names no change",
                    event.offset, event.source
                )));
            }
        }
        board.offsets.insert(event.source, event.offset);
        ctx.update(board);
        done()
    }

    fn get_top(
        &self,
        get: GetTopProducts,
        ctx: &mut top_products::Context<'_, Self>,
    ) -> CommandResult<TopProductList> {
        let limit = match usize::try_from(get.limit) {
            Ok(0) => DEFAULT_LIMIT,
            Ok(limit) => limit,
            Err(_) => {
                return Err(Failure::new(format!(
                    "the limit must not be negative, got {}",
                    get.limit
                )));
            }
        };
        let mut products = ctx
            .state()
            .map(|board| board.products.clone())
            .unwrap_or_default();
        products.sort_by(|a, b| {
            b.added
                .cmp(&a.added)
                .then_with(|| a.product_id.cmp(&b.product_id))
        });
        products.truncate(limit);
        Ok(TopProductList { products }.into())
    }
}

/// The count of `product_id`, added when it is new.
fn entry<'a>(board: &'a mut Board, product_id: &str) -> &'a mut ProductCount {
    let index = match board
        .products
        .iter()
        .position(|p| p.product_id == product_id)
    {
        Some(index) => index,
        None => {
            board.products.push(ProductCount {
                product_id: product_id.to_owned(),
                ..ProductCount::default()
            });
            board.products.len() - 1
        }
    };
    &mut board.products[index]
}

/// The requests the sample prints when it starts, with their answers; its
/// tests run them through the dev proxy. The read model follows the carts'
/// event log, so its answer comes shortly after the carts' replies.
#[cfg(feature = "devproxy")]
pub fn examples() -> Vec<cloudstate_devproxy::local::examples::Example> {
    use cloudstate_devproxy::local::examples::Example;
    let add = |user: &str, body: &str| {
        Example::post(format!("/cart/{user}/items/add"))
            .json(body)
            .expect_json("{}")
    };
    vec![
        add(
            "alice",
            r#"{"productId":"apple","name":"Apple","quantity":2}"#,
        ),
        add("alice", r#"{"productId":"fig","name":"Fig","quantity":1}"#),
        add(
            "bob",
            r#"{"productId":"apple","name":"Apple","quantity":1}"#,
        ),
        add("bob", r#"{"productId":"pear","name":"Pear","quantity":5}"#),
        Example::post("/cart/bob/items/pear/remove").expect_json("{}"),
        Example::get("/analytics/top-products?limit=2")
            .expect_json(concat!(
                r#"{"products":[{"productId":"pear","name":"Pear","added":"5","removed":"1"},"#,
                r#"{"productId":"apple","name":"Apple","added":"3","removed":"0"}]}"#
            ))
            .eventually(),
    ]
}
